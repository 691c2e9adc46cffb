"""Prometheus metrics of every Pickup process on the machine, served together at /metrics.

Each app defines its own metrics with prometheus-client (orders/metrics.py,
notifications/metrics.py). With ``PROMETHEUS_MULTIPROC_DIR`` set, every
daphne and every run_queue writes them to files of its own in that directory
(the library's multiprocess mode) and the web process that is scraped adds
them all up: run_queue has no HTTP server. Without it each process keeps its
own, and /metrics shows only the web process that answered.

Figures that are a state of the database or Redis (kitchen-queue depth, Web
Push rows pending) are read when scraped, by the collectors the caller
passes to ``exposition``: one reading, however many processes run.
"""

from __future__ import annotations

import atexit
import hmac
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Seconds, fine-grained at the low end: an alert is due to be pushed within
# milliseconds, a run_queue pass takes a few, a stuck one many seconds.
LATENCY_BUCKETS = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0,
)

# A live gauge's file (sockets open), as the library names it: gauge_livesum_<pid>.db.
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def multiprocess_dir() -> str | None:
    """The directory every process writes its metrics to, or None when each keeps its own."""
    return settings.PROMETHEUS_MULTIPROC_DIR or None


def scrape_allowed(request: HttpRequest) -> bool:
    """Whether the request carries the metrics token (``Authorization: Bearer …``)."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def exposition(readings: Iterable[Collector] = ()) -> bytes:
    """Every process's metrics, then the readings taken now, in Prometheus text format."""
    path = multiprocess_dir()
    if path is None:
        counted = generate_latest(REGISTRY)
    else:
        forget_dead_processes(path)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        counted = generate_latest(registry)
    now = CollectorRegistry()
    for reading in readings:
        now.register(reading)
    return counted + generate_latest(now)


def forget_dead_processes(path: str) -> None:
    """Drop the live gauges (sockets open) of processes that are gone, as the library asks.

    A process that ends cleanly does it itself at exit; this catches one that
    was killed. Counters and histograms of dead processes stay, as they should:
    what they counted happened.
    """
    for file in Path(path).iterdir():
        match = _LIVE_GAUGE_FILE.match(file.name)
        if match and not _running(int(match.group(1))):
            try:
                mark_process_dead(int(match.group(1)), path)
            except FileNotFoundError:
                pass  # another web process's scrape was first


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's process
    return True


def _forget_this_process() -> None:
    path = multiprocess_dir()
    if path is not None and os.path.isdir(path):
        mark_process_dead(os.getpid(), path)


atexit.register(_forget_this_process)
