"""kill -9 of a web server loses no pickup alert.

Its in-memory timers die with it; the alerts do not, because they are
database rows: run_queue sends them at their due time, and a web server that
starts again arms the timers of every pending alert of the customers who
connect to it.
"""

from __future__ import annotations

import pytest

from tests.processes.clients import Customer, menu_item_id, session_cookie, wait_until
from tests.processes.orders_in_bulk import fall_due
from tests.processes.records import (
    all_acknowledged,
    all_sent,
    first_push_senders,
    logged_first_pushes,
    logged_ready_counts,
    pickup_alerts,
    processed_count,
)

pytestmark = pytest.mark.processes

# Orders are placed this far ahead and fall due once the server is dead
# (orders_in_bulk.fall_due), however long placing and killing took.
AHEAD = 3600


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


async def test_alerts_due_while_their_web_server_is_dead_reach_open_tabs_through_run_queue(stack):
    doomed = stack.start_web()
    survivor = stack.start_web()  # behind the same load balancer, say
    stack.start_run_queue("--interval", "1")
    cookie = session_cookie(doomed)
    placing = Customer(doomed, cookie)
    await placing.connect()
    watching = Customer(survivor, cookie)  # another tab, on the other server
    await watching.connect()
    item = menu_item_id(doomed)
    orders = [await placing.place_order(item, AHEAD + n, request_id=f"o{n}") for n in range(5)]
    order_ids = [order["id"] for order in orders]
    await placing.disconnect()

    stack.kill_web(port_of(doomed))  # kill -9: the timers of all five die with it
    assert not any(alert.sent for alert in pickup_alerts(stack, order_ids).values())
    fall_due(stack, order_ids, first_in=1.0, step=0.3)  # now that their timers are dead

    await watching.wait_until_shown(5, timeout=30)
    owed = set(pickup_alerts(stack, order_ids))
    assert sorted(watching.shown) == sorted(owed)
    assert watching.replayed == set()  # pushed live at their time, not found later
    print("lateness after the kill (s):", [round(late, 3) for late in watching.lateness()])
    pushed_first = await logged_first_pushes(stack, owed)
    assert {alert_id: pushed_first[alert_id] for alert_id in owed} == dict.fromkeys(owed, 1)
    assert first_push_senders(stack) == {"run_queue": 5}
    await wait_until(lambda: all_acknowledged(stack, order_ids), 10, "the tab's acknowledgements to be recorded")
    await watching.disconnect()


async def test_alerts_due_while_the_only_web_server_is_dead_are_shown_once_when_it_is_back(stack):
    base = stack.start_web()
    stack.start_run_queue("--interval", "0.5")
    customer = Customer(base, session_cookie(base))  # keeps reconnecting, like the page
    await customer.connect()
    item = menu_item_id(base)
    orders = [await customer.place_order(item, AHEAD + n, request_id=f"o{n}") for n in range(5)]
    order_ids = [order["id"] for order in orders]

    stack.kill_web(port_of(base))  # kill -9 with every alert still pending
    fall_due(stack, order_ids, first_in=0.5, step=0.2)
    # run_queue pushes each at its time, to nobody: no web server holds a socket.
    await wait_until(lambda: all_sent(stack, order_ids), 30, "run_queue to push all five")
    stack.start_web(port_of(base))

    await customer.wait_until_shown(5, timeout=30)
    await wait_until(lambda: all_acknowledged(stack, order_ids), 10, "the acknowledgements to be recorded")
    owed = set(pickup_alerts(stack, order_ids))
    assert sorted(customer.shown) == sorted(owed)
    assert customer.replayed == owed  # offered again on reconnect, since nobody had acknowledged them
    assert customer.reconnects >= 1
    pushed_first = await logged_first_pushes(stack, owed)
    assert {alert_id: pushed_first[alert_id] for alert_id in owed} == dict.fromkeys(owed, 1)
    await wait_until(lambda: processed_count(stack, order_ids) == 5, 10, "run_queue to make the orders ready")
    assert await logged_ready_counts(stack, order_ids) == dict.fromkeys(order_ids, 1)
    await customer.disconnect()


async def test_pending_timers_are_armed_again_when_the_customer_reconnects_to_the_restarted_server(stack):
    """No run_queue: only the restarted server's re-armed timer can push this alert."""
    base = stack.start_web()
    customer = Customer(base, session_cookie(base))  # keeps reconnecting, like the page
    await customer.connect()
    order = await customer.place_order(menu_item_id(base), AHEAD)
    stack.kill_web(port_of(base))
    assert not all_sent(stack, [order["id"]])
    fall_due(stack, [order["id"]], first_in=1.0)  # well inside the timers' horizon

    stack.start_web(port_of(base))
    await wait_until(lambda: all_sent(stack, [order["id"]]), 20, "the restarted server's timer to push the alert")
    await wait_until(lambda: first_push_senders(stack), 10, "the push to be logged")  # logged after it is recorded
    assert first_push_senders(stack) == {"timer": 1}

    await customer.wait_until_shown(1, timeout=10)  # pushed, or offered on reconnect if it came later: once
    await customer.ping()
    assert customer.shown == list(pickup_alerts(stack, [order["id"]]))
    assert customer.reconnects >= 1
    await customer.disconnect()
