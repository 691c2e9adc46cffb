"""A customer with no open tab, or a tab that never acknowledged, still gets
each alert, shown once: the server offers unacknowledged alerts again on every
connection and pushes them again until a tab acknowledges."""

from __future__ import annotations

import pytest

from tests.processes.clients import Customer, menu_item_id, session_cookie, wait_until
from tests.processes.orders_in_bulk import fall_due
from tests.processes.records import all_acknowledged, all_sent, pickup_alerts

pytestmark = pytest.mark.processes


@pytest.fixture
def stack_settings():
    return {"PICKUP_ALERT_RESEND_SECONDS": 1}


async def nothing_offered(base: str, cookie: str) -> Customer:
    """A fresh tab of this customer, connected and drained: everything the
    server offers on connect arrives before the reply to a ping."""
    tab = Customer(base, cookie)
    await tab.connect()
    await tab.ping()
    await tab.disconnect()
    return tab


async def test_an_alert_that_fell_due_while_no_tab_was_open_is_shown_once_when_one_connects(stack):
    base = stack.start_web()
    stack.start_run_queue("--interval", "0.5")
    cookie = session_cookie(base)
    placing = Customer(base, cookie)
    await placing.connect()
    order = await placing.place_order(menu_item_id(base), 3600)
    await placing.disconnect()
    fall_due(stack, [order["id"]], first_in=0)  # once the page is closed, however long that took
    # Pushed at its time to nobody: the customer had closed the page.
    await wait_until(lambda: all_sent(stack, [order["id"]]), 20, "the alert to be pushed")

    tab = Customer(base, cookie)
    await tab.connect()
    await tab.wait_until_shown(1, timeout=10)
    await wait_until(lambda: all_acknowledged(stack, [order["id"]]), 10, "the acknowledgement recorded")
    assert tab.shown == list(pickup_alerts(stack, [order["id"]]))
    assert tab.replayed == set(tab.shown)
    await tab.disconnect()
    assert placing.shown == []

    later = await nothing_offered(base, cookie)  # acknowledged: not offered again
    assert later.pushes == {}


async def test_an_alert_never_acknowledged_arrives_again_and_is_shown_once(stack):
    base = stack.start_web()
    stack.start_run_queue("--interval", "0.5")
    cookie = session_cookie(base)
    dying = Customer(base, cookie, acknowledges=False)  # a page that never gets to acknowledge
    await dying.connect()
    order = await dying.place_order(menu_item_id(base), 3600)
    fall_due(stack, [order["id"]], first_in=0)
    alert_id = next(iter(pickup_alerts(stack, [order["id"]])))

    # Unacknowledged, it is pushed again (after PICKUP_ALERT_RESEND_SECONDS)…
    await wait_until(lambda: dying.pushes[alert_id] >= 2, 20, "the alert to be pushed a second time")
    assert dying.shown == [alert_id]  # …and the tab still shows it once
    await dying.disconnect()

    # Any tab that connects is offered it, until one acknowledges it.
    tab = Customer(base, cookie)
    await tab.connect()
    await tab.wait_until_shown(1, timeout=10)
    await wait_until(lambda: all_acknowledged(stack, [order["id"]]), 10, "the acknowledgement recorded")
    assert tab.shown == [alert_id] and alert_id in tab.replayed
    await tab.disconnect()

    later = await nothing_offered(base, cookie)
    assert later.pushes == {}
