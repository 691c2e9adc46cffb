"""Celery's side of bench/peers, run with the interpreter of its own environment (.envs/celery).

    python celery_jobs.py worker REDIS_URL CONCURRENCY   one worker process, thread pool
    python celery_jobs.py enqueue REDIS_URL < dues.json  one ETA task per due time (epoch seconds)

Celery keeps an ETA task in the worker's memory from the moment the worker
fetches it (at once, whatever the prefetch setting) until it falls due: the
broker no longer holds it, and a worker that dies gives it back only after
the Redis transport's visibility timeout (1 hour by default).
"""

import json
import sys
import time
from datetime import datetime, timezone

import redis
from celery import Celery
from celery.signals import worker_ready

mode, redis_url = sys.argv[1], sys.argv[2]
app = Celery("peers", broker=redis_url)
app.conf.update(worker_prefetch_multiplier=4, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
recorder = redis.Redis.from_url(redis_url)


@app.task(name="peers.record", ignore_result=True)
def record(index: int) -> None:
    started = time.time()  # first thing the task does: this is its start
    recorder.rpush("peers:started", f"{index} {started}")


@worker_ready.connect
def announce_ready(**_) -> None:
    recorder.set("peers:ready", "1")


if mode == "worker":
    app.worker_main(["worker", "--pool", "threads", "--concurrency", sys.argv[3], "--loglevel", "WARNING",
                     "--without-gossip", "--without-mingle", "--without-heartbeat"])
elif mode == "enqueue":
    for index, due in enumerate(json.load(sys.stdin)):
        record.apply_async((index,), eta=datetime.fromtimestamp(due, timezone.utc))
else:
    sys.exit(f"unknown mode {mode}")
