"""Two run_queues and a web server's timers racing for 1,000 due orders: each
order is processed once and each alert pushed first once, by construction."""

from __future__ import annotations

import asyncio

import pytest

from tests.processes.clients import Customer, session_cookie, session_key, wait_until
from tests.processes.orders_in_bulk import after_the_next_timer_refill, fall_due, place_orders
from tests.processes.records import (
    first_push_senders,
    first_pushes,
    kitchen_queue_keys,
    logged_first_pushes,
    logged_ready_counts,
    order_states,
    pickup_alerts,
    processed_count,
    ready_counts,
)

pytestmark = pytest.mark.processes

ORDERS = 1000
# The orders' customers, connected to the web server: its timers arm only their alerts.
CUSTOMERS = 10


@pytest.fixture
def stack_settings():
    return {
        # At the due time every sender tries at once: no head start for the timers.
        "PICKUP_RUN_QUEUE_GRACE_MS": 0,
        # The kitchen work comes 2 s later, when both workers are free of
        # alerts, so they wake for the orders together and race for them.
        "PICKUP_KITCHEN_DELAY_MS": 2000,
        # Nobody acknowledges these alerts; no second push blurs the count.
        "PICKUP_ALERT_RESEND_SECONDS": 600,
    }


async def test_two_run_queues_and_a_web_timer_process_a_thousand_due_orders_exactly_once(stack):
    workers = [stack.start_run_queue("--interval", "0.5", "--batch", "50") for _ in range(2)]
    # Placing and starting take as long as they take: the orders wait half
    # an hour ahead, then fall due together once every sender is running,
    # late enough for the web server's next refill to arm their timers.
    base = stack.start_web()
    customers = [Customer(base, session_cookie(base)) for _ in range(CUSTOMERS)]
    for customer in customers:
        await customer.connect()
    keys = [session_key(customer.cookie) for customer in customers]
    order_ids = await asyncio.to_thread(place_orders, stack, session_keys=keys, count=ORDERS, due_in=None)
    await asyncio.to_thread(fall_due, stack, order_ids, first_in=after_the_next_timer_refill())
    assert processed_count(stack, order_ids) == 0

    await wait_until(lambda: processed_count(stack, order_ids) == ORDERS, 90, "1,000 orders processed")
    alerts = pickup_alerts(stack, order_ids)
    await wait_until(lambda: all(alert.sent for alert in pickup_alerts(stack, order_ids).values()), 30, "every alert pushed")

    counts = await logged_ready_counts(stack, order_ids)
    assert counts == dict.fromkeys(order_ids, 1)
    assert order_states(stack, order_ids) == {"ready": ORDERS}
    assert kitchen_queue_keys(stack) == {"queued": 0, "claimed": 0}
    pushed_first = await logged_first_pushes(stack, alerts)
    assert pushed_first == dict.fromkeys(alerts, 1)
    # Both workers really took part (and neither died doing it). Which work
    # each wins is the race's to decide: a worker busy pushing alerts may find
    # the other has made every order ready, so the two kinds are counted together.
    won = {
        n: sum(ready_counts(stack, f"run_queue-{n}").values()) + sum(first_pushes(stack, f"run_queue-{n}").values())
        for n in range(len(workers))
    }
    print("orders made ready plus alerts pushed first, by worker:", won)
    assert all(won.values()), won
    assert all(worker.poll() is None for worker in workers)

    assert {alert.send_count for alert in pickup_alerts(stack, order_ids).values()} == {1}
    print("first pushes by sender:", dict(first_push_senders(stack)))
    for customer in customers:
        await customer.disconnect()
