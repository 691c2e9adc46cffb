"""A burst of alerts that overflows the channel layer still shows every alert once.

channels-redis refuses messages for an inbox over capacity (here the
minimum, 100, for one daphne process holding every socket). The sender
learns which pushes were refused and run_queue tries them again; pushes
accepted but never acknowledged are pushed again; tabs show each id once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.processes.clients import Customer, menu_item_id, session_cookie, wait_until
from tests.processes.records import (
    all_acknowledged,
    first_push_senders,
    first_pushes,
    pickup_alerts,
)

pytestmark = pytest.mark.processes

CUSTOMERS = 3
ORDERS_EACH = 100


@pytest.fixture
def stack_env():
    return {"CHANNEL_LAYER_CAPACITY": "100", "PICKUP_ALERT_RESEND_SECONDS": "1"}


async def test_a_burst_that_overflows_the_channel_layer_still_shows_every_alert_once(stack):
    base = stack.start_web()
    stack.start_run_queue("--interval", "0.5")
    customers = [Customer(base, session_cookie(base)) for _ in range(CUSTOMERS)]
    for customer in customers:
        await customer.connect()
    # Placed through the sockets, so the web server's timers fire the burst.
    due = (datetime.now(UTC) + timedelta(seconds=6)).isoformat()
    item = menu_item_id(base)
    orders = [await customer.place_orders(item, ORDERS_EACH, at=due) for customer in customers]
    order_ids = [order["id"] for placed in orders for order in placed]
    assert not any(alert.sent for alert in pickup_alerts(stack, order_ids).values()), "placed too slowly: alerts fell due"

    for customer in customers:
        await customer.wait_until_shown(ORDERS_EACH, timeout=90)
    await wait_until(lambda: all_acknowledged(stack, order_ids), 30, "every acknowledgement recorded")

    assert "channels over capacity" in stack.logs(full=True)  # the layer really refused pushes
    for customer, placed in zip(customers, orders, strict=True):
        owed = set(pickup_alerts(stack, [order["id"] for order in placed]))
        assert sorted(customer.shown) == sorted(owed)  # all of theirs, each once, nobody else's
        assert set(customer.pushes) == owed
    alerts = pickup_alerts(stack, order_ids)
    assert first_pushes(stack) == dict.fromkeys(alerts, 1)
    print("first pushes by sender:", dict(first_push_senders(stack)))
    print("alert messages received per alert shown:", sum(sum(c.pushes.values()) for c in customers) / len(alerts))
    for customer in customers:
        await customer.disconnect()
