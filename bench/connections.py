"""Idle WebSocket connections one daphne process holds, and its memory per connection.

    .venv/bin/python -m bench.connections                 # 1,000 then 10,000
    .venv/bin/python -m bench.connections --counts 2000

Each connection is a distinct customer (its own session) that stays idle.
RSS is daphne's resident memory, read with psutil before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import psutil
import websockets

from bench import load
from bench.common import create_sessions, print_table, raise_file_limit, start_stack, write_results


async def hold(base: str, keys: list[str]) -> list:
    ws_url = base.replace("http://", "ws://") + "/ws/customer/"
    gate = asyncio.Semaphore(200)

    async def one(key: str):
        async with gate:
            socket = await websockets.connect(ws_url, additional_headers={"Cookie": f"sessionid={key}", "Origin": base},
                                              ping_interval=None, open_timeout=60)
            await socket.recv()
            return socket

    return list(await asyncio.gather(*(one(key) for key in keys)))


async def measure(count: int) -> dict:
    stack = start_stack()
    try:
        keys = create_sessions(stack, count)
        base = stack.start_web()
        daphne = psutil.Process(next(iter(stack.web.values())).pid)
        before = daphne.memory_info().rss
        started = time.perf_counter()
        sockets = await hold(base, keys)
        connect_seconds = time.perf_counter() - started
        await asyncio.sleep(8)  # idle past redis-py's 5 s timeout: still connected?
        open_after_idle = sum(1 for socket in sockets if socket.state.name == "OPEN")
        after = daphne.memory_info().rss
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
        return {"connections": count, "open_after_idle": open_after_idle, "connect_seconds": round(connect_seconds, 1),
                "rss_before_mb": round(before / 2**20, 1), "rss_after_mb": round(after / 2**20, 1),
                "kb_per_connection": round((after - before) / count / 1024, 1)}
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10_000])
    load.add_argument(parser)
    args = parser.parse_args()
    raise_file_limit(200_000)
    with load.background_load(args.background_load):
        runs = [asyncio.run(measure(count)) for count in args.counts]
    print_table(f"Idle connections on one daphne process, background load {args.background_load}", runs,
                ["connections", "open_after_idle", "connect_seconds", "rss_before_mb", "rss_after_mb", "kb_per_connection"])
    print(f"results: {write_results('connections', {'background_load': args.background_load, 'runs': runs})}")


if __name__ == "__main__":
    main()
