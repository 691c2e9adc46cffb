"""Staff moving a batch of orders while Redis's primary machine is gone (a failover's seconds).

Unlike a stopped Redis (tests/orders/test_staff_during_redis_outage.py), whose
refused connection fails at once, a machine that is gone answers nothing:
every attempt to connect waits out the client's connect timeout
(``SOCKET_CONNECT_TIMEOUT``, 1 s in pickup/settings.py). A staff request
must pay that wait at most once for the kitchen queue, however many orders
it moves: "mark ready" on the morning's twenty orders, not twenty times that.
Counted as attempts to connect that timed out, never as time.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from orders import kitchen_queue
from orders.models import Order
from tests.conftest import move_pickup, pickup_in, redis_black_hole
from tests.orders.test_run_queue import run_queue_once
from tests.orders.test_staff_during_redis_outage import ACTIONS, STEPS, failures, manager, orders_in

pytestmark = pytest.mark.django_db(transaction=True)

MORNING_BATCH = 20

# Cancelling also tells the pickup-time picker's cache that a place came free,
# once per order (orders/pickup_times.py): that wait is the cache's, not the kitchen queue's.
KITCHEN_QUEUE_ONLY = [action for action in ACTIONS if action != "cancel_orders"]


@pytest.mark.parametrize("action", KITCHEN_QUEUE_ONLY)
def test_an_admin_action_on_a_batch_waits_for_redis_once_while_its_machine_is_gone(action, menu, settings, caplog):
    start, target = ACTIONS[action]
    orders = orders_in(menu, start, MORNING_BATCH)
    client = manager()

    with redis_black_hole(settings) as attempts:
        response = client.post(
            reverse("admin:orders_order_changelist"),
            {"action": action, "_selected_action": [order.pk for order in orders]},
        )

    assert attempts == ([] if target in Order.WAITING else ["timeout"])  # preparing: still queued, Redis untouched
    assert response.status_code == 302
    assert [Order.objects.get(pk=order.pk).status for order in orders] == [target] * MORNING_BATCH
    assert failures(caplog) == []


def test_cancelling_a_batch_waits_once_for_the_kitchen_queue_and_once_per_order_for_the_picker_cache(
    menu, settings, caplog
):
    start, target = ACTIONS["cancel_orders"]
    orders = orders_in(menu, start, 3)

    with redis_black_hole(settings) as attempts:
        response = manager().post(
            reverse("admin:orders_order_changelist"),
            {"action": "cancel_orders", "_selected_action": [order.pk for order in orders]},
        )

    assert attempts == ["timeout"] * (1 + 3)
    assert response.status_code == 302
    assert [Order.objects.get(pk=order.pk).status for order in orders] == [target] * 3
    assert failures(caplog) == []


@pytest.mark.parametrize("step", ["ready", "picked-up"])
def test_a_kitchen_screen_step_waits_for_redis_once_while_its_machine_is_gone(step, menu, settings, caplog):
    start, target = STEPS[step]
    [order] = orders_in(menu, start, 1)

    with redis_black_hole(settings) as attempts:
        response = manager().post(reverse("admin:orders_kitchen_step", args=[order.pk, step]))

    assert attempts == ["timeout"]
    assert response.json() == {"ok": True, "status": target}
    assert failures(caplog) == []


def test_orders_marked_ready_while_redis_is_gone_are_left_in_the_kitchen_queue_and_skipped_at_their_pickup_time(
    menu, settings
):
    orders = orders_in(menu, Order.Status.QUEUED, 3)
    with redis_black_hole(settings):
        manager().post(
            reverse("admin:orders_order_changelist"),
            {"action": "mark_ready", "_selected_action": [order.pk for order in orders]},
        )
    ready_at = {order.pk: Order.objects.get(pk=order.pk).ready_at for order in orders}
    assert sorted(order_id for order_id, _score in kitchen_queue.entries()) == sorted(ready_at)  # left behind
    for order in orders:
        move_pickup(order.pk, pickup_in(-1))

    run_queue_once()

    assert {order.pk: (order.status, order.ready_at) for order in Order.objects.filter(pk__in=ready_at)} == {
        order_id: (Order.Status.READY, at) for order_id, at in ready_at.items()
    }
    assert kitchen_queue.entries() == []
