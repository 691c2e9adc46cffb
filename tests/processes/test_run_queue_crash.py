"""kill -9 of run_queue, whatever it was holding, loses nothing and repeats nothing.

Web timers are off here, so run_queue is the only sender and its death
matters: claims it held in the database (alerts) and in Redis (kitchen-queue
entries) run out with their lease and the next worker takes them over.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.processes.clients import Customer, session_cookie, session_key, wait_until
from tests.processes.crashes import kill_between_writes
from tests.processes.orders_in_bulk import fall_due, place_orders
from tests.processes.records import (
    alerts_held_by_a_sender,
    all_acknowledged,
    first_pushes,
    kitchen_queue_claims,
    kitchen_queue_keys,
    order_states,
    pickup_alerts,
    processed_count,
    ready_counts,
)

pytestmark = pytest.mark.processes

CUSTOMERS = 3
ORDERS = 300


@pytest.fixture
def stack_settings():
    return {
        "PICKUP_WEB_TIMERS": False,
        # Short lease and resend, so taking over a dead worker's claims is quick.
        "PICKUP_CLAIM_LEASE_SECONDS": 2,
        "PICKUP_ALERT_RESEND_SECONDS": 1,
        # Orders become the workers' business a second after their alerts, so
        # the first worker dies among alerts with every order still waiting.
        "PICKUP_KITCHEN_DELAY_MS": 1000,
    }


async def test_run_queue_killed_while_holding_claims_loses_nothing_and_repeats_nothing(stack):
    base = stack.start_web()
    cookies = [session_cookie(base) for _ in range(CUSTOMERS)]
    customers = [Customer(base, cookie) for cookie in cookies]
    for customer in customers:
        await customer.connect()
    keys = [session_key(cookie) for cookie in cookies]
    # Half the orders wait half an hour ahead until the test makes them due;
    # the other half fall due together 3 s after the last is placed.
    later = await asyncio.to_thread(place_orders, stack, session_keys=keys, count=ORDERS // 2, due_in=None)
    first_due = await asyncio.to_thread(place_orders, stack, session_keys=keys, count=ORDERS // 2, due_in=3.0)
    order_ids = first_due + later
    alerts = pickup_alerts(stack, order_ids)

    # The first worker dies between claiming alerts and recording their push,
    # stepped from one database write to the next until it waits, holding
    # alerts, at the write that records their push…
    first = stack.start_run_queue("--interval", "0.2", "--batch", "20")
    held_alerts = await kill_between_writes(
        stack, first, lambda: alerts_held_by_a_sender(stack), timeout=60, what="while it holds alerts"
    )
    assert processed_count(stack, order_ids) == 0
    # …the second, after making the first orders ready, between claiming
    # kitchen-queue entries and finishing them: the later orders fall due,
    # and the test steps it from one database write to the next until it
    # waits, holding claims, at the write that would make them ready.
    second = stack.start_run_queue("--interval", "0.2", "--batch", "20")
    await wait_until(
        lambda: processed_count(stack, first_due) == len(first_due) and all_acknowledged(stack, first_due),
        60,
        "the first orders made ready and their alerts acknowledged",
    )
    await asyncio.to_thread(fall_due, stack, later, first_in=0)  # may wait for SQLite's write lock
    held_orders = await kill_between_writes(
        stack, second, lambda: kitchen_queue_claims(stack), timeout=60, what="while it holds kitchen-queue entries"
    )
    assert held_alerts and held_orders
    assert held_orders <= set(later)

    stack.start_run_queue("--interval", "0.2", "--batch", "20")
    await wait_until(lambda: processed_count(stack, order_ids) == ORDERS, 60, "every order processed")
    # Across all three workers' logs no order was made ready twice. A worker
    # logs after its commit, so orders the killed one still held may have
    # been made ready without a line; the others each have exactly one.
    await wait_until(lambda: set(order_ids) - held_orders <= set(ready_counts(stack)), 10, "the live workers' lines")
    made_ready = ready_counts(stack)
    assert set(made_ready.values()) == {1}
    assert set(made_ready) <= set(order_ids)
    assert set(order_ids) - set(made_ready) <= held_orders
    assert order_states(stack, order_ids) == {"ready": ORDERS}
    # The dead worker's claims come back when their lease runs out and are
    # finished by the next worker.
    await wait_until(lambda: kitchen_queue_keys(stack) == {"queued": 0, "claimed": 0}, 30, "the dead worker's claims taken over")

    for customer in customers:
        await customer.wait_until_shown(ORDERS // CUSTOMERS, timeout=60)
    await wait_until(lambda: all_acknowledged(stack, order_ids), 30, "every acknowledgement recorded")
    shown = [alert_id for customer in customers for alert_id in customer.shown]
    assert sorted(shown) == sorted(alerts)  # each customer saw exactly their alerts, once
    # Every alert nobody died holding was pushed first exactly once. The dead
    # worker may have pushed its held alerts without recording (or logging)
    # it; the next worker pushes them again (once) unless a tab had already
    # acknowledged the first push, and the client shows them once either way.
    pushed_first = first_pushes(stack)
    not_held = [alert_id for alert_id in alerts if alert_id not in held_alerts]
    assert {alert_id: pushed_first[alert_id] for alert_id in not_held} == dict.fromkeys(not_held, 1)
    assert all(pushed_first[alert_id] <= 1 for alert_id in held_alerts)
    for customer in customers:
        await customer.disconnect()

