"""One measured run of one peer: jobs due at known instants, each recording when its worker started it.

A private redis-server holds the peer's queue and the start records; one
worker process of the peer runs from before the first job is enqueued to a
few seconds after the last falls due.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import percentiles
from bench.peers import environments
from pickup.redis_server import PrivateRedis

WORKER_NOTES = {
    "bullmq": "one Worker, concurrency {concurrency}; delayed jobs wait in Redis",
    "celery": "one worker, thread pool × {concurrency}, prefetch multiplier 4; ETA tasks are held in the worker's memory",
    # arq reads at most max(5 × max_jobs, 100) due jobs per poll: its default settings cap it near 200 jobs/s.
    "arq": "one worker, max_jobs {concurrency}, poll_delay {arq_poll_delay} s; deferred jobs wait in Redis",
}


def due_times(start: float, jobs: int, shape: str, window: float) -> list[float]:
    """Epoch seconds at which each job is due: evenly over ``window`` (spread), or all at ``start`` (burst)."""
    return [start + (window * n / jobs if shape == "spread" else 0.0) for n in range(jobs)]


def tally(dues: list[float], records: list[bytes]) -> dict:
    """Lateness of each job's first start, and the jobs never started or started more than once."""
    starts: dict[int, list[float]] = {}
    for record in records:
        index, started = record.split()
        starts.setdefault(int(index), []).append(float(started))
    lateness_ms = [(min(times) - dues[index]) * 1000 for index, times in starts.items()]
    return {
        "lost": len(set(range(len(dues))) - set(starts)),
        "duplicates": sum(len(times) - 1 for times in starts.values()),
        "early": sum(1 for value in lateness_ms if value < 0),
        "lateness_ms": percentiles(lateness_ms),
    }


def measure(*, peer: str, jobs: int, shape: str, window: float, concurrency: int, arq_poll_delay: float) -> dict:
    redis_server = PrivateRedis().start()
    log = tempfile.NamedTemporaryFile(prefix=f"peers-{peer}-", suffix=".log", delete=False)
    worker = None
    try:
        client = redis_server.client()
        worker = subprocess.Popen(environments.worker_command(peer, redis_server.url, concurrency, arq_poll_delay),
                                  stdout=log, stderr=subprocess.STDOUT)
        log.close()  # the worker writes to its own copy of the file
        wait_for(lambda: client.exists("peers:ready"), 60, worker, log.name, "the worker did not start")
        # Leave enough time to enqueue every job before the first falls due.
        start = time.time() + 5 + jobs / 250
        dues = due_times(start, jobs, shape, window)
        subprocess.run(environments.enqueue_command(peer, redis_server.url), input=json.dumps(dues), text=True,
                       check=True, timeout=120)
        if time.time() >= start:
            raise RuntimeError("enqueueing took longer than the margin; lower --jobs")
        wait_for(lambda: client.llen("peers:started") >= jobs, dues[-1] - time.time() + 30, worker, log.name, None)
        time.sleep(3)  # room for duplicates to show
        result = tally(dues, client.lrange("peers:started", 0, -1))
        if result["lost"] or result["duplicates"]:
            print(f"{peer}: {result['lost']} jobs never started, {result['duplicates']} started twice; worker log: {log.name}")
        else:
            Path(log.name).unlink()
        return {"peer": peer, "shape": shape, "jobs": jobs, "window_s": window, "release": environments.versions(peer),
                "worker": WORKER_NOTES[peer].format(concurrency=concurrency, arq_poll_delay=arq_poll_delay), **result}
    finally:
        if worker is not None:
            stop(worker)
        redis_server.shutdown()


def wait_for(condition, seconds: float, worker: subprocess.Popen, log: str, failure: str | None) -> None:
    """Poll ``condition`` until it holds; past ``seconds``, raise ``failure`` (or return, if None)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with status {worker.returncode}:\n{Path(log).read_text()[-3000:]}")
        if time.monotonic() > deadline:
            if failure is None:
                return
            raise RuntimeError(f"{failure}:\n{Path(log).read_text()[-3000:]}")
        time.sleep(0.05)


def stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(5)
