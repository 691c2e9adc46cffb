"""bench/peers counts what each peer's jobs recorded: a job never started is lost, a second start is doubled.

The peers themselves are not run here: they install from PyPI and npm.
"""

from __future__ import annotations

from bench.peers.measure import due_times, tally


def test_spread_jobs_fall_due_evenly_over_the_window_and_burst_jobs_at_one_instant():
    assert due_times(100.0, 4, "spread", 1.0) == [100.0, 100.25, 100.5, 100.75]
    assert due_times(100.0, 3, "burst", 1.0) == [100.0, 100.0, 100.0]


def test_a_job_never_started_is_lost_and_a_second_start_is_doubled_not_counted_late():
    dues = [100.0, 100.5, 101.0]
    result = tally(dues, [b"0 100.002", b"1 100.501", b"1 109.0"])
    assert result["lost"] == 1 and result["duplicates"] == 1 and result["early"] == 0
    assert round(result["lateness_ms"]["max"], 3) == 2.0  # the first start of each job counts


def test_a_job_started_before_its_due_time_is_counted_early():
    assert tally([100.0], [b"0 99.9"])["early"] == 1
