"""channels-redis still offers, unchanged, every name and Redis layout Pickup's channel layer leans on.

Written against channels-redis 4.3.0. notifications/layer.py lists each name
it uses beyond channels-redis's documented settings in
``CHANNELS_REDIS_INTERNALS``; each is checked here against the installed
package (its signature) and on a real layer connected to the test Redis
(what it does). A failure names the entry and says what to re-check.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from notifications.layer import CHANNELS_REDIS_INTERNALS, CHANNELS_REDIS_VERSION, Internal, PickupChannelLayer
from notifications.layer_pool import LayerConnectionPool

WRITTEN_AGAINST = "4.3.0"
ROOT = Path(__file__).resolve().parents[2]
PREFIX = "pickup-test:contract"
# What PickupChannelLayer.__init__ adds to channels-redis's state. None of
# these names may exist in channels-redis's own layer: it would be overwritten.
OWN_STATE = {"_key_prefix", "_message_expiry", "_membership_expiry", "_socket_capacity", "_process", "_inboxes"}


def _upgrade_advice(internal: Internal | None = None) -> str:
    about = f" Pickup uses {internal.name} for: {internal.used_for}." if internal else ""
    return (
        f"{about} channels-redis {importlib.metadata.version('channels-redis')} is installed; this was written "
        f"against {WRITTEN_AGAINST}. On an upgrade, read the new channels_redis/core.py against every entry of "
        "CHANNELS_REDIS_INTERNALS in notifications/layer.py (and the Redis layouts described under it), adapt "
        "notifications/layer.py and notifications/inbox.py, run tests/notifications/ and `python -m bench.lateness`, "
        "then move CHANNELS_REDIS_VERSION, WRITTEN_AGAINST and the pin in requirements.txt together."
    )


@pytest.fixture
def layer_config() -> dict:
    return {"hosts": [settings.REDIS_URL], "prefix": PREFIX, "capacity": 7, "channel_capacity": {"narrow.*": 3}}


@pytest.fixture
async def layer(layer_config):
    layer = PickupChannelLayer(**layer_config)
    await layer.connection(0).ping()  # connected to the test Redis
    yield layer
    await layer.flush()


def test_the_installed_channels_redis_is_the_release_the_layer_was_checked_against():
    installed = importlib.metadata.version("channels-redis")
    assert installed == CHANNELS_REDIS_VERSION == WRITTEN_AGAINST, _upgrade_advice()


def test_channels_redis_is_pinned_exactly_and_the_readme_says_so():
    pins = (ROOT / "requirements.txt").read_text().splitlines()
    assert f"channels-redis=={WRITTEN_AGAINST}" in pins, "requirements.txt must pin channels-redis exactly." + _upgrade_advice()
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| channels-redis ")]
    assert len(rows) == 1 and "pinned exactly" in rows[0], "README's library table must say channels-redis is pinned exactly"
    assert rows[0].startswith(f"| channels-redis {WRITTEN_AGAINST.rsplit('.', 1)[0]} "), "README names another channels-redis"


@pytest.mark.parametrize("internal", CHANNELS_REDIS_INTERNALS, ids=lambda internal: internal.name)
def test_each_internal_is_still_there_with_the_same_signature(internal):
    found = getattr(RedisChannelLayer, internal.name, None)
    assert callable(found), f"RedisChannelLayer.{internal.name} is gone or no longer a method." + _upgrade_advice(internal)
    signature = str(inspect.signature(found))
    assert signature == internal.signature, (
        f"RedisChannelLayer.{internal.name} is now {signature}; it was {internal.signature}." + _upgrade_advice(internal)
    )


async def _check_connection(layer: PickupChannelLayer) -> None:
    client = layer.connection(layer.consistent_hash("customer.contract"))
    assert isinstance(client, aioredis.Redis) and await client.ping()


async def _check_consistent_hash(layer: PickupChannelLayer) -> None:
    assert layer.consistent_hash("customer.contract") == 0  # one host: shard 0
    sharded = RedisChannelLayer(hosts=["redis://one", "redis://two"])
    shards = {sharded.consistent_hash(f"customer.{n}") for n in range(50)}
    assert shards == {0, 1}


async def _check_group_key(layer: PickupChannelLayer) -> None:
    channel = await layer.new_channel()
    await layer.group_add("customer.contract", channel)
    key = layer._group_key("customer.contract")
    assert key == f"{PREFIX}:group:customer.contract".encode()  # the pattern tests/processes/ match
    assert await layer.connection(0).zscore(key, channel) is not None  # where group_add wrote it


async def _check_serialize(layer: PickupChannelLayer) -> None:
    # channels-redis's own send writes a message where, and as, group_send_many does.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "pickup.alert", "n": 1})
    [(member, sent_at)] = await layer.connection(0).zrange(PREFIX + layer.non_local_name(channel), 0, -1, withscores=True)
    assert layer.deserialize(member) == {"type": "pickup.alert", "n": 1, "__asgi_channel__": channel}
    assert isinstance(layer.serialize({"type": "pickup.alert"}), bytes) and sent_at > 0


async def _check_deserialize(layer: PickupChannelLayer) -> None:
    message = {"type": "pickup.alert", "alert": {"id": 3, "text": "取餐"}, "__asgi_channel__": ["a.b!c"]}
    assert layer.deserialize(layer.serialize(message)) == message


async def _check_non_local_name(layer: PickupChannelLayer) -> None:
    assert layer.non_local_name("specific.abc!def") == "specific.abc!"
    assert layer.non_local_name("kitchen.staff") == "kitchen.staff"


async def _check_get_capacity(layer: PickupChannelLayer) -> None:
    assert layer.get_capacity("specific.abc!def") == 7
    assert layer.get_capacity("narrow.abc!def") == 3


async def _check_require_valid_channel_name(layer: PickupChannelLayer) -> None:
    assert layer.require_valid_channel_name(await layer.new_channel()) is True
    with pytest.raises(TypeError):
        layer.require_valid_channel_name("not a channel")


async def _check_require_valid_group_name(layer: PickupChannelLayer) -> None:
    assert layer.require_valid_group_name("customer.contract") is True
    with pytest.raises(TypeError):
        layer.require_valid_group_name("customer!contract")


async def _check_new_channel(layer: PickupChannelLayer) -> None:
    first, second = await layer.new_channel(), await layer.new_channel()
    assert first != second and layer.non_local_name(first) == layer.non_local_name(second)  # one inbox
    assert layer.require_valid_channel_name(layer.non_local_name(first), receive=True)


async def _check_receive(layer: PickupChannelLayer) -> None:
    # What channels-redis's own send and group_send write, this process's sockets receive.
    tab, other_tab = await layer.new_channel(), await layer.new_channel()
    await layer.send(tab, {"type": "order.updated", "n": 1})
    for channel in (tab, other_tab):
        await layer.group_add("customer.contract", channel)
    await layer.group_send("customer.contract", {"type": "pickup.alert", "n": 2})
    assert await asyncio.wait_for(layer.receive(tab), 5) == {"type": "order.updated", "n": 1}
    assert await asyncio.wait_for(layer.receive(tab), 5) == {"type": "pickup.alert", "n": 2}
    assert await asyncio.wait_for(layer.receive(other_tab), 5) == {"type": "pickup.alert", "n": 2}
    # And what group_send_many writes, channels-redis's own receive reads.
    plain = RedisChannelLayer(hosts=[settings.REDIS_URL], prefix=PREFIX)
    plain_tab = await plain.new_channel()
    await layer.group_add("customer.plain", plain_tab)
    assert await layer.group_send_many([("customer.plain", {"type": "pickup.alert", "n": 3})]) == [True]
    assert await asyncio.wait_for(plain.receive(plain_tab), 5) == {"type": "pickup.alert", "n": 3}


async def _check_create_pool(layer: PickupChannelLayer) -> None:
    # channels-redis still builds each shard's client on the pool create_pool makes.
    assert isinstance(layer.connection(0).connection_pool, LayerConnectionPool)


CHECKS: dict[str, Callable[[PickupChannelLayer], Awaitable[None]]] = {
    "connection": _check_connection,
    "consistent_hash": _check_consistent_hash,
    "_group_key": _check_group_key,
    "serialize": _check_serialize,
    "deserialize": _check_deserialize,
    "non_local_name": _check_non_local_name,
    "get_capacity": _check_get_capacity,
    "require_valid_channel_name": _check_require_valid_channel_name,
    "require_valid_group_name": _check_require_valid_group_name,
    "new_channel": _check_new_channel,
    "receive": _check_receive,
    "create_pool": _check_create_pool,
}


def test_every_internal_has_a_check_of_what_it_does():
    assert set(CHECKS) == {internal.name for internal in CHANNELS_REDIS_INTERNALS}


@pytest.mark.parametrize("internal", CHANNELS_REDIS_INTERNALS, ids=lambda internal: internal.name)
async def test_each_internal_still_does_what_the_layer_relies_on(internal, layer):
    try:
        await CHECKS[internal.name](layer)
    except (AssertionError, AttributeError, TypeError) as error:
        pytest.fail(f"{internal.name} no longer behaves as Pickup relies on ({error!r})." + _upgrade_advice(internal))


def test_the_layer_replaces_only_the_listed_methods(layer_config):
    replaced = {name for name in vars(PickupChannelLayer) if not name.startswith("__") and hasattr(RedisChannelLayer, name)}
    listed = {internal.name for internal in CHANNELS_REDIS_INTERNALS if internal.replaced}
    assert replaced == listed, (
        f"PickupChannelLayer overrides {sorted(replaced - listed)} without listing them, or channels-redis no longer "
        f"has {sorted(listed - replaced)}." + _upgrade_advice()
    )


def test_the_layer_state_shadows_none_of_channels_redis_own(layer_config):
    plain, ours = RedisChannelLayer(**layer_config), PickupChannelLayer(**layer_config)
    added = set(vars(ours)) - set(vars(plain))
    assert added == OWN_STATE, (
        f"channels-redis now keeps {sorted(OWN_STATE - added)} itself, which PickupChannelLayer would overwrite"
        f" (rename ours), or PickupChannelLayer gained {sorted(added - OWN_STATE)} (add it to OWN_STATE)."
        + _upgrade_advice()
    )
