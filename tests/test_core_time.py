"""bench/core_time.py: the event loop's CPU and wait for a core between two moments, from the kernel's samples."""

from __future__ import annotations

import os
import time

from bench.core_time import EventLoopTrace, available


def trace_of(samples: list[tuple[float, int, int]]) -> EventLoopTrace:
    trace = EventLoopTrace(os.getpid())
    trace.samples = samples
    return trace


def test_time_between_two_moments_is_read_between_the_samples_around_them():
    # wall s, ns on a CPU, ns waiting: 10 ms of CPU and 4 ms of waiting over the 20 ms from t=1.00.
    trace = trace_of([(1.000, 0, 0), (1.010, 2_000_000, 4_000_000), (1.020, 10_000_000, 4_000_000)])
    assert trace.between(1.000, 1.020) == (10.0, 4.0)
    cpu, waiting = trace.between(1.005, 1.015)  # halfway into each interval
    assert round(cpu, 6) == 5.0 and round(waiting, 6) == 2.0
    assert trace.between(0.5, 2.0) == (10.0, 4.0)  # outside the samples: the first and the last


def test_the_trace_reads_this_process_main_thread():
    assert available(os.getpid())
    trace = EventLoopTrace(os.getpid(), every=0.001).start()
    try:
        assert sum(range(2_000_000))  # some CPU on this (the main) thread while sampling
        deadline = time.monotonic() + 60  # a loaded machine may run the sampler late; wait for two samples
        while len(trace.samples) < 2:
            assert time.monotonic() < deadline, "the sampler never read the kernel's counters twice"
            time.sleep(0.01)
    finally:
        trace.stop()
    first, last = trace.samples[0], trace.samples[-1]
    assert last[1] >= first[1] and last[2] >= first[2]  # the kernel's counters only grow
