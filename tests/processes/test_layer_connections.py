"""A crowd that comes and goes leaves a web server's channel-layer connections as it found them.

Closing 2,500 sockets at once once failed 1,501 of their group leaves
(redis-py 8's pool raised MaxConnectionsError at its bound), and the ~1,000
Redis connections the crowd had opened stayed open for good. Here 600
customers connect to a web server whose layer may hold 100 connections, and
all leave at once (notifications/layer_pool.py).
"""

from __future__ import annotations

import asyncio
import urllib.parse

import pytest
import redis

from bench.common import create_sessions
from bench.crowd import connect_customers
from notifications.layer_pool import KEEP_IDLE
from tests.processes.clients import wait_until

pytestmark = pytest.mark.processes

CUSTOMERS = 600
POOL_BOUND = 100


@pytest.fixture
def stack_env():
    return {"CHANNEL_LAYER_MAX_CONNECTIONS": str(POOL_BOUND), "PICKUP_SOCKETS_PER_SESSION": "0",
            "PICKUP_SOCKETS_PER_ADDRESS": "0"}


def _layer_connections(client: redis.Redis, pid: int) -> int:
    """The web server's channel-layer connections, as Redis lists them (named after its process)."""
    return sum(1 for entry in client.client_list() if entry.get("name") == f"pickup-layer-{pid}")


async def test_a_crowd_leaving_at_once_leaves_every_group_within_the_pool_bound_and_the_pool_shrinks_back(stack):
    keys = create_sessions(stack, CUSTOMERS)
    base = stack.start_web()
    pid = stack.web[urllib.parse.urlparse(base).port].pid
    client = redis.Redis.from_url(stack.redis.url)
    groups = stack.env["REDIS_KEY_PREFIX"] + "asgi:group:*"

    sockets, refused = await connect_customers(base, keys)
    assert refused == 0
    assert len(client.keys(groups)) >= CUSTOMERS  # each customer's group, at least

    peak = 0
    watching = True

    async def watch() -> None:
        nonlocal peak
        while watching:
            peak = max(peak, await asyncio.to_thread(_layer_connections, client, pid))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(*(socket.close() for socket in sockets))
        # Every leave happened: no group keeps a member (a failed leave would stay a day).
        await wait_until(lambda: not client.keys(groups), 60, "every group left")
    finally:
        watching = False
        await watcher
    assert KEEP_IDLE + 1 < peak <= POOL_BOUND, peak  # the crowd opened connections, never more than the bound
    # Then the idle ones go: the few kept, and the inbox reader's.
    await wait_until(lambda: _layer_connections(client, pid) <= KEEP_IDLE + 1, 60, "the pool to shrink back")
    client.close()
