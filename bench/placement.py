"""Order placement over the WebSocket, end to end: validate, store, enqueue, reply.

    .venv/bin/python -m bench.placement                  # K = 50 customers, 20 orders each
    .venv/bin/python -m bench.placement --customers 100 --orders-each 10
    .venv/bin/python -m bench.placement --postgres      # on PICKUP_TEST_POSTGRES_URL's server

K customers each place orders one after another on their own socket, all at
once; one daphne process serves them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import websockets

from bench import load
from bench.common import bench_database, create_sessions, percentiles, print_table, raise_file_limit, start_stack, write_results


async def customer(base: str, key: str, item: int, count: int, latencies: list[float], errors: list[str]) -> None:
    ws_url = base.replace("http://", "ws://") + "/ws/customer/"
    async with websockets.connect(ws_url, additional_headers={"Cookie": f"sessionid={key}", "Origin": base}) as socket:
        await socket.recv()  # session.ready
        pickup_at = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
        for n in range(count):
            sent = time.perf_counter()
            await socket.send(json.dumps({"type": "order.place", "request_id": f"r{n}",
                                          "items": [{"menu_item": item, "quantity": 1}], "pickup_at": pickup_at}))
            while True:
                reply = json.loads(await socket.recv())
                if reply.get("request_id") == f"r{n}":
                    break
            latencies.append((time.perf_counter() - sent) * 1000)
            if reply["type"] != "order.accepted":
                errors.append(reply.get("code", "?"))


async def measure(customers: int, orders_each: int, postgres: bool = False) -> dict:
    with bench_database(postgres) as database:
        return await measure_on(customers, orders_each, start_stack(database))


async def measure_on(customers: int, orders_each: int, stack) -> dict:
    try:
        keys = create_sessions(stack, customers)
        base = stack.start_web()
        item = int(stack.shell("from orders.models import MenuItem; print(MenuItem.objects.first().pk)").strip())
        return await place_all(base, keys, item, orders_each)
    finally:
        stack.stop()


async def place_all(base: str, keys: list[str], item: int, orders_each: int) -> dict:
    """Every customer (a session key) places ``orders_each`` orders one after another at ``base``, all at once."""
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(*(customer(base, key, item, orders_each, latencies, errors) for key in keys))
    elapsed = time.perf_counter() - started
    return {"customers": len(keys), "orders": len(latencies), "errors": len(errors), "seconds": round(elapsed, 2),
            "orders_per_second": round(len(latencies) / elapsed), "reply_ms": percentiles(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--orders-each", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="a new database on PICKUP_TEST_POSTGRES_URL's server")
    load.add_argument(parser)
    args = parser.parse_args()
    raise_file_limit()
    with load.background_load(args.background_load):
        result = asyncio.run(measure(args.customers, args.orders_each, args.postgres))
    result["background_load"] = args.background_load
    row = {**{k: v for k, v in result.items() if k != "reply_ms"}, "p50_ms": result["reply_ms"]["p50"], "p99_ms": result["reply_ms"]["p99"]}
    print_table("Order placement over the WebSocket (one daphne process)", [row],
                ["customers", "orders", "errors", "seconds", "orders_per_second", "p50_ms", "p99_ms"])
    print(f"results: {write_results('placement', result)}")


if __name__ == "__main__":
    main()
