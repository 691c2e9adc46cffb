"""bench/topology.py still measures what it claims, at a tiny size: nothing lost, doubled or early, through nginx.

The bench smoke tests' style (tests/test_bench_smoke.py), kept here because it
needs PostgreSQL: tests marked ``postgres`` run in the PostgreSQL pass, which
runs tests/processes. Only correctness is asserted; the figures live in BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio

import pytest

from bench import topology

pytestmark = [pytest.mark.processes, pytest.mark.postgres]


def test_topology_benchmark_counts_every_alert_once_through_nginx():
    result = asyncio.run(topology.measure(
        web=2, customers=10, alerts=10, shapes=["burst"], window=1.0, placement_customers=2, orders_each=3,
    ))
    split = result["sockets_per_web"]
    assert len(split) == 2 and all(split) and sum(split) == 10, split  # nginx handed customers to both web processes
    (rush,) = result["rushes"]
    assert rush["lost"] == 0 and rush["duplicates"] == 0 and rush["early"] == 0
    # /metrics through nginx saw every alert pushed first once, by the web timers or run_queue.
    assert rush["claims"]["timer_first"] + rush["claims"]["run_queue_first"] == 10
    assert rush["claims_per_alert"] >= 1
    assert result["placement"]["orders"] == 6 and result["placement"]["errors"] == 0
