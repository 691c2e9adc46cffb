"""Placing an order over the customer's WebSocket."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest

from notifications.models import Alert
from orders import kitchen_queue
from orders.models import Order
from tests.conftest import connected, customer_session, order_message, pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


async def test_order_is_stored_and_queued_once_scored_by_pickup_time(menu, clean_redis):
    session_key, customer_id = await customer_session()
    pickup_at = pickup_in(3600)
    async with connected(session_key) as socket:
        await socket.send_json_to(order_message(menu, pickup_at=pickup_at, quantity=2))
        reply = await socket.receive_json_from(timeout=5)

    assert reply["type"] == "order.accepted"
    assert reply["request_id"] == "r1"
    assert reply["message"] == "Payment successful, please wait for your pickup alert."
    order = await Order.objects.aget(pk=reply["order"]["id"])
    assert order.customer_id == customer_id
    assert order.status == Order.Status.QUEUED
    assert order.total == Decimal("12.00")
    assert reply["order"]["total"] == "12.00"
    assert reply["order"]["pickup_code"] == order.pickup_code
    assert order.paid_at is not None
    queue = clean_redis.zrange("pickup-test:kitchen_queue", 0, -1, withscores=True)
    assert queue == [(str(order.pk).encode(), float(kitchen_queue.score_of(pickup_at)))]
    assert await Alert.objects.filter(order=order, kind=Alert.Kind.PICKUP, due_at=pickup_at).aexists()


async def test_queue_is_sorted_by_pickup_time_not_order_time(menu, clean_redis):
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        for request_id, seconds in (("late", 7200), ("early", 1800)):
            await socket.send_json_to(order_message(menu, pickup_at=pickup_in(seconds), request_id=request_id))
            assert (await socket.receive_json_from(timeout=5))["type"] == "order.accepted"

    late, early = [order async for order in Order.objects.order_by("created_at")]
    assert [order_id for order_id, _ in kitchen_queue.entries()] == [early.pk, late.pk]


async def test_pickup_codes_count_up_per_pickup_day(menu):
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        for request_id in ("a", "b"):
            await socket.send_json_to(order_message(menu, pickup_at=pickup_in(3600), request_id=request_id))
            await socket.receive_json_from(timeout=5)
    codes = [code async for code in Order.objects.order_by("pk").values_list("pickup_code", flat=True)]
    assert codes == ["A001", "A002"]



async def test_orders_sent_at_once_from_many_sockets_each_get_their_own_answer(menu, clean_redis):
    sessions = [await customer_session() for _ in range(6)]
    tomorrow = pickup_in(3600 + 86400)
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(connected(key)) for key, _ in sessions]
        messages = [order_message(menu, pickup_at=pickup_in(3600 + n), request_id=f"o{n}") for n in range(4)]
        messages.append(order_message(menu, pickup_at=tomorrow, request_id="o4"))
        messages.append({**order_message(menu, pickup_at=pickup_in(3600), request_id="bad"), "items": [{"menu_item": 999999, "quantity": 1}]})
        for socket, message in zip(sockets, messages, strict=True):
            await socket.send_json_to(message)
        replies = [await socket.receive_json_from(timeout=5) for socket in sockets]

    assert [reply["request_id"] for reply in replies] == ["o0", "o1", "o2", "o3", "o4", "bad"]
    assert [reply["type"] for reply in replies] == ["order.accepted"] * 5 + ["error"]
    assert replies[-1]["code"] == "unknown_item"
    orders = {order.pk: order async for order in Order.objects.all()}
    assert len(orders) == 5
    for (_key, customer_id), reply in zip(sessions[:5], replies[:5], strict=True):
        order = orders[reply["order"]["id"]]
        assert order.customer_id == customer_id
        assert reply["order"]["pickup_code"] == order.pickup_code
        assert [line["quantity"] for line in reply["order"]["lines"]] == [1]
    today_codes = sorted(order.pickup_code for order in orders.values() if order.pickup_at != tomorrow)
    assert today_codes == ["A001", "A002", "A003", "A004"]
    assert sorted(order_id for order_id, _ in kitchen_queue.entries()) == sorted(orders)
    assert await Alert.objects.filter(order__in=list(orders), kind=Alert.Kind.PICKUP).acount() == 5
