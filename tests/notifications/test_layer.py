"""The batched group_send delivers like channels-redis's own, on the real Redis layer."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from notifications.layer import PickupChannelLayer
from notifications.memberships import memberships
from notifications.sender import send_to_groups

pytestmark = pytest.mark.usefixtures("group_keeper")


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
    # Redis lists only the other process's socket: only a direct hand-off can reach local_tab.
    await here.group_add("customer.carol", remote_tab)
    local_receive = await _receiving(here, local_tab)

    accepted = await here.group_send_many([("customer.carol", {"type": "pickup.alert", "n": 7})],
                                          here={"customer.carol": {local_tab}}.get)

    assert accepted == [True]
    assert (await asyncio.wait_for(local_receive, 5))["n"] == 7
    # The other process's socket was sent its copy through its Redis inbox.
    assert clean_redis.zcard(f"pickup-test:local{elsewhere.non_local_name(remote_tab)}") == 1
    assert (await asyncio.wait_for(elsewhere.receive(remote_tab), 5))["n"] == 7
    await here.flush()


async def test_a_local_socket_listed_in_redis_too_gets_one_copy(settings):
    layer = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:local-once")
    tab = await layer.new_channel()
    await layer.group_add("customer.fay", tab)
    receiving = await _receiving(layer, tab)

    await layer.group_send_many([("customer.fay", {"type": "pickup.alert", "n": 8})], here={"customer.fay": {tab}}.get)

    assert (await asyncio.wait_for(receiving, 5))["n"] == 8
    with pytest.raises(asyncio.TimeoutError):  # not a second time through Redis
        await asyncio.wait_for(layer.receive(tab), 0.5)
    await layer.flush()


async def test_a_local_socket_that_stopped_reading_refuses_past_capacity(settings):
    layer = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:local-full", capacity=3)
    channel = await layer.new_channel()
    first = await _receiving(layer, channel)

    accepted = await layer.group_send_many([("customer.slow", {"type": "pickup.alert", "n": n}) for n in range(5)],
                                           here={"customer.slow": {channel}}.get)

    assert accepted == [True, True, True, False, False]
    received = [(await asyncio.wait_for(first, 5))["n"]]
    received += [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(2)]
    assert received == [0, 1, 2]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)
    await layer.flush()


async def test_the_process_own_sockets_get_their_alerts_when_redis_forgot_their_group(clean_redis):
    layer = get_channel_layer()
    tab, gone = await layer.new_channel(), await layer.new_channel()
    for channel in (tab, gone):
        await memberships.join("customer.dave", channel)
    await memberships.leave("customer.dave", gone)
    receiving = await _receiving(layer, tab)
    clean_redis.delete(layer._group_key("customer.dave"))  # a flush: the process still knows its socket

    assert await send_to_groups([("customer.dave", {"type": "pickup.alert", "n": 9})]) == [True]

    assert (await asyncio.wait_for(receiving, 5))["n"] == 9
    with pytest.raises(asyncio.TimeoutError):  # a socket that left hears nothing
        await asyncio.wait_for(layer.receive(gone), 0.3)


async def test_a_fetched_batch_is_cleaned_from_the_backup_queue_once_received(settings, clean_redis):
    sender = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:backup")
    receiver = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:backup")  # another daphne
    tab = await receiver.new_channel()
    await sender.group_add("customer.erin", tab)
    assert await sender.group_send_many([("customer.erin", {"type": "pickup.alert", "n": n}) for n in range(5)]) == [True] * 5

    received = sorted([(await asyncio.wait_for(receiver.receive(tab), 5))["n"] for _ in range(5)])
    await asyncio.sleep(0.1)  # the backup is cleaned after the batch is handed over

    assert received == [0, 1, 2, 3, 4]
    assert clean_redis.exists(receiver._inbox(tab).backup_key) == 0
    with pytest.raises(asyncio.TimeoutError):  # nothing comes back from the backup
        await asyncio.wait_for(receiver.receive(tab), 0.5)
    await sender.flush()


async def test_messages_a_reader_fetched_but_never_handed_over_are_read_again(settings, clean_redis):
    sender = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:restore")
    receiver = PickupChannelLayer(hosts=[settings.REDIS_URL], prefix="pickup-test:restore")
    tab = await receiver.new_channel()
    await sender.group_add("customer.gus", tab)
    await sender.group_send_many([("customer.gus", {"type": "pickup.alert", "n": 4})])
    inbox = receiver._inbox(tab)
    # As if a reader had fetched it and Redis went away before the reply arrived.
    clean_redis.zunionstore(inbox.backup_key, [inbox.key])
    clean_redis.delete(inbox.key)

    assert (await asyncio.wait_for(receiver.receive(tab), 5))["n"] == 4
    await sender.flush()


async def test_a_batch_sent_while_redis_is_down_is_refused_and_said_in_one_warning_line(settings, caplog):
    # Nothing listens on port 1: every connection is refused, as while Redis restarts.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "notifications.layer.PickupChannelLayer",
                                           "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1"}]}}}

    accepted = await send_to_groups([("customer.alice", {"type": "pickup.alert", "n": n}) for n in range(2)])

    assert accepted == [False, False]  # refused, so the alerts stay unsent and are pushed again
    [said] = [record for record in caplog.records if record.name == "notifications.sender"]
    assert (said.levelname, said.exc_info) == ("WARNING", None)  # no traceback for an outage the operator already sees
