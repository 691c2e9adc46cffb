"""Staff keep working while Redis is out of reach (an outage, a failover's seconds): every
page of theirs answers, and every change they make to an order is stored.

The database is the record (docs/delivery.md): the kitchen queue, the channel
layer and the cache are an index, a wire and a cache, so none of them may fail
a staff member's page or lose what they did. The refused-customers page has
its own tests (tests/orders/test_order_limits.py).
"""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from orders import kitchen_queue, services
from orders.models import BoardLink, Order
from tests.conftest import move_pickup, pickup_in, redis_out_of_reach
from tests.orders.test_kitchen_screen import logged_in, place
from tests.orders.test_run_queue import run_queue_once

pytestmark = pytest.mark.django_db(transaction=True)

QUEUED, PREPARING, READY = Order.Status.QUEUED, Order.Status.PREPARING, Order.Status.READY
PICKED_UP, CANCELLED = Order.Status.PICKED_UP, Order.Status.CANCELLED


def manager() -> Client:
    """A manager's browser: a page that fails shows its 500 here instead of raising in the test."""
    client = logged_in(is_staff=True, is_superuser=True)
    client.raise_request_exception = False
    return client


def orders_in(menu, status: str, count: int) -> list[Order]:
    """Orders placed while Redis answers (each with its kitchen-queue entry), moved on to ``status``."""
    orders = [place(menu, 3600 + 60 * n, customer_id=f"customer-{n}") for n in range(count)]
    if status != QUEUED:
        orders = [services.change_status(order, status) for order in orders]
    return orders


def failures(caplog) -> list[str]:
    """What was logged as an error, or with a traceback: nothing, for an outage the operator sees elsewhere."""
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]


# Each admin action: the status its orders start in, and the one it moves them to.
ACTIONS = {
    "mark_preparing": (QUEUED, PREPARING),
    "mark_ready": (QUEUED, READY),
    "mark_picked_up": (READY, PICKED_UP),
    "cancel_orders": (QUEUED, CANCELLED),
}


@pytest.mark.parametrize("action", ACTIONS)
def test_an_admin_action_stores_every_order_it_moves_while_redis_is_out_of_reach(action, menu, settings, caplog):
    start, target = ACTIONS[action]
    orders = orders_in(menu, start, 2)
    client = manager()

    with redis_out_of_reach(settings):
        response = client.post(
            reverse("admin:orders_order_changelist"),
            {"action": action, "_selected_action": [order.pk for order in orders]},
            follow=True,
        )

    assert [Order.objects.get(pk=order.pk).status for order in orders] == [target, target]
    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]] == [
        f"2 orders are now {Order.Status(target).label}."
    ]
    assert failures(caplog) == []


# Each one-click step of the kitchen screen: the status its order starts in, and the one it moves it to.
STEPS = {"start": (QUEUED, PREPARING), "ready": (QUEUED, READY), "picked-up": (READY, PICKED_UP), "cancel": (QUEUED, CANCELLED)}


@pytest.mark.parametrize("step", STEPS)
def test_a_kitchen_screen_step_is_stored_while_redis_is_out_of_reach(step, menu, settings, caplog):
    start, target = STEPS[step]
    [order] = orders_in(menu, start, 1)
    client = manager()

    with redis_out_of_reach(settings):
        response = client.post(reverse("admin:orders_kitchen_step", args=[order.pk, step]), {"reason": "sold_out"})

    assert response.status_code == 200
    assert response.json() == {"ok": True, "status": target}
    assert Order.objects.get(pk=order.pk).status == target
    assert failures(caplog) == []


def test_an_order_cancelled_while_redis_is_out_of_reach_is_not_made_ready_at_its_pickup_time(menu, settings):
    """Its kitchen-queue entry could not be taken out: run_queue finds the order cancelled and skips it."""
    [order] = orders_in(menu, QUEUED, 1)
    with redis_out_of_reach(settings):
        response = manager().post(reverse("admin:orders_kitchen_step", args=[order.pk, "cancel"]), {"reason": "sold_out"})
    assert response.status_code == 200
    assert [order_id for order_id, _score in kitchen_queue.entries()] == [order.pk]  # left behind by the outage
    move_pickup(order.pk, pickup_in(-1))

    run_queue_once()

    order.refresh_from_db()
    assert (order.status, order.ready_at) == (CANCELLED, None)
    assert kitchen_queue.entries() == []


STAFF_PAGES = [
    ("admin:index", False),
    ("admin:orders_order_changelist", False),
    ("admin:orders_order_change", True),
    ("admin:orders_kitchen", False),
    ("admin:orders_kitchen_board", False),
    ("orders:kitchen_screen", False),
    ("admin:orders_boardlink_changelist", False),
    ("admin:orders_boardlink_add", False),
    ("admin:notifications_alert_changelist", False),
]


@pytest.mark.parametrize("page, of_an_order", STAFF_PAGES)
def test_a_staff_page_answers_while_redis_is_out_of_reach(page, of_an_order, menu, settings, caplog):
    [order] = orders_in(menu, QUEUED, 1)
    client = manager()

    with redis_out_of_reach(settings):
        response = client.get(reverse(page, args=[order.pk] if of_an_order else []))

    assert response.status_code == 200
    assert failures(caplog) == []


def test_a_board_link_is_made_and_revoked_while_redis_is_out_of_reach(db, settings, caplog):
    client = manager()

    with redis_out_of_reach(settings):
        made = client.post(reverse("admin:orders_boardlink_add"), {"name": "Counter TV"}, follow=True)
        link = BoardLink.objects.get(name="Counter TV")
        revoked = client.post(
            reverse("admin:orders_boardlink_changelist"), {"action": "revoke", "_selected_action": [link.pk]}, follow=True
        )

    assert (made.status_code, revoked.status_code) == (200, 200)
    link.refresh_from_db()
    assert link.is_revoked
    assert failures(caplog) == []


def test_an_order_stored_while_redis_is_out_of_reach_is_said_in_one_warning_without_a_traceback(menu, settings, caplog):
    """With the order limits off nothing refuses it first: the order is stored, and its kitchen-queue
    entry waits for run_queue's rebuild. That is an outage the operator already sees, not a fault."""
    settings.PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER = settings.PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS = 0
    with caplog.at_level(logging.WARNING), redis_out_of_reach(settings):
        order = place(menu, 3600)

    assert Order.objects.get(pk=order.pk).status == QUEUED
    assert failures(caplog) == []
    assert any(str(order.pk) in record.getMessage() and "kitchen queue" in record.getMessage() for record in caplog.records)
    run_queue_once()
    assert order.pk in dict(kitchen_queue.entries())  # the rebuild put it in once Redis answered
