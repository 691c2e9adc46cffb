"""A busy morning on PostgreSQL: customers connected, page loads in flight, database connections counted.

    .venv/bin/python -m bench.crowd                       # 1,000 sockets, 100 page loads in flight
    .venv/bin/python -m bench.crowd --pool 0 --conn-max-age 0   # without the pool, for comparison
    .venv/bin/python -m bench.crowd --background-load 0   # on a quiet machine (default: one busy process)

One daphne and one run_queue process serve a fresh PostgreSQL database
(PICKUP_TEST_POSTGRES_URL's server). ``--sockets`` customers connect and stay
connected while ``--page-loads`` anonymous ``GET /`` are fired, ``--concurrency``
at a time; a thread samples ``pg_stat_activity`` for the database throughout.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import urllib.parse

import websockets

from bench import load
from bench.common import (
    POSTGRES_URL,
    bench_database,
    create_sessions,
    percentiles,
    print_table,
    raise_file_limit,
    start_stack,
    write_results,
)
from pickup.testing import ConnectionWatch


async def get(base: str, path: str, timeout: float = 60) -> tuple[int, int | None]:
    """One anonymous HTTP/1.1 request, read to the end; its status code and Retry-After seconds."""
    address = urllib.parse.urlparse(base)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address.hostname, address.port), timeout)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {address.hostname}\r\nConnection: close\r\n\r\n".encode())
        response = await asyncio.wait_for(reader.read(), timeout)
        head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
        retry_after = headers.get("retry-after")
        return int(head[0].split(" ", 2)[1]), int(retry_after) if retry_after else None
    finally:
        writer.close()


async def page_loads(base: str, total: int, concurrency: int, *, retry_busy: bool = False) -> dict:
    """``total`` page loads, ``concurrency`` in flight at every moment.

    With ``retry_busy`` a load answered 503 with Retry-After comes back after
    that many seconds, as the busy page makes a browser do; ``busy`` counts
    those answers either way.
    """
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    busy = 0

    async def one() -> None:
        nonlocal busy
        async with gate:
            started = time.perf_counter()
            while True:
                try:
                    code, retry_after = await get(base, "/")
                    status = str(code)
                except (OSError, asyncio.TimeoutError, ValueError, IndexError) as error:
                    status, retry_after = type(error).__name__, None
                if status != "503" or retry_after is None:
                    break
                busy += 1
                if not retry_busy:
                    break
                await asyncio.sleep(retry_after)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    elapsed = time.perf_counter() - started
    return {"page_loads": total, "concurrency": concurrency, "seconds": round(elapsed, 2), "busy": busy,
            "requests_per_second": round(total / elapsed, 1), "statuses": statuses, "latency_ms": percentiles(latencies)}


async def connect_customers(base: str, keys: list[str], at_once: int = 25) -> tuple[list, int]:
    """Every customer connected and greeted, ``at_once`` handshakes in flight; (sockets, refused)."""
    ws_url = base.replace("http://", "ws://") + "/ws/customer/"
    gate = asyncio.Semaphore(at_once)

    async def one(key: str):
        async with gate:
            socket = await websockets.connect(ws_url, additional_headers={"Cookie": f"sessionid={key}", "Origin": base},
                                              ping_interval=None, open_timeout=60)
            await socket.recv()  # session.ready
            return socket

    outcomes = await asyncio.gather(*(one(key) for key in keys), return_exceptions=True)
    sockets = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    return sockets, len(outcomes) - len(sockets)


async def crowd(base: str, keys: list[str], total: int, concurrency: int) -> dict:
    """Customers connect, then the page loads come while they stay; how many customers are still there."""
    sockets, refused = await connect_customers(base, keys)
    try:
        result = await page_loads(base, total, concurrency)
        result["sockets_refused"] = refused
        result["sockets_open"] = sum(1 for socket in sockets if socket.state.name == "OPEN")
        return result
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)


async def measure(*, sockets: int, total: int, concurrency: int, pool: int, conn_max_age: int) -> dict:
    with bench_database(postgres=True) as database:
        database_url = database["DATABASE_URL"]
        stack = start_stack({**database, "DATABASE_POOL_MAX_SIZE": str(pool), "DATABASE_CONN_MAX_AGE": str(conn_max_age)})
        try:
            keys = create_sessions(stack, sockets)
            base = stack.start_web()
            stack.start_run_queue()
            with ConnectionWatch(POSTGRES_URL, database_url) as watch:
                result = await crowd(base, keys, total, concurrency)
            return {"pool_max_size": pool, "conn_max_age": conn_max_age, "sockets": sockets,
                    "peak_connections": watch.peak, "samples": watch.samples, **result}
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--page-loads", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--pool", type=int, default=10, help="DATABASE_POOL_MAX_SIZE (0: no pool)")
    parser.add_argument("--conn-max-age", type=int, default=0, help="DATABASE_CONN_MAX_AGE (without the pool)")
    load.add_argument(parser)
    args = parser.parse_args()
    raise_file_limit()
    with load.background_load(args.background_load):
        result = asyncio.run(measure(sockets=args.sockets, total=args.page_loads, concurrency=args.concurrency,
                                     pool=args.pool, conn_max_age=args.conn_max_age))
    result["background_load"] = args.background_load
    row = {**{k: v for k, v in result.items() if k not in ("latency_ms", "statuses")},
           "errors_500": result["statuses"].get("500", 0), "other": sum(n for s, n in result["statuses"].items() if s not in ("200", "500")),
           "p50_ms": result["latency_ms"]["p50"], "p90_ms": result["latency_ms"]["p90"], "p99_ms": result["latency_ms"]["p99"]}
    print_table("Page loads on PostgreSQL with customers connected (one daphne, one run_queue)", [row],
                ["pool_max_size", "conn_max_age", "background_load", "sockets", "sockets_refused", "sockets_open", "page_loads", "concurrency",
                 "requests_per_second", "p50_ms", "p90_ms", "p99_ms", "errors_500", "busy", "other", "peak_connections"])
    print(f"statuses: {result['statuses']}")
    name = f"crowd-pool{args.pool}-age{args.conn_max_age}-load{args.background_load}"
    print(f"results: {write_results(name, result)}")


if __name__ == "__main__":
    main()
