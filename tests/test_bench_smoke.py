"""The benchmarks still measure what they claim, at a tiny size: nothing lost, nothing doubled.

Only correctness is asserted here; the figures live in BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio

import pytest

from bench import drain, lateness

pytestmark = pytest.mark.processes


def test_lateness_benchmark_counts_every_alert_once():
    result = asyncio.run(lateness.measure(customers=10, alerts=10, shape="burst", path="timers", window=1.0))
    assert result["lost"] == 0 and result["duplicates"] == 0 and result["early"] == 0
    assert set(result["lateness_ms"]) >= {"p50", "p90", "p99", "max"}


def test_drain_benchmark_processes_every_order_once():
    result = drain.measure(orders=300, workers=2)
    assert result["processed"] == 300 and result["processed_twice"] == 0
