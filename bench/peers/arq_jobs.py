"""arq's side of bench/peers, run with the interpreter of its own environment (.envs/arq).

    python arq_jobs.py worker REDIS_URL CONCURRENCY POLL_DELAY   one worker process
    python arq_jobs.py enqueue REDIS_URL < dues.json             one deferred job per due time (epoch seconds)

arq keeps deferred jobs in a Redis sorted set scored by due time; the worker
looks for due ones every ``poll_delay`` seconds (0.5 by default) and reads
at most max(5 × max_jobs, 100) of them per poll, so its lateness is that
poll, and past about 200 due jobs a second with the defaults, a backlog.
"""

import asyncio
import json
import sys
import time
from datetime import datetime, timezone

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker


async def record(ctx, index: int) -> None:
    started = time.time()  # first thing the job does: this is its start
    await ctx["redis"].rpush("peers:started", f"{index} {started}")


async def announce_ready(ctx) -> None:
    await ctx["redis"].set("peers:ready", "1")


async def enqueue(settings: RedisSettings, dues: list[float]) -> None:
    pool = await create_pool(settings)
    for index, due in enumerate(dues):
        await pool.enqueue_job("record", index, _defer_until=datetime.fromtimestamp(due, timezone.utc))
    await pool.aclose()


mode, redis_url = sys.argv[1], sys.argv[2]
settings = RedisSettings.from_dsn(redis_url)
if mode == "worker":
    Worker(functions=[record], redis_settings=settings, on_startup=announce_ready,
           max_jobs=int(sys.argv[3]), poll_delay=float(sys.argv[4])).run()
elif mode == "enqueue":
    asyncio.run(enqueue(settings, json.load(sys.stdin)))
else:
    sys.exit(f"unknown mode {mode}")
