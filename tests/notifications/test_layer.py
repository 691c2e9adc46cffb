"""The batched group_send delivers like channels-redis's own, on the real Redis layer."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from notifications.layer import PickupChannelLayer


async def test_group_send_many_reaches_every_member_of_each_group_and_no_one_else():
    layer = get_channel_layer()
    assert isinstance(layer, PickupChannelLayer)
    alice_tabs = [await layer.new_channel() for _ in range(2)]
    bob = await layer.new_channel()
    for channel in alice_tabs:
        await layer.group_add("customer.alice", channel)
    await layer.group_add("customer.bob", bob)

    accepted = await layer.group_send_many(
        [("customer.alice", {"type": "pickup.alert", "n": 1}), ("customer.bob", {"type": "pickup.alert", "n": 2}),
         ("customer.nobody", {"type": "pickup.alert", "n": 3})]
    )

    assert accepted == [True, True, True]
    for channel in alice_tabs:
        assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 1
    assert (await asyncio.wait_for(layer.receive(bob), 5))["n"] == 2
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(bob), 0.3)


async def test_group_send_many_refuses_past_capacity_and_says_which(settings):
    layer = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:capacity", capacity=3)
    channel = await layer.new_channel()
    await layer.group_add("customer.full", channel)

    accepted = await layer.group_send_many([("customer.full", {"type": "pickup.alert", "n": n}) for n in range(5)])

    assert accepted == [True, True, True, False, False]
    received = sorted([(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(3)])
    assert received == [0, 1, 2]
    await layer.flush()
