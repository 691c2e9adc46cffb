"""A crowd on PostgreSQL: the web server and run_queue stay within their pools of connections.

Under daphne every request in flight runs in its own thread; with a
persistent connection per thread, ten page loads in flight once ran
PostgreSQL out of connections and everybody got 500s. Each process now
borrows from a pool of DATABASE_POOL_MAX_SIZE connections, and a request that
finds none free in time is asked to come back (503), never shown a 500. The load is issue
11's busy morning: a thousand customers connected, a hundred page loads in
flight (bench/crowd.py measures the same with figures).
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from bench.crowd import connect_customers, page_loads
from bench.common import create_sessions, raise_file_limit
from pickup.testing import ConnectionWatch, Stack, postgres_database
from tests.processes.clients import menu_item_id, pickup_at

pytestmark = [pytest.mark.processes, pytest.mark.postgres]

POOL_MAX_SIZE = 4
CUSTOMERS = 1000


@pytest.fixture
def postgres_stack(tmp_path):
    server_url = os.environ["DATABASE_URL"]
    with postgres_database(server_url) as database_url:
        # Every customer here comes from loopback: the per-address caps would count them as one.
        env = {"DATABASE_URL": database_url, "DATABASE_POOL_MAX_SIZE": str(POOL_MAX_SIZE),
               "PICKUP_SOCKETS_PER_ADDRESS": "0", "PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS": "0"}
        with Stack(log_dir=str(tmp_path), env=env) as stack:
            stack.prepare()
            yield stack, server_url, database_url


async def place_orders(sockets: list, item: int) -> list[str]:
    """Each socket places one order; the reply types."""
    message = {"type": "order.place", "request_id": "r1", "items": [{"menu_item": item, "quantity": 1}],
               "pickup_at": pickup_at(3600)}

    async def one(socket) -> str:
        await socket.send(json.dumps(message))
        while True:
            reply = json.loads(await socket.recv())
            if reply.get("request_id") == "r1":
                return reply["type"]

    return list(await asyncio.gather(*(one(socket) for socket in sockets)))


@pytest.mark.timeout(600)  # under half a minute here with another core busy: a slower machine gets room
async def test_a_hundred_page_loads_in_flight_with_a_thousand_customers_connected_stay_within_the_pools(postgres_stack):
    raise_file_limit()  # a thousand sockets on this side too
    stack, server_url, database_url = postgres_stack
    keys = create_sessions(stack, CUSTOMERS)
    base = stack.start_web()
    stack.start_run_queue("--interval", "0.2")
    item = menu_item_id(base)
    sockets, refused = await connect_customers(base, keys)
    try:
        assert refused == 0
        assert len(sockets) == CUSTOMERS
        with ConnectionWatch(server_url, database_url) as watch:
            # A hundred anonymous page loads in flight at every moment, while
            # connected customers place orders (the consumers' database thread).
            # How many a second the machine serves is bench/crowd.py's figure:
            # a load that waited the pool's timeout is answered 503 with
            # Retry-After (pickup/busy.py) and comes back, as a browser would.
            loads, orders = await asyncio.gather(page_loads(base, 500, 100, retry_busy=True), place_orders(sockets[:50], item))
        assert loads["statuses"] == {"200": 500}  # not one 500, nor a refused or timed-out load
        assert orders == ["order.accepted"] * 50
        assert all(socket.state.name == "OPEN" for socket in sockets)
        assert watch.samples > 10
        # One daphne and one run_queue process: two pools.
        assert 0 < watch.peak <= 2 * POOL_MAX_SIZE, watch.peak
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    assert "Traceback" not in stack.logs(full=True)
