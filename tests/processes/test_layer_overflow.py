"""A burst of alerts that overflows the channel layer still shows every alert once.

The layer refuses messages past its capacity (here the minimum, 100): the
web process's timers hand alerts to their own sockets' buffers, 100 each at
most; run_queue, in its own process, sends through the daphne process's
Redis inbox, 100 at most for every socket it holds. The sender learns which
pushes were refused and tries them again; pushes accepted but never
acknowledged are pushed again; tabs show each id once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.processes.clients import Customer, menu_item_id, session_cookie, wait_until
from tests.processes.orders_in_bulk import after_the_next_timer_refill, fall_due
from tests.processes.records import (
    all_acknowledged,
    first_push_senders,
    logged_first_pushes,
    pickup_alerts,
)

pytestmark = pytest.mark.processes

CUSTOMERS = 3
# More than the capacity per customer: the timers' single batch cannot fit one tab's buffer.
ORDERS_EACH = 150


@pytest.fixture(params=["timers", "run_queue"])
def sender(request):
    return request.param


@pytest.fixture
def stack_env():
    return {"CHANNEL_LAYER_CAPACITY": "100"}


@pytest.fixture
def stack_settings(sender):
    return {"PICKUP_ALERT_RESEND_SECONDS": 1, "PICKUP_WEB_TIMERS": sender == "timers"}


async def test_a_burst_that_overflows_the_channel_layer_still_shows_every_alert_once(stack, sender):
    base = stack.start_web()
    stack.start_run_queue("--interval", "0.5")
    customers = [Customer(base, session_cookie(base)) for _ in range(CUSTOMERS)]
    for customer in customers:
        await customer.connect()
    # Placed through the sockets an hour ahead, however long that takes; then
    # all fall due at one instant, late enough for the web server's next
    # refill to move their timers there, so its timers (if on) fire the burst.
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    item = await asyncio.to_thread(menu_item_id, base)
    orders = [await customer.place_orders(item, ORDERS_EACH, at=ahead) for customer in customers]
    order_ids = [order["id"] for placed in orders for order in placed]
    await asyncio.to_thread(fall_due, stack, order_ids, first_in=after_the_next_timer_refill())

    for customer in customers:
        await customer.wait_until_shown(ORDERS_EACH, timeout=90)
    await wait_until(lambda: all_acknowledged(stack, order_ids), 30, "every acknowledgement recorded")

    assert "channels over capacity" in stack.logs(full=True)  # the layer really refused pushes
    for customer, placed in zip(customers, orders, strict=True):
        owed = set(pickup_alerts(stack, [order["id"] for order in placed]))
        assert sorted(customer.shown) == sorted(owed)  # all of theirs, each once, nobody else's
        assert set(customer.pushes) == owed
    alerts = pickup_alerts(stack, order_ids)
    assert await logged_first_pushes(stack, alerts) == dict.fromkeys(alerts, 1)
    senders = first_push_senders(stack)
    print("first pushes by sender:", dict(senders))
    if sender == "run_queue":
        assert set(senders) == {"run_queue"}
    print("alert messages received per alert shown:", sum(sum(c.pushes.values()) for c in customers) / len(alerts))
    for customer in customers:
        await customer.disconnect()
