"""Customers cancel or reschedule over the WebSocket until the kitchen starts their order."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from notifications.models import Alert
from orders import kitchen_queue
from orders.models import Order, PickupSlot
from tests.conftest import connected, customer_session, move_pickup, order_message, pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


async def place(socket, menu, seconds: float) -> dict:
    await socket.send_json_to(order_message(menu, pickup_at=pickup_in(seconds), request_id="place"))
    reply = await socket.receive_json_from(timeout=5)
    assert reply["type"] == "order.accepted", reply
    return reply["order"]


async def ask(socket, message: dict) -> dict:
    await socket.send_json_to({**message, "request_id": "ask"})
    while True:
        reply = await socket.receive_json_from(timeout=5)
        if reply.get("request_id") == "ask":
            return reply


async def messages_within(socket, seconds: float) -> list[dict]:
    heard = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        if await socket.receive_nothing(timeout=min(left, 0.1)):
            continue
        heard.append(await socket.receive_json_from())
    return heard


async def test_cancelled_order_frees_its_place_and_no_stale_alert_fires(menu):
    session_key, _ = await customer_session()
    async with connected(session_key) as socket, connected(session_key) as other_tab:
        order = await place(socket, menu, 3600)
        assert order["can_change"] is True
        # Due in 3 s from now, however long placing took: the cancel alone must beat its timer.
        pickup_at = (await database_sync_to_async(move_pickup)(order["id"], pickup_in(3.0))).due_at
        reply = await ask(socket, {"type": "order.cancel", "order_id": order["id"]})
        assert reply["type"] == "order.updated"
        assert reply["order"]["status"] == "cancelled" and reply["order"]["can_change"] is False
        # The pickup time passes (by a second, whatever the cancel took): no
        # pickup alert, and no "cancelled" alert for a customer who cancelled
        # it themselves. The asking tab has its reply once; the other tab
        # hears of the new order, then of the cancel.
        heard = await messages_within(socket, (pickup_at - timezone.now()).total_seconds() + 1.0)
        assert heard == []
        elsewhere = await messages_within(other_tab, 0.2)
        assert [(message["type"], message["order"]["status"]) for message in elsewhere] == [
            ("order.updated", "queued"), ("order.updated", "cancelled"),
        ]
        assert all("request_id" not in message for message in elsewhere)
    assert await database_sync_to_async(kitchen_queue.entries)() == []
    assert (await PickupSlot.objects.aget()).taken == 0
    assert not await Alert.objects.filter(order_id=order["id"], sent_at__isnull=False).aexists()


async def test_rescheduled_alert_fires_at_the_new_time_only(menu):
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        order = await place(socket, menu, 3600)
        # Due in 3 s from now, however long placing took: the reschedule alone must beat its timer.
        old_time = (await database_sync_to_async(move_pickup)(order["id"], pickup_in(3.0))).due_at
        new_time = pickup_in(5.0)
        reply = await ask(socket, {"type": "order.reschedule", "order_id": order["id"], "pickup_at": new_time.isoformat()})
        assert reply["type"] == "order.updated", reply
        # The old time passes, by a second whatever the moves took, without an
        # alert; and the reply came once, with its request_id.
        heard = await messages_within(socket, (old_time - timezone.now()).total_seconds() + 1.0)
        assert heard == []
        alert = await socket.receive_json_from(timeout=5)
        assert alert["type"] == "alert" and alert["alert"]["order_id"] == order["id"]
        assert timezone.now() >= new_time
    entries = await database_sync_to_async(kitchen_queue.entries)()
    assert entries in ([], [(order["id"], kitchen_queue.score_of(new_time))])  # run_queue may not have run


async def test_rescheduling_into_a_full_slot_is_refused_and_keeps_the_order(menu, restaurant):
    restaurant.slot_capacity = 1
    await restaurant.asave()
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        mine = await place(socket, menu, 3600)
        await socket.send_json_to(order_message(menu, pickup_at=pickup_in(7200), request_id="other"))
        other = (await socket.receive_json_from(timeout=5))["order"]
        reply = await ask(socket, {"type": "order.reschedule", "order_id": mine["id"], "pickup_at": other["pickup_at"]})
    assert reply["type"] == "error" and reply["code"] == "slot_full"
    stored = await Order.objects.aget(pk=mine["id"])
    assert stored.pickup_at.isoformat() == timezone.datetime.fromisoformat(mine["pickup_at"]).astimezone(stored.pickup_at.tzinfo).isoformat()
    assert sorted([slot.taken async for slot in PickupSlot.objects.all()]) == [1, 1]


async def test_cancel_at_the_last_allowed_moment_and_just_after(menu):
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        first = await place(socket, menu, 3600)
        second = await place(socket, menu, 3600)
        await Order.objects.filter(pk=second["id"]).aupdate(preparation_at=timezone.now() - timedelta(milliseconds=1))
        # Still ahead when its cancel is handled, however slowly a busy machine answers it.
        await Order.objects.filter(pk=first["id"]).aupdate(preparation_at=timezone.now() + timedelta(seconds=10))
        allowed = await ask(socket, {"type": "order.cancel", "order_id": first["id"]})
        refused = await ask(socket, {"type": "order.cancel", "order_id": second["id"]})
    assert allowed["type"] == "order.updated" and allowed["order"]["status"] == "cancelled"
    assert refused["type"] == "error" and refused["code"] == "too_late_to_change"
    assert (await Order.objects.aget(pk=second["id"])).status == Order.Status.QUEUED


async def test_preparing_order_cannot_be_rescheduled(menu):
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        order = await place(socket, menu, 3600)
        await Order.objects.filter(pk=order["id"]).aupdate(status=Order.Status.PREPARING)
        reply = await ask(socket, {"type": "order.reschedule", "order_id": order["id"], "pickup_at": pickup_in(7200).isoformat()})
    assert reply["code"] == "too_late_to_change"


async def test_a_customer_cannot_touch_someone_elses_order(menu):
    owner_key, _ = await customer_session()
    other_key, _ = await customer_session()
    async with connected(owner_key) as socket:
        order = await place(socket, menu, 3600)
    async with connected(other_key) as socket:
        cancel = await ask(socket, {"type": "order.cancel", "order_id": order["id"]})
        move = await ask(socket, {"type": "order.reschedule", "order_id": order["id"], "pickup_at": pickup_in(7200).isoformat()})
        nonsense = await ask(socket, {"type": "order.cancel", "order_id": "1 OR 1=1"})
    assert cancel["code"] == move["code"] == nonsense["code"] == "order_not_found"
    assert (await Order.objects.aget(pk=order["id"])).status == Order.Status.QUEUED
