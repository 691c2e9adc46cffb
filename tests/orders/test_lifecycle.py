"""The order lifecycle: only valid moves, and the alerts and kitchen queue follow each one."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Alert
from orders import kitchen_queue, services, timeline
from orders.models import Order, PickupSlot
from pickup.errors import PickupError
from tests.conftest import pickup_in

pytestmark = pytest.mark.django_db(transaction=True)

ALL_MOVES = list(itertools.product(Order.Status.values, repeat=2))


def place(menu, seconds: float = 3600, customer_id: str = "customer-a") -> Order:
    return services.place_order(customer_id=customer_id, lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(seconds))


@pytest.mark.parametrize(("current", "target"), ALL_MOVES, ids=[f"{a}->{b}" for a, b in ALL_MOVES])
def test_only_moves_in_the_lifecycle_table_are_allowed(menu, current, target):
    order = place(menu)
    Order.objects.filter(pk=order.pk).update(status=current)
    order.refresh_from_db()
    allowed = target in Order.TRANSITIONS[current]
    if allowed:
        services.change_status(order, target)
        assert Order.objects.get(pk=order.pk).status == target
    else:
        with pytest.raises(PickupError) as refused:
            services.change_status(order, target)
        assert refused.value.code == "invalid_transition"
        assert Order.objects.get(pk=order.pk).status == current


def test_the_lifecycle_reads_like_the_kitchen(menu):
    assert set(Order.TRANSITIONS[Order.Status.QUEUED]) >= {Order.Status.PREPARING, Order.Status.CANCELLED}
    assert Order.TRANSITIONS[Order.Status.PICKED_UP] == frozenset()
    assert Order.TRANSITIONS[Order.Status.CANCELLED] == frozenset()


def test_a_stale_copy_cannot_overwrite_a_newer_status(menu):
    order = place(menu)
    stale = Order.objects.get(pk=order.pk)
    services.change_status(order, Order.Status.PREPARING)
    with pytest.raises(PickupError) as refused:
        services.change_status(stale, Order.Status.CANCELLED)
    assert refused.value.code == "order_changed"


def test_ready_early_alerts_at_once_and_the_pickup_alert_never_fires(menu):
    order = place(menu, 3600)
    services.change_status(order, Order.Status.PREPARING)
    services.change_status(order, Order.Status.READY)
    early = Alert.objects.get(order=order, kind=Alert.Kind.READY_EARLY)
    assert early.due_at <= timezone.now()
    assert "ready early" in early.message()
    assert Alert.objects.get(order=order, kind=Alert.Kind.PICKUP).cancelled_at is not None
    assert kitchen_queue.entries() == []


def test_staff_cancel_with_a_reason_alerts_the_customer_and_frees_the_place(menu):
    order = place(menu)
    slot = PickupSlot.objects.get(pk=order.slot_id)
    assert slot.taken == 1
    services.change_status(order, Order.Status.CANCELLED, reason="sold_out", note="we ran out of congee")
    alert = Alert.objects.get(order=order, kind=Alert.Kind.CANCELLED)
    assert alert.message() == f"Order {order.pickup_code} has been cancelled: Sold out — we ran out of congee"
    assert Alert.objects.get(order=order, kind=Alert.Kind.PICKUP).cancelled_at is not None
    assert PickupSlot.objects.get(pk=slot.pk).taken == 0
    assert kitchen_queue.entries() == []


def test_run_queue_starts_preparation_when_the_lead_time_comes(menu):
    due = place(menu, 3600)
    later = place(menu, 7200)
    Order.objects.filter(pk=due.pk).update(preparation_at=timezone.now() - timedelta(seconds=1))
    assert timeline.start_preparations() == 1
    assert Order.objects.get(pk=due.pk).status == Order.Status.PREPARING
    assert Order.objects.get(pk=later.pk).status == Order.Status.QUEUED
    assert timeline.start_preparations() == 0  # once


def test_a_claimed_batch_is_made_ready_at_once_but_only_orders_still_waiting(menu):
    waiting, preparing, cancelled, early = (place(menu) for _ in range(4))
    Order.objects.filter(pk=preparing.pk).update(status=Order.Status.PREPARING)
    services.cancel_order(customer_id="customer-a", order_id=cancelled.pk)
    services.change_status(early, Order.Status.READY)  # staff: ready early

    made_ready = timeline.make_ready([waiting.pk, preparing.pk, cancelled.pk, early.pk, 999_999])

    assert made_ready == {waiting.pk: waiting.pickup_code, preparing.pk: preparing.pickup_code}
    for order in (waiting, preparing):
        order.refresh_from_db()
        assert order.status == Order.Status.READY and order.processed_at is not None
        assert order.ready_at == order.processed_at and timezone.is_aware(order.ready_at)
    assert Order.objects.get(pk=cancelled.pk).status == Order.Status.CANCELLED
    assert Order.objects.get(pk=early.pk).processed_at is None  # left to process_due_order
    assert timeline.make_ready([waiting.pk, preparing.pk]) == {}  # once


def test_uncollected_order_gets_one_reminder_then_is_marked_not_collected(menu, restaurant):
    order = place(menu, 3600)
    services.change_status(order, Order.Status.READY)
    grace = restaurant.no_show_grace_minutes
    # Inside the reminder window: one reminder, however many passes run.
    Order.objects.filter(pk=order.pk).update(pickup_at=timezone.now() - timedelta(minutes=grace - 5))
    assert timeline.handle_no_shows() == 1
    assert timeline.handle_no_shows() == 0
    reminder = Alert.objects.get(order=order, kind=Alert.Kind.REMINDER)
    assert reminder.message() == f"Order {order.pickup_code} is waiting for you at the counter."
    # Past the grace period: not collected, and no alert is left to push.
    Order.objects.filter(pk=order.pk).update(pickup_at=timezone.now() - timedelta(minutes=grace + 1))
    assert timeline.handle_no_shows() == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.NOT_COLLECTED
    assert not Alert.objects.filter(order=order, cancelled_at=None, sent_at=None).exists()


def test_picked_up_order_leaves_the_queue_and_its_alerts_stop(menu):
    order = place(menu, 3600)
    services.change_status(order, Order.Status.READY)
    services.change_status(order, Order.Status.PICKED_UP)
    assert Order.objects.get(pk=order.pk).closed_at is not None
    assert not Alert.objects.filter(order=order, cancelled_at=None).exists()
    assert kitchen_queue.entries() == []
