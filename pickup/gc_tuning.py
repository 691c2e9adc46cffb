"""Garbage-collector settings for the long-running processes (daphne, run_queue).

A web process holds about a million long-lived objects (Django, the sockets'
state). With CPython's default thresholds a full collection walks all of them
every so often: pauses of 100-150 ms measured in daphne, during which no
alert moves. Freezing what exists after start-up takes those objects out of
every collection, and larger thresholds make the collections that remain rarer.
Cyclic garbage is still collected, a little later.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 50, 100)


def tune_for_latency() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
