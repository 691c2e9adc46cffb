"""An alert's web timer lives in the process holding its customer's sockets, and nowhere else.

Here the test process is the web process: a customer's socket opened with
the communicator is "here"; a channel the test adds to a customer's group
stands for a socket of another process. Claims are read from the process's
own registry, as differences (other tests count too).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from notifications import socket_pushes
from notifications.models import Alert
from notifications.sender import customer_group
from notifications.timers import alert_timers
from orders import services as order_services
from tests.conftest import connected, customer_session, move_pickup, order_message, pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


def timer_claims() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value("pickup_timer_claims_total", {"outcome": outcome}) or 0.0
        for outcome in ("won", "lost")
    }


def claims_since(before: dict[str, float]) -> dict[str, float]:
    return {outcome: count - before[outcome] for outcome, count in timer_claims().items()}


@database_sync_to_async
def place_for(customer_id: str, menu, seconds: float) -> Alert:
    """An order placed outside any socket (the admin, another process's view), its alert armed after commit."""
    with transaction.atomic():
        order = order_services.place_order(customer_id=customer_id, lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(seconds))
    return Alert.objects.get(order=order)


async def stored(alert_id: int) -> Alert:
    return await Alert.objects.aget(pk=alert_id)


async def wait_past(moment, extra: float) -> None:
    await asyncio.sleep(max(0.0, moment.timestamp() - time.time()) + extra)


async def told_to(channel: str) -> dict:
    """The next message of the customer's group on ``channel``, past the new order's update
    (sent from another loop, it may come before or after)."""
    while (message := await asyncio.wait_for(get_channel_layer().receive(channel), 5))["type"] == "order.updated":
        pass
    return message


async def test_an_alert_for_a_customer_connected_elsewhere_is_told_to_their_group_not_claimed_here(menu):
    alert_timers.start()
    layer = get_channel_layer()
    _session_key, customer_id = await customer_session()
    elsewhere = await layer.new_channel()  # the customer's socket, in another web process
    await layer.group_add(customer_group(customer_id), elsewhere)
    before = timer_claims()

    alert = await place_for(customer_id, menu, 3600)

    assert await told_to(elsewhere) == {"type": "alert.scheduled", "alert_id": alert.pk, "due_at": alert.due_at.isoformat()}
    # Moved here to a moment ahead (placed so, it would be refused as past after a stall): told again.
    alert = await database_sync_to_async(move_pickup)(alert.order_id, pickup_in(0.6))
    assert await told_to(elsewhere) == {"type": "alert.scheduled", "alert_id": alert.pk, "due_at": alert.due_at.isoformat()}
    await wait_past(alert.due_at, 0.5)
    assert claims_since(before) == {"won": 0, "lost": 0}  # that process's timer pushes it, not this one
    assert (await stored(alert.pk)).sent_at is None
    await layer.group_discard(customer_group(customer_id), elsewhere)


async def test_an_alert_told_to_a_customers_socket_is_pushed_by_its_process(menu):
    session_key, customer_id = await customer_session()
    async with connected(session_key) as socket:
        # Placed far ahead, then moved by another process, which tells the customer's group.
        alert = await place_for(customer_id, menu, 3600)
        await database_sync_to_async(Alert.objects.filter(pk=alert.pk).update)(due_at=pickup_in(0.6))
        alert = await stored(alert.pk)
        await socket.receive_json_from(timeout=5)  # the new order's update
        before = timer_claims()
        await get_channel_layer().group_send(
            customer_group(customer_id), {"type": "alert.scheduled", "alert_id": alert.pk, "due_at": alert.due_at.isoformat()}
        )
        message = await socket.receive_json_from(timeout=5)

    assert message["type"] == "alert" and message["alert"]["id"] == alert.pk
    assert timezone.now() >= alert.due_at
    assert claims_since(before) == {"won": 1, "lost": 0}


async def test_a_customers_first_socket_arms_their_pending_alerts(menu):
    session_key, customer_id = await customer_session()
    # Nobody is connected anywhere when it is placed: no timer is armed for it.
    # Due in 3 s from now, however long placing took: connecting must come first.
    alert = await place_for(customer_id, menu, 3600)
    alert = await database_sync_to_async(move_pickup)(alert.order_id, pickup_in(3.0))
    before = timer_claims()
    async with connected(session_key) as socket:
        message = await socket.receive_json_from(timeout=5)
        # The new order's own update, published in the background, may come after connecting.
        while message["type"] == "order.updated":
            message = await socket.receive_json_from(timeout=5)

    assert message["type"] == "alert" and message["alert"]["id"] == alert.pk
    assert not message.get("replayed")  # pushed live at its time, not found on connect
    assert claims_since(before) == {"won": 1, "lost": 0}


async def test_a_timer_whose_customer_left_before_its_claim_time_claims_nothing(menu):
    session_key, customer_id = await customer_session()
    async with connected(session_key) as socket:
        await socket.send_json_to(order_message(menu, pickup_at=pickup_in(3600)))
        reply = await socket.receive_json_from(timeout=5)
        assert reply["type"] == "order.accepted", reply
        # Its timer moved to 3 s from now, however long placing took: only leaving must come first.
        alert = await database_sync_to_async(move_pickup)(reply["order"]["id"], pickup_in(3.0))
        before = timer_claims()

    await wait_past(alert.due_at, 0.5)
    assert claims_since(before) == {"won": 0, "lost": 0}  # left to run_queue, which pushes to nobody
    assert (await stored(alert.pk)).sent_at is None


async def test_a_reloaded_page_keeps_its_timer(menu):
    session_key, _customer_id = await customer_session()
    async with connected(session_key) as socket:
        await socket.send_json_to(order_message(menu, pickup_at=pickup_in(3600)))
        reply = await socket.receive_json_from(timeout=5)
        assert reply["type"] == "order.accepted", reply
        # Its timer moved to 3 s from now, however long placing took: only the reload must come first.
        await database_sync_to_async(move_pickup)(reply["order"]["id"], pickup_in(3.0))
    before = timer_claims()
    async with connected(session_key) as reloaded:
        message = await reloaded.receive_json_from(timeout=5)
        while message["type"] != "alert":  # the order's own update may come first
            message = await reloaded.receive_json_from(timeout=5)

    assert message["alert"]["order_id"] == reply["order"]["id"]
    assert claims_since(before) == {"won": 1, "lost": 0}  # one timer, not one per arrival


def test_arriving_customers_alerts_are_read_for_them_alone_leaving_out_those_a_sender_holds(menu, monkeypatch):
    monkeypatch.setattr(socket_pushes, "CUSTOMERS_PER_QUERY", 1)  # one query per customer: the chunks add up
    alerts = {
        customer_id: Alert.objects.get(
            order=order_services.place_order(customer_id=customer_id, lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(60))
        )
        for customer_id in ("ann", "bob", "cat")
    }
    Alert.objects.filter(pk=alerts["cat"].pk).update(claim_token="held", claimed_until=pickup_in(70))  # a push under way

    horizon = timedelta(seconds=120)
    assert socket_pushes.alerts_due_soon(horizon, {"ann", "cat"}) == [(alerts["ann"].pk, alerts["ann"].due_at, "ann")]
    assert {customer for _id, _due, customer in socket_pushes.alerts_due_soon(horizon)} == {"ann", "bob"}
    assert socket_pushes.alerts_due_soon(timedelta(seconds=30), {"ann", "bob"}) == []  # beyond the horizon
