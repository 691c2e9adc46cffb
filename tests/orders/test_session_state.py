"""What a socket is told as it connects: its customer's latest orders and missed alerts, never another's.

Sockets connecting together (a web server's restart moves them all) have
their state read together (orders.consumers.session_reading).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from notifications.models import Alert
from orders import selectors
from orders.models import Order
from tests.conftest import connected, customer_communicator, customer_session, move_pickup, order_message, pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


def make_orders(customer_id: str, count: int, start_code: int) -> list[Order]:
    now = timezone.now()
    return [
        Order.objects.create(
            customer_id=customer_id, pickup_code=f"Z{start_code + n:03d}", pickup_date=now.date(),
            pickup_at=now + timedelta(minutes=n), status=Order.Status.PICKED_UP,
        )
        for n in range(count)
    ]


def test_latest_orders_of_many_customers_come_latest_first_and_at_most_the_limit_each(db):
    first = make_orders("first", 12, 0)
    second = make_orders("second", 2, 100)
    make_orders("stranger", 3, 200)

    latest = selectors.latest_orders_of(["first", "second", "nobody"])

    assert [order.pk for order in latest["first"]] == [order.pk for order in reversed(first)][: selectors.LATEST_ORDERS]
    assert [order.pk for order in latest["second"]] == [second[1].pk, second[0].pk]
    assert latest["nobody"] == []
    assert set(latest) == {"first", "second", "nobody"}


async def test_sockets_connecting_together_each_get_only_their_own_orders_and_missed_alerts(menu):
    customers = [await customer_session() for _ in range(4)]
    placed: dict[str, dict] = {}
    for session_key, customer_id in customers:
        async with connected(session_key) as socket:
            await socket.send_json_to(order_message(menu, pickup_at=pickup_in(3600)))
            reply = await socket.receive_json_from(timeout=5)
            assert reply["type"] == "order.accepted", reply
            placed[customer_id] = reply["order"]
            await database_sync_to_async(move_pickup)(reply["order"]["id"], pickup_in(-1))  # due, once accepted
            alert = await socket.receive_json_from(timeout=5)  # seen, not acknowledged
            assert alert["type"] == "alert"

    sockets = [customer_communicator(session_key) for session_key, _ in customers]
    try:
        assert all(ok for ok, _ in await asyncio.gather(*(socket.connect() for socket in sockets)))
        for socket, (_key, customer_id) in zip(sockets, customers, strict=True):
            ready = await socket.receive_json_from(timeout=5)
            replayed = await socket.receive_json_from(timeout=5)
            assert ready["type"] == "session.ready"
            assert [order["id"] for order in ready["orders"]] == [placed[customer_id]["id"]]
            assert replayed["type"] == "alert" and replayed["replayed"] is True
            assert replayed["alert"]["order_id"] == placed[customer_id]["id"]
            assert await socket.receive_nothing(timeout=0.2)
    finally:
        for socket in sockets:
            await socket.disconnect()
    assert await Alert.objects.filter(acknowledged_at=None).acount() == len(customers)
