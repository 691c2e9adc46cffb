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


async def _receiving(layer: PickupChannelLayer, channel: str) -> asyncio.Task:
    """Start a socket-like receive on ``channel``, as a consumer does, and let it begin."""
    task = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.05)
    return task


async def test_sockets_of_the_sending_process_are_handed_their_message_without_redis(settings, clean_redis):
    here = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:local")
    elsewhere = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:local")  # another daphne
    local_tab, remote_tab = await here.new_channel(), await elsewhere.new_channel()
    for channel in (local_tab, remote_tab):
        await here.group_add("customer.carol", channel)
    local_receive = await _receiving(here, local_tab)
    # Stop this process reading its Redis inbox: only a direct hand-off can reach local_tab now.
    here._reader.cancel()
    await asyncio.gather(here._reader, return_exceptions=True)

    assert await here.group_send_many([("customer.carol", {"type": "pickup.alert", "n": 7})]) == [True]

    assert (await asyncio.wait_for(local_receive, 5))["n"] == 7
    # The other process's socket was sent its copy through its Redis inbox.
    assert clean_redis.zcard(f"pickup-test:localspecific.{elsewhere.client_prefix}!") == 1
    assert (await asyncio.wait_for(elsewhere.receive(remote_tab), 5))["n"] == 7
    await here.flush()


async def test_a_local_socket_that_stopped_reading_refuses_past_capacity(settings):
    layer = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:local-full", capacity=3)
    channel = await layer.new_channel()
    await layer.group_add("customer.slow", channel)
    first = await _receiving(layer, channel)

    accepted = await layer.group_send_many([("customer.slow", {"type": "pickup.alert", "n": n}) for n in range(5)])

    assert accepted == [True, True, True, False, False]
    received = [(await asyncio.wait_for(first, 5))["n"]]
    received += [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(2)]
    assert received == [0, 1, 2]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)
    await layer.flush()


async def test_local_sockets_are_reached_through_the_process_own_memberships(settings, clean_redis):
    layer = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:own-groups")
    tab, gone = await layer.new_channel(), await layer.new_channel()
    for channel in (tab, gone):
        await layer.group_add("customer.dave", channel)
    await layer.group_discard("customer.dave", gone)
    receiving = await _receiving(layer, tab)
    # Redis forgets the group (a flush): the process still knows its own socket is in it.
    clean_redis.delete(layer._group_key("customer.dave"))

    assert await layer.group_send_many([("customer.dave", {"type": "pickup.alert", "n": 9})]) == [True]

    assert (await asyncio.wait_for(receiving, 5))["n"] == 9
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(gone), 0.3)
    await layer.flush()


async def test_a_fetched_batch_is_cleaned_from_the_backup_queue_once_received(settings, clean_redis):
    sender = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:backup")
    receiver = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:backup")  # another daphne
    tab = await receiver.new_channel()
    await sender.group_add("customer.erin", tab)
    assert await sender.group_send_many([("customer.erin", {"type": "pickup.alert", "n": n}) for n in range(5)]) == [True] * 5

    received = sorted([(await asyncio.wait_for(receiver.receive(tab), 5))["n"] for _ in range(5)])
    await asyncio.sleep(0.1)  # the last cleaner runs after the last message is handed over

    assert received == [0, 1, 2, 3, 4]
    inbox = f"pickup-test:backupspecific.{receiver.client_prefix}!"
    assert clean_redis.zcard(receiver._backup_channel_name(inbox)) == 0
    with pytest.raises(asyncio.TimeoutError):  # nothing comes back from the backup
        await asyncio.wait_for(receiver.receive(tab), 0.5)
    await sender.flush()
