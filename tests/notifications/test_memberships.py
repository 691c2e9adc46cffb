"""A socket leaves its groups without fuss, even when Redis cannot be reached, and is
kept in them however often Redis loses its memory."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from channels.layers import get_channel_layer
from redis.sentinel import MasterNotFoundError

from notifications.memberships import CHECK_EVERY, GroupsOutOfReach, memberships

pytestmark = pytest.mark.usefixtures("group_keeper")


async def test_a_socket_closing_while_redis_is_away_still_closes(monkeypatch):
    layer = get_channel_layer()

    async def unreachable(group, channel):
        raise redis.ConnectionError("Connection closed by server.")

    channel = await layer.new_channel()
    await memberships.join("customer.leaving", channel)
    monkeypatch.setattr(layer, "group_discard", unreachable)

    await memberships.leave("customer.leaving", channel)  # must not raise: daphne would stall the close

    assert await memberships.rejoin_all() == 0  # and it is no longer kept in the group


def _in_group(redis_client, group: str, channel: str) -> bool:
    """Whether Redis lists the channel in the group: what every sender asks before sending."""
    return redis_client.zscore(get_channel_layer()._group_key(group), channel) is not None


async def test_groups_lost_again_in_the_middle_of_their_rejoin_are_joined_again(clean_redis, monkeypatch):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in ("customer.first", "customer.second"):
        await memberships.join(group, channel)
    joining = layer.group_add
    second_loss = asyncio.Event()

    async def lose_redis_after_the_first_rejoin(group, channel):
        await joining(group, channel)
        if not second_loss.is_set():  # Redis goes again right after the first group is back
            second_loss.set()
            clean_redis.flushdb()

    monkeypatch.setattr(layer, "group_add", lose_redis_after_the_first_rejoin)
    clean_redis.flushdb()  # the first loss; the process notices it within a second
    await asyncio.wait_for(second_loss.wait(), timeout=CHECK_EVERY * 5)

    deadline = time.monotonic() + CHECK_EVERY * 5
    while not (_in_group(clean_redis, "customer.first", channel) and _in_group(clean_redis, "customer.second", channel)):
        assert time.monotonic() < deadline, "a group lost during the re-join was never joined again"
        await asyncio.sleep(0.1)


async def test_a_rejoin_that_fails_half_way_is_made_again(clean_redis, monkeypatch):
    """Its marker is already set (a fresh Redis after a restart, a stale pooled connection)."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await memberships.join("customer.failing", channel)
    joining = layer.group_add
    failed = asyncio.Event()

    async def fail_once(group, channel):
        if not failed.is_set():
            failed.set()
            raise redis.ConnectionError("Connection closed by server.")
        await joining(group, channel)

    monkeypatch.setattr(layer, "group_add", fail_once)
    clean_redis.flushdb()
    await asyncio.wait_for(failed.wait(), timeout=CHECK_EVERY * 5)

    deadline = time.monotonic() + CHECK_EVERY * 5
    while not _in_group(clean_redis, "customer.failing", channel):
        assert time.monotonic() < deadline, "the failed re-join was never made again"
        await asyncio.sleep(0.1)


async def test_a_socket_that_cannot_join_all_its_groups_is_left_in_none(clean_redis, monkeypatch):
    """A counter board joins the kitchen's group and its own; Redis goes (a failover) between the two."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    joining = layer.group_add

    async def failover_after_the_first(group, channel):
        if group == "board.second":
            raise MasterNotFoundError("No master found for 'pickup'")
        await joining(group, channel)

    monkeypatch.setattr(layer, "group_add", failover_after_the_first)
    with pytest.raises(GroupsOutOfReach):
        await memberships.join_all(["kitchen.first", "board.second"], channel)

    assert (memberships.sockets_in("kitchen.first"), memberships.sockets_in("board.second")) == ((), ())
    assert not _in_group(clean_redis, "kitchen.first", channel)  # left again: not sent the kitchen's news
    assert await memberships.rejoin_all() == 0  # nor joined again when Redis comes back
