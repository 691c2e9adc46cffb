"""run_queue processes an order once, when its pickup time has come, and sends what is due."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from io import StringIO

import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django_redis import get_redis_connection

from notifications.models import Alert
from notifications.sender import customer_group
from orders import kitchen_queue, services
from orders.models import Order
from tests.conftest import move_pickup, pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


def place(menu, seconds: float, customer_id: str = "customer-a") -> Order:
    return services.place_order(customer_id=customer_id, lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(seconds))


def place_due(menu, customer_id: str = "customer-a") -> Order:
    """An order whose pickup time came a second ago: placed an hour ahead, then moved
    (a time a moment ahead is refused as past if placing stalls that long)."""
    order = place(menu, 3600, customer_id)
    move_pickup(order.pk, pickup_in(-1))
    order.refresh_from_db()
    return order


def run_queue_once() -> str:
    out = StringIO()
    try:
        call_command("run_queue", "--once", stdout=out, stderr=out)
    finally:
        connections.close_all()  # this may be a worker thread of the test
    return out.getvalue()


def test_run_queue_once_claims_only_due_orders(menu):
    due = place_due(menu)
    later = place(menu, 3600)

    run_queue_once()

    due.refresh_from_db()
    later.refresh_from_db()
    assert due.status == Order.Status.READY and due.processed_at is not None
    assert later.status == Order.Status.QUEUED and later.processed_at is None
    assert [order_id for order_id, _ in kitchen_queue.entries()] == [later.pk]


def test_a_second_pass_does_not_process_an_order_again(menu):
    due = place_due(menu)
    run_queue_once()
    processed_at = Order.objects.get(pk=due.pk).processed_at
    # Even if the entry reappears (a rebuild race, a Redis failover), the database says no.
    kitchen_queue.add_many([(due.pk, due.pickup_at)])
    run_queue_once()
    assert Order.objects.get(pk=due.pk).processed_at == processed_at
    assert kitchen_queue.entries() == []


def test_cancelled_order_is_skipped_not_made_ready(menu):
    order = place_due(menu)
    kitchen_queue.add_many([(order.pk, order.pickup_at)])  # as if the cancel's removal was lost
    services.change_status(order, Order.Status.CANCELLED)
    run_queue_once()
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert not Alert.objects.filter(order=order, kind=Alert.Kind.PICKUP, sent_at__isnull=False).exists()


async def test_run_queue_sends_the_alert_when_no_web_timer_did(menu):
    from channels.db import database_sync_to_async

    order = await database_sync_to_async(place_due)(menu, "offline-web")
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(customer_group("offline-web"), channel)

    await asyncio.to_thread(run_queue_once)

    # The customer's group also hears of the order's changes (order.updated,
    # its placement's included, published after commit): the alert is among them.
    async def next_alert() -> dict:
        while (message := await layer.receive(channel))["type"] != "pickup.alert":
            assert message["type"] == "order.updated", message
        return message

    message = await asyncio.wait_for(next_alert(), timeout=5)
    assert message["alert"]["order_id"] == order.pk
    alert = await Alert.objects.aget(order=order, kind=Alert.Kind.PICKUP)
    assert alert.sent_at is not None and alert.send_count == 1


def test_entry_claimed_by_a_crashed_worker_is_taken_again_after_its_lease(menu):
    order = place_due(menu)
    now_ms = int(time.time() * 1000)
    # A worker claims the entry and dies before finishing.
    assert kitchen_queue.claim_due(now_ms=now_ms, lease_ms=60_000, limit=10) == [(order.pk, kitchen_queue.score_of(order.pickup_at))]
    run_queue_once()
    assert Order.objects.get(pk=order.pk).processed_at is None  # lease still running: hands off
    lease_runs_out(order)
    run_queue_once()
    assert Order.objects.get(pk=order.pk).status == Order.Status.READY


def lease_runs_out(order: Order) -> None:
    """Time passes for a claim: its lease (the claims set's score) now ended a minute ago."""
    ended_ms = int(time.time() * 1000) - 60_000
    get_redis_connection("default").zadd(settings.REDIS_KEY_PREFIX + kitchen_queue.CLAIMS, {str(order.pk): ended_ms}, xx=True)


def test_redis_loss_is_repaired_from_the_database(menu, clean_redis):
    due = place_due(menu)
    later = place(menu, 3600)
    clean_redis.flushdb()  # our private test Redis only

    run_queue_once()

    assert Order.objects.get(pk=due.pk).status == Order.Status.READY
    assert Order.objects.get(pk=later.pk).status == Order.Status.QUEUED
    assert kitchen_queue.entries() == [(later.pk, kitchen_queue.score_of(later.pickup_at))]


def test_unacknowledged_alert_is_pushed_again_later(menu, settings):
    settings.PICKUP_ALERT_RESEND_SECONDS = 600
    order = place_due(menu)
    run_queue_once()
    alert = Alert.objects.get(order=order)
    assert alert.send_count == 1
    assert alert.resend_after == alert.sent_at + timedelta(seconds=600)
    run_queue_once()
    assert Alert.objects.get(pk=alert.pk).send_count == 1  # not yet
    resend_time_comes(alert)
    run_queue_once()
    alert.refresh_from_db()
    assert alert.send_count == 2
    assert alert.resend_after > pickup_in(900)  # the wait doubled: 1,200 s, not 600
    Alert.objects.filter(pk=alert.pk).update(acknowledged_at=pickup_in(0))
    resend_time_comes(alert)
    run_queue_once()
    assert Alert.objects.get(pk=alert.pk).send_count == 2


def resend_time_comes(alert: Alert) -> None:
    """Time passes for an alert: its next push was due a second ago."""
    Alert.objects.filter(pk=alert.pk).update(resend_after=pickup_in(-1))


def test_a_worker_finishing_after_its_lease_leaves_the_new_claim_alone(menu):
    order = place_due(menu)
    stalled_at = int(time.time() * 1000)
    assert kitchen_queue.claim_due(now_ms=stalled_at, lease_ms=100, limit=10)  # a worker that then stalls
    taken_over_at = stalled_at + 200  # its lease has run out on the next worker's clock
    assert kitchen_queue.claim_due(now_ms=taken_over_at, lease_ms=30_000, limit=10)  # another takes it over

    assert kitchen_queue.finish([order.pk], lease_end_ms=stalled_at + 100) == 0  # the stalled one wakes up
    assert kitchen_queue.finish([order.pk], lease_end_ms=taken_over_at + 30_000) == 1
