"""The benchmarks still measure what they claim, at a tiny size: nothing lost, nothing doubled.

Only correctness is asserted here; the figures live in BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bench import drain, lateness

pytestmark = pytest.mark.processes


def test_lateness_benchmark_counts_every_alert_once():
    result = asyncio.run(lateness.measure(customers=10, alerts=10, shape="burst", path="timers", window=1.0))
    assert result["lost"] == 0 and result["duplicates"] == 0 and result["early"] == 0
    assert set(result["lateness_ms"]) >= {"p50", "p90", "p99", "max"}
    # Who pushed each alert first, as /metrics counts it: every alert once, by one of the two.
    assert sum(result["first_pushes"].values()) == 10
    # The web server's event loop, read from the kernel (bench/core_time.py): CPU and the wait for a core.
    assert set(result["cpu_to_arrival_ms"]) >= {"p50", "max"} and result["cpu_to_arrival_ms"]["p50"] >= 0
    window = result["event_loop_window_ms"]
    assert window["cpu"] >= 0 and window["waiting_for_a_core"] >= 0 and window["wall"] >= result["lateness_ms"]["max"] * 0.9


def test_drain_benchmark_processes_every_order_once():
    result = drain.measure(orders=300, workers=2)
    assert result["processed"] == 300 and result["processed_twice"] == 0


def test_background_load_keeps_its_processes_busy_and_ends_them():
    import psutil

    from bench.load import background_load

    with background_load(2):
        me = psutil.Process()
        spinners = [child for child in me.children() if "while True" in " ".join(child.cmdline())]
        assert len(spinners) == 2
        deadline = time.monotonic() + 60
        while not all(spinner.cpu_times().user > 0.05 for spinner in spinners):  # they really spin
            assert time.monotonic() < deadline, "the load processes never ran"
            time.sleep(0.05)
    assert not any(spinner.is_running() and spinner.status() != psutil.STATUS_ZOMBIE for spinner in spinners)


def test_run_queue_alone_is_measured_with_productions_kitchen_delay():
    """The tests' settings drop the kitchen delay to 0 when the timers are off (tests/settings.py);
    the benchmark must keep production's, or it measures making the orders ready in the alerts' second."""
    import pickup.settings as production

    assert lateness.RUN_QUEUE_ALONE["PICKUP_KITCHEN_DELAY_MS"] == production.PICKUP_KITCHEN_DELAY_MS > 0


def test_picker_benchmark_times_every_case_on_a_restaurant_in_a_rush():
    """In a process of its own (it sets up Django with production settings), at a tiny size,
    without overwriting the figures ``make bench-picker`` left in bench/results."""
    import json
    import subprocess
    import sys

    script = "import json; from bench import picker; print(json.dumps(picker.run([5], repeats=2)[0]))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["full_slots"] > 0 and result["first_day_times"] > 0 and result["days_with_room"] >= 1
    assert len(result["rows"]) == 6
    for row in result["rows"]:
        assert row["queries"] >= 1 and 0 <= row["min_ms"] <= row["median_ms"] and row["p90_ms"] >= 0, row
