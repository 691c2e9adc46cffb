"""Every change of an order reaches every open tab of its customer, in the customer's language.

Staff, run_queue's lead time, the pickup time, the reminder and the no-show
step all go through orders.announcements; these tests follow each path to a
real socket on channels-redis.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from orders import services, timeline
from orders.customers import LANGUAGE_KEY, SESSION_KEY
from orders.models import Order
from tests.conftest import connected, customer_communicator, move_pickup, order_message, pickup_in
from tests.orders.test_customer_changes import messages_within, place
from tests.orders.test_run_queue import run_queue_once

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def session_in(language: str) -> str:
    """A customer whose page is in ``language``: their session key."""
    session = SessionStore()
    session[SESSION_KEY] = f"test-{language}-{timezone.now().timestamp():.6f}"
    session[LANGUAGE_KEY] = language
    session.create()
    return session.session_key


async def next_update(socket, timeout: float = 5) -> dict:
    """The next order.updated on a socket, skipping anything else (alerts, pongs)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await socket.receive_json_from(timeout=max(0.01, deadline - loop.time()))
        if message["type"] == "order.updated":
            return message


async def test_lead_time_starting_preparation_tells_every_tab_in_chinese(menu):
    session_key = await session_in("zh-hans")
    async with connected(session_key) as socket, connected(session_key) as other_tab:
        order = await place(socket, menu, 3600)
        assert (await next_update(other_tab))["order"]["status"] == "queued"
        await Order.objects.filter(pk=order["id"]).aupdate(preparation_at=timezone.now() - timedelta(seconds=1))
        await database_sync_to_async(run_queue_once)()
        for tab in (socket, other_tab):
            update = await next_update(tab)
            assert "request_id" not in update
            assert update["order"]["status"] == "preparing"
            assert update["order"]["status_display"] == "制作中"
            assert update["order"]["can_change"] is False
            assert update["order"]["lines"][0]["name"] == menu["set"].name_zh_hans
            assert "不能再修改" in update["order"]["status_note"]


async def test_the_pickup_time_making_an_order_ready_tells_the_customer(menu):
    session_key = await session_in("zh-hans")
    async with connected(session_key) as socket:
        order = await place(socket, menu, 3600)
        await database_sync_to_async(move_pickup)(order["id"], pickup_in(-1))  # due, once accepted
        await database_sync_to_async(run_queue_once)()
        update = await next_update(socket)
    assert update["order"]["status"] == "ready"
    assert update["order"]["status_display"] == "已做好"
    assert order["pickup_code"] in update["order"]["status_note"]


async def test_reminder_and_no_show_each_reach_the_customer(menu, restaurant):
    session_key = await session_in("en")
    async with connected(session_key) as socket:
        order = await place(socket, menu, 3600)
        stored = await Order.objects.aget(pk=order["id"])
        await database_sync_to_async(services.change_status)(stored, Order.Status.READY)
        assert (await next_update(socket))["order"]["status"] == "ready"
        grace = restaurant.no_show_grace_minutes
        await Order.objects.filter(pk=order["id"]).aupdate(pickup_at=timezone.now() - timedelta(minutes=grace - 1))
        await database_sync_to_async(timeline.handle_no_shows)()
        assert (await next_update(socket))["order"]["status"] == "ready"  # the reminder
        await Order.objects.filter(pk=order["id"]).aupdate(pickup_at=timezone.now() - timedelta(minutes=grace + 1))
        await database_sync_to_async(timeline.handle_no_shows)()
        update = await next_update(socket)
    assert update["order"]["status"] == "not_collected"
    assert update["order"]["status_display"] == "Not collected"


async def test_a_second_tab_learns_of_a_new_order_and_the_ordering_tab_hears_it_once(menu):
    session_key = await session_in("en")
    async with connected(session_key) as socket, connected(session_key) as other_tab:
        order = await place(socket, menu, 3600)
        pushed = await next_update(other_tab)
        assert pushed["order"]["id"] == order["id"] and "request_id" not in pushed
        assert await messages_within(socket, 0.5) == []


async def test_session_ready_speaks_the_tabs_language(menu):
    session_key = await session_in("zh-hans")
    async with connected(session_key) as socket:
        await place(socket, menu, 3600)
    socket = customer_communicator(session_key)
    assert (await socket.connect())[0]
    try:
        ready = await socket.receive_json_from(timeout=5)
    finally:
        await socket.disconnect()
    [order] = ready["orders"]
    assert order["status_display"] == "排队中"
    assert order["lines"][0]["name"] == menu["set"].name_zh_hans


async def test_staff_cancel_reason_reaches_a_chinese_customer_translated(menu):
    session_key = await session_in("zh-hans")
    async with connected(session_key) as socket:
        order = await place(socket, menu, 3600)
        stored = await Order.objects.aget(pk=order["id"])
        await database_sync_to_async(services.change_status)(stored, Order.Status.CANCELLED, reason="sold_out")
        alert = None
        update = None
        while alert is None or update is None:
            message = await socket.receive_json_from(timeout=5)
            if message["type"] == "alert":
                alert = message["alert"]
            elif message["type"] == "order.updated":
                update = message["order"]
    assert alert["message"] == f"订单 {order['pickup_code']} 已取消：已售罄"
    assert update["cancel_reason"] == "sold_out" and update["status_note"] == "已取消：已售罄"


async def test_alert_due_at_is_in_the_restaurants_offset(menu):
    session_key = await session_in("en")
    async with connected(session_key) as socket:
        order = await place(socket, menu, 3600)
        await database_sync_to_async(move_pickup)(order["id"], pickup_in(0.3))  # due a moment after it was accepted
        while (message := await socket.receive_json_from(timeout=5))["type"] != "alert":
            pass
    due_at = timezone.datetime.fromisoformat(message["alert"]["due_at"])
    assert due_at.utcoffset() == timezone.localtime(due_at).utcoffset()
    assert due_at.utcoffset() != timedelta(0)  # Asia/Shanghai: +08:00, not UTC


async def test_a_message_too_large_is_answered_with_its_request_id(menu):
    session_key = await session_in("en")
    async with connected(session_key) as socket:
        too_large = {**order_message(menu, pickup_at=pickup_in(3600), request_id="big"), "padding": "x" * 20_000}
        await socket.send_to(text_data=json.dumps(too_large))
        named = await socket.receive_json_from(timeout=5)
        await socket.send_to(text_data='{"padding": "' + "x" * settings.PICKUP_MAX_MESSAGE_BYTES + '", "request_id": "late"}')
        unnamed = await socket.receive_json_from(timeout=5)
    assert named["code"] == "message_too_large" and named["request_id"] == "big"
    assert unnamed["code"] == "message_too_large" and unnamed["request_id"] is None
