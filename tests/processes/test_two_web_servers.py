"""Two web servers, customers split across them: each alert's timer lives
where its customer's sockets are, so each alert is claimed about once
however many web servers run, and a server never claims the alert of a
customer it holds no socket of (docs/delivery.md).

No run_queue until the timers are done: whatever was pushed by then, a web
timer pushed. Each server writes its metrics to a directory of its own, so
its /metrics counts its own claims alone.
"""

from __future__ import annotations

import asyncio

import pytest

from pickup.testing import metric_samples
from tests.processes.clients import Customer, menu_item_id, pickup_at, session_cookie, wait_until
from tests.processes.orders_in_bulk import REFILL_EVERY_SECOND, fall_due
from tests.processes.records import all_sent, first_pushes, logged_first_pushes, pickup_alerts

pytestmark = pytest.mark.processes

CUSTOMERS_EACH = 3
ORDERS_EACH = 3


@pytest.fixture
def stack_settings():
    # Nobody acknowledges late here, but no second push may blur the count.
    # The orders are made due in the database: each server's timers hear of it at their next refill.
    return {"PICKUP_ALERT_RESEND_SECONDS": 600, **REFILL_EVERY_SECOND}


def timer_claims(stack, base_url: str) -> dict[str, float]:
    """One server's ``pickup_timer_claims_total`` by outcome (won, lost)."""
    return {
        dict(labels)["outcome"]: value
        for (name, labels), value in metric_samples(stack.metrics(base_url)).items()
        if name == "pickup_timer_claims_total"
    }


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


async def test_customers_split_over_two_web_servers_get_each_alert_once_claimed_by_their_own_server(stack, tmp_path):
    servers = []
    for n in range(2):
        metrics_dir = tmp_path / f"metrics-{n}"
        metrics_dir.mkdir()
        servers.append(stack.start_web(env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}))
    customers = {base: [Customer(base, session_cookie(base)) for _ in range(CUSTOMERS_EACH)] for base in servers}
    # A customer with a tab on each server: both servers may arm their alert, and the claim keeps it to one push.
    shared_cookie = session_cookie(servers[0])
    shared = [Customer(base, shared_cookie) for base in servers]
    # A customer who places, then closes their only tab: no server holds them, run_queue sends theirs.
    leaving = Customer(servers[0], session_cookie(servers[0]))
    for customer in [*customers[servers[0]], *customers[servers[1]], shared[0], leaving]:
        await customer.connect()

    item = await asyncio.to_thread(menu_item_id, servers[0])
    # Placed an hour ahead: a time a few seconds ahead could pass while twenty-odd
    # orders are placed and tabs come and go. Made due once that is done.
    ahead = pickup_at(3600)
    orders = {
        base: [order["id"] for customer in group for order in await customer.place_orders(item, ORDERS_EACH, at=ahead)]
        for base, group in customers.items()
    }
    shared_order = [order["id"] for order in await shared[0].place_orders(item, 1, at=ahead, prefix="shared")]
    await shared[1].connect()
    left_orders = [order["id"] for order in await leaving.place_orders(item, 2, at=ahead, prefix="left")]
    await leaving.disconnect()
    placed = [order_id for order_ids in orders.values() for order_id in order_ids] + shared_order + left_orders
    await asyncio.to_thread(fall_due, stack, placed, first_in=3.0)  # after the next refill of either server

    alerts = {base: set(pickup_alerts(stack, order_ids)) for base, order_ids in orders.items()}
    [shared_alert] = pickup_alerts(stack, shared_order)
    for base, group in customers.items():
        for customer in group:
            await customer.wait_until_shown(ORDERS_EACH, timeout=60)
    for tab in shared:
        await tab.wait_until_shown(1, timeout=60)
    everyone = [order_id for order_ids in orders.values() for order_id in order_ids] + shared_order
    await wait_until(lambda: all_sent(stack, everyone), 30, "every pushed alert recorded")
    logged = await logged_first_pushes(stack, set().union(*alerts.values(), {shared_alert}))

    # Every alert shown once on every tab of its customer, and pushed first once.
    for base, group in customers.items():
        for customer in group:
            assert len(customer.shown) == len(set(customer.shown)) == ORDERS_EACH
        assert set().union(*(set(customer.shown) for customer in group)) == alerts[base]
    assert [tab.shown for tab in shared] == [[shared_alert], [shared_alert]]
    assert set(logged.values()) == {1}
    # Each server pushed (so claimed) its own customers' alerts and no other's.
    pushed_by = {base: set(first_pushes(stack, f"daphne-{port_of(base)}")) - {shared_alert} for base in servers}
    assert pushed_by == alerts
    # About one claim per alert: one each, and at most one lost race for the customer on both servers.
    claims = {base: await asyncio.to_thread(timer_claims, stack, base) for base in servers}
    print("timer claims by server:", claims)
    assert sum(claim["won"] for claim in claims.values()) == len(everyone)
    assert sum(claim["lost"] for claim in claims.values()) <= 1
    for base in servers:
        assert claims[base]["won"] + claims[base]["lost"] <= len(alerts[base]) + 1
    # The tab that left was not claimed by the server it left: nothing pushed it yet.
    assert not any(alert.sent or alert.claimed for alert in pickup_alerts(stack, left_orders).values())

    # run_queue still covers everything no web server holds.
    stack.start_run_queue("--interval", "0.5")
    await wait_until(lambda: all_sent(stack, left_orders), 30, "run_queue to push the alerts of the tab that left")
    assert {base: await asyncio.to_thread(timer_claims, stack, base) for base in servers} == claims
    for customer in [*customers[servers[0]], *customers[servers[1]], *shared]:
        await customer.disconnect()
