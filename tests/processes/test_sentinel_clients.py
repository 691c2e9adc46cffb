"""Every Redis client of Pickup follows a Sentinel failover: the cache and its connection
(the kitchen queue's scripts, the order limits, /readyz), the channel layer and the group
memberships' own client.

A real primary, replica and three sentinels (pickup/redis_sentinel.py); the
clients are built from pickup/redis_clients.py as settings.py builds them.
A client may fail once on a connection to the dead primary (the caller's
retry covers it, as run_queue's next pass does); after that it must reach
the promoted replica and find what was written before the primary died.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

from channels.layers import get_channel_layer

from notifications.layer import PickupChannelLayer
from notifications.layer_pool import SentinelLayerConnectionPool
from notifications.memberships import Memberships
from django_redis import get_redis_connection

from orders import kitchen_queue
from pickup import redis_clients
from pickup.redis_clients import RedisPlace
from pickup.redis_sentinel import MASTER_NAME
from tests.processes.clients import wait_until

pytestmark = pytest.mark.processes


def answered(call, attempts: int = 5):
    """``call()``'s answer, trying again after a failure on a connection to the dead primary."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def cached(key: str):
    """The cache's value, raising on a miss: a cache out of reach answers a miss, not the error."""
    value = cache.get(key, default=KeyError)
    if value is KeyError:
        raise KeyError(key)
    return value


async def answered_async(call, attempts: int = 5):
    for attempt in range(attempts):
        try:
            return await call()
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)


@pytest.fixture
def place(sentinel_redis):
    place = RedisPlace.from_settings("redis:///0", sentinel_redis.sentinels.split(","), MASTER_NAME)
    caches = {"default": place.cache(key_prefix=settings.REDIS_KEY_PREFIX + "cache", socket_timeout=5, connect_timeout=5)}
    with override_settings(REDIS=place, CACHES=caches):
        yield place


def test_the_cache_and_the_kitchen_queue_follow_a_failover(sentinel_redis, place):
    due = datetime.now(UTC) + timedelta(hours=1)
    cache.set("menu", "kept")
    kitchen_queue.add_many([(1, due), (2, due)])
    sentinel_redis.wait_until_replicated()  # as it is within a millisecond; what is not is lost (docs/delivery.md)

    sentinel_redis.kill_primary()
    sentinel_redis.wait_for_failover()

    assert answered(lambda: cached("menu")) == "kept"
    assert answered(lambda: dict(kitchen_queue.entries())) == {1: kitchen_queue.score_of(due), 2: kitchen_queue.score_of(due)}
    now_ms = kitchen_queue.score_of(due) + 1
    assert sorted(order_id for order_id, _ in answered(lambda: kitchen_queue.claim_due(now_ms=now_ms, lease_ms=1000, limit=10))) == [1, 2]
    assert answered(lambda: get_redis_connection("default").ping())  # what /readyz asks
    assert sentinel_redis.primary_port() == sentinel_redis.ports["replica"]


async def test_the_channel_layer_and_the_memberships_client_follow_a_failover(sentinel_redis, place):
    layer = PickupChannelLayer(hosts=[place.channel_layer_host(socket_timeout=30, max_connections=100)], prefix="pickup-test:sentinel")
    client = redis_clients.async_client(socket_timeout=5, socket_connect_timeout=5)
    try:
        channel = await layer.new_channel()
        await layer.group_add("customer.a", channel)
        await client.set("pickup-test:marker", "1")
        await layer.group_send("customer.a", {"type": "pickup.alert", "n": 1})
        assert await asyncio.wait_for(layer.receive(channel), 10) == {"type": "pickup.alert", "n": 1}
        await asyncio.to_thread(sentinel_redis.wait_until_replicated)

        await asyncio.to_thread(sentinel_redis.kill_primary)
        await asyncio.to_thread(sentinel_redis.wait_for_failover)

        assert await answered_async(lambda: client.get("pickup-test:marker")) == b"1"
        await answered_async(lambda: layer.group_send("customer.a", {"type": "pickup.alert", "n": 2}))
        # The inbox reader finds the new primary by itself; the group joined before the failover holds.
        assert await asyncio.wait_for(layer.receive(channel), 30) == {"type": "pickup.alert", "n": 2}
    finally:
        await client.aclose()
        await layer.flush()


async def test_the_channel_layers_pool_through_the_sentinels_waits_for_a_connection_at_its_bound(sentinel_redis, place):
    """As on a plain REDIS_URL (tests/notifications/test_layer_pool.py): a crowd beyond the bound
    waits its turn; channels-redis's own sentinel pool raised MaxConnectionsError."""
    layer = PickupChannelLayer(hosts=[place.channel_layer_host(socket_timeout=30, max_connections=5)], prefix="pickup-test:sentinel-pool")
    try:
        channels = [await layer.new_channel() for _ in range(100)]
        await asyncio.gather(*(layer.group_add(f"customer.{n}", channel) for n, channel in enumerate(channels)))
        await asyncio.gather(*(layer.group_send(f"customer.{n}", {"type": "pickup.alert", "n": n}) for n in range(100)))
        received = await asyncio.gather(*(asyncio.wait_for(layer.receive(channel), 30) for channel in channels))
        assert [message["n"] for message in received] == list(range(100))
        assert isinstance(layer.connection(0).connection_pool, SentinelLayerConnectionPool)
    finally:
        await layer.flush()


async def test_a_join_the_old_primary_never_passed_on_is_made_again_on_the_promoted_replica(sentinel_redis, place):
    """Replication is asynchronous: the replica may hold a web process's marker and lack a later join."""
    layers = {"default": {"BACKEND": "notifications.layer.PickupChannelLayer", "CONFIG": {
        "hosts": [place.channel_layer_host(socket_timeout=30, max_connections=100)], "prefix": "pickup-test:sentinel-groups"}}}
    with override_settings(CHANNEL_LAYERS=layers):
        layer = get_channel_layer()
        keeper = Memberships()
        keeper.start()
        primary = sentinel_redis.client("primary")
        try:
            await wait_until(lambda: primary.keys(settings.REDIS_KEY_PREFIX + "web-process:*"), 10, "the keeper's marker")
            channel = await layer.new_channel()
            await keeper.join("customer.a", channel)
            group = layer._group_key("customer.a")
            await asyncio.to_thread(sentinel_redis.wait_until_replicated)
            # As if the old primary had died before passing the join on: the replica has the marker, not the join.
            replica = sentinel_redis.client("replica")
            replica.config_set("replica-read-only", "no")
            replica.delete(group)
            replica.config_set("replica-read-only", "yes")

            await asyncio.to_thread(sentinel_redis.kill_primary)
            await asyncio.to_thread(sentinel_redis.wait_for_failover)

            await wait_until(lambda: replica.zscore(group, channel) is not None, 30, "the join made again on the new primary")
        finally:
            keeper.stop()
            await layer.flush()
