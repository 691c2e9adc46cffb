"""The pickup alert reaches every tab of the customer at the pickup time, and nobody else."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import timezone

from notifications import services as alert_services
from notifications.models import Alert
from orders import services as order_services
from orders.models import Order
from tests.conftest import connected, customer_session, move_pickup, order_message, pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


async def place(socket, menu, seconds: float) -> dict:
    await socket.send_json_to(order_message(menu, pickup_at=pickup_in(seconds)))
    reply = await socket.receive_json_from(timeout=5)
    assert reply["type"] == "order.accepted", reply
    return reply["order"]


async def place_due_in(socket, menu, seconds: float) -> tuple[dict, Alert]:
    """An order whose pickup alert is due ``seconds`` after it was accepted, however long placing took
    (placed a moment ahead, a stall would have it refused as past): the order as placed, its moved alert."""
    order = await place(socket, menu, 3600)
    return order, await database_sync_to_async(move_pickup)(order["id"], pickup_in(seconds))


async def recorded(alert_id: int) -> Alert:
    """The alert once its push is written down: the web timers settle pushes a moment after sending them."""
    for _attempt in range(250):
        alert = await Alert.objects.aget(pk=alert_id)
        if alert.sent_at is not None:
            return alert
        await asyncio.sleep(0.02)
    return alert


async def test_alert_arrives_at_pickup_time_not_before(menu):
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        order, alert = await place_due_in(socket, menu, 1.0)
        due = alert.due_at
        message = await socket.receive_json_from(timeout=5)
        received = timezone.now()

    assert message["type"] == "alert"
    assert message["alert"]["message"] == f"Order {order['pickup_code']} is ready, please collect it at the counter."
    assert message["alert"]["order_id"] == order["id"]
    assert received >= due  # never early
    alert = await recorded(message["alert"]["id"])
    assert alert.sent_at is not None and alert.sent_at >= due
    assert alert.send_count == 1


async def test_every_tab_of_the_customer_gets_the_alert_and_no_other_customer(menu):
    session_key, _ = await customer_session()
    other_key, _ = await customer_session()
    async with connected(session_key) as tab1, connected(session_key) as tab2, connected(other_key) as stranger:
        order, _alert = await place_due_in(tab1, menu, 1.0)
        told = await tab2.receive_json_from(timeout=5)
        assert told["type"] == "order.updated" and told["order"]["id"] == order["id"]  # the new order, pushed
        first = await tab1.receive_json_from(timeout=5)
        second = await tab2.receive_json_from(timeout=5)
        assert first["alert"]["id"] == second["alert"]["id"]
        assert first["alert"]["order_id"] == order["id"]
        assert await stranger.receive_nothing(timeout=1.0)


async def test_alert_does_not_depend_on_the_placing_socket(menu):
    session_key, _ = await customer_session()
    async with connected(session_key) as placing:
        order, _alert = await place_due_in(placing, menu, 1.5)
    # The placing tab is gone; another tab of the same customer is open.
    async with connected(session_key) as other_tab:
        message = await other_tab.receive_json_from(timeout=5)
        while message["type"] == "order.updated":  # the new order, published in the background, may come first
            message = await other_tab.receive_json_from(timeout=5)
    assert message["type"] == "alert"
    assert message["alert"]["order_id"] == order["id"]


async def test_idle_socket_longer_than_redis_timeouts_still_gets_its_alert(menu):
    """redis-py 8's 5 s socket timeout must not close an idle customer socket (stack trap)."""
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        order = await place(socket, menu, 3600)
        started = time.monotonic()
        # Idle longer than the 5 s timeouts, however long placing took: a
        # real wait, on purpose. Then the kitchen finishes early: an alert now.
        assert await socket.receive_nothing(timeout=7)
        stored = await Order.objects.aget(pk=order["id"])
        await database_sync_to_async(order_services.change_status)(stored, Order.Status.READY)
        message = await socket.receive_json_from(timeout=10)
        while message["type"] == "order.updated":  # the status change is told too, before or after
            message = await socket.receive_json_from(timeout=10)
        idle = time.monotonic() - started
    assert message["type"] == "alert"
    assert message["alert"]["order_id"] == order["id"]
    assert idle > 6


async def test_unacknowledged_alert_is_replayed_on_connect_until_acknowledged(menu):
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        order, _alert = await place_due_in(socket, menu, 0.5)
        alert = (await socket.receive_json_from(timeout=5))["alert"]
    # Not acknowledged: the next tab is offered it again, marked as replayed.
    async with connected(session_key) as socket:
        replayed = await socket.receive_json_from(timeout=5)
        assert replayed == {"type": "alert", "alert": alert, "replayed": True}
        await socket.send_json_to({"type": "alert.ack", "alert_id": alert["id"], "request_id": "ack"})
        assert await socket.receive_json_from(timeout=5) == {"type": "alert.acked", "request_id": "ack", "alert_id": alert["id"]}
    async with connected(session_key) as socket:
        assert await socket.receive_nothing(timeout=0.5)
    assert order["id"] == alert["order_id"]


async def test_an_acknowledgement_being_written_does_not_hold_up_the_socket(menu):
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        await place_due_in(socket, menu, 0.3)
        alert = (await socket.receive_json_from(timeout=5))["alert"]
        await socket.send_json_to({"type": "alert.ack", "alert_id": alert["id"], "request_id": "ack"})
        await socket.send_json_to({"type": "ping", "request_id": "ping"})
        # The acknowledgement waits for its batch; the ping behind it does not.
        assert await socket.receive_json_from(timeout=5) == {"type": "pong", "request_id": "ping"}
        assert await socket.receive_json_from(timeout=5) == {"type": "alert.acked", "request_id": "ack", "alert_id": alert["id"]}
    assert (await Alert.objects.aget(pk=alert["id"])).acknowledged_at is not None


async def test_customer_cannot_acknowledge_someone_elses_alert(menu):
    owner_key, _ = await customer_session()
    other_key, _ = await customer_session()
    async with connected(owner_key) as socket:
        await place_due_in(socket, menu, 0.3)
        alert = (await socket.receive_json_from(timeout=5))["alert"]
    async with connected(other_key) as socket:
        await socket.send_json_to({"type": "alert.ack", "alert_id": alert["id"]})
        reply = await socket.receive_json_from(timeout=5)
    assert reply["type"] == "error" and reply["code"] == "alert_not_found"
    assert (await Alert.objects.aget(pk=alert["id"])).acknowledged_at is None


async def test_alert_timer_sends_once_even_when_armed_twice(menu):
    from notifications.timers import alert_timers

    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        _order, alert = await place_due_in(socket, menu, 0.8)
        # A second web process (or a refill) arming the same alert must not double it.
        alert_timers._handles.pop(alert.pk, None)
        alert_timers.arm(alert.pk, alert.due_at, alert.customer_id)
        alert_timers.arm(alert.pk, alert.due_at, alert.customer_id)
        first = await socket.receive_json_from(timeout=5)
        assert first["alert"]["id"] == alert.pk
        assert await socket.receive_nothing(timeout=1.0)
    assert (await recorded(alert.pk)).send_count == 1


async def _claimed_at(alert_id: int, until: float) -> float | None:
    """When the alert's claim first shows in the database, polling until ``until`` (epoch seconds)."""
    while time.time() < until:
        if await Alert.objects.filter(pk=alert_id).exclude(claim_token="").aexists():
            return time.time()
        await asyncio.sleep(0.02)
    return None


async def place_and_see_it_claimed(socket, menu, seconds: float):
    """Place an order due in ``seconds``; (order, its alert, due time, when the web timer claimed it or None)."""
    order = await place(socket, menu, seconds)
    due = timezone.datetime.fromisoformat(order["pickup_at"])
    alert = await Alert.objects.select_related("order").aget(order_id=order["id"])
    return order, alert, due, await _claimed_at(alert.pk, until=due.timestamp())


async def test_timer_claims_ahead_of_the_due_time_and_pushes_at_it(menu, settings):
    settings.PICKUP_TIMER_LOOKAHEAD_MS = 3000  # seconds for the test to act between claim and push
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        _order, alert, due, claimed = await place_and_see_it_claimed(socket, menu, 4.0)
        message = await socket.receive_json_from(timeout=5)
        received = timezone.now()

    assert claimed is not None and claimed < due.timestamp()  # the database work was done before the due time
    assert message["alert"]["id"] == alert.pk
    assert received >= due  # the push waited for it
    alert = await recorded(alert.pk)
    assert alert.send_count == 1 and alert.claim_token == ""


async def test_an_alert_moved_after_its_claim_is_pushed_at_the_new_time_only(menu, settings):
    settings.PICKUP_TIMER_LOOKAHEAD_MS = 3000  # seconds for the test to act between claim and push
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        _order, alert, old_due, claimed = await place_and_see_it_claimed(socket, menu, 4.0)
        assert claimed is not None
        new_due = old_due + timezone.timedelta(seconds=1.5)

        @database_sync_to_async
        def move() -> None:
            with transaction.atomic():
                alert_services.schedule_alert(order=alert.order, kind=Alert.Kind.PICKUP, due_at=new_due)

        await move()
        assert await socket.receive_nothing(timeout=max(0.0, old_due.timestamp() - time.time()) + 0.7)
        message = await socket.receive_json_from(timeout=5)
        received = timezone.now()

    assert message["alert"]["id"] == alert.pk
    assert timezone.datetime.fromisoformat(message["alert"]["due_at"]) == new_due
    assert received >= new_due
    assert (await recorded(alert.pk)).send_count == 1


async def test_an_alert_withdrawn_after_its_claim_is_not_pushed(menu, settings):
    settings.PICKUP_TIMER_LOOKAHEAD_MS = 3000  # seconds for the test to act between claim and push
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        order, pickup_alert, due, claimed = await place_and_see_it_claimed(socket, menu, 4.0)
        assert claimed is not None
        stored = await Order.objects.aget(pk=order["id"])
        await database_sync_to_async(order_services.change_status)(stored, Order.Status.CANCELLED, reason="kitchen_closed")
        kinds = []
        while not await socket.receive_nothing(timeout=max(0.01, due.timestamp() + 0.7 - time.time())):
            message = await socket.receive_json_from(timeout=5)
            if message["type"] == "alert":
                kinds.append(message["alert"]["kind"])

    assert kinds == [Alert.Kind.CANCELLED]
    assert (await Alert.objects.aget(pk=pickup_alert.pk)).send_count == 0
