"""kill -9 of a web server after its timer claimed an alert, before the push:
run_queue takes the alert over when the timer's short claim ends, not a
worker's 30 s lease, and the customer's tab on another server gets it once."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from notifications.socket_pushes import TIMER_CLAIM_MARGIN
from tests.processes.clients import Customer, menu_item_id, session_cookie, wait_until
from tests.processes.crashes import kill_when
from tests.processes.records import alerts_held_by_a_sender, all_acknowledged, first_push_senders, pickup_alerts

pytestmark = pytest.mark.processes

WORKER_LEASE = 60  # seconds


@pytest.fixture
def stack_settings():
    return {
        # A whole second between the timer's claim and its push, to kill the server in.
        "PICKUP_TIMER_LOOKAHEAD_MS": 1000,
        # A worker's lease far longer than the timer's claim, so the two cannot be mistaken.
        "PICKUP_CLAIM_LEASE_SECONDS": WORKER_LEASE,
    }


async def test_an_alert_claimed_by_a_web_server_that_died_reaches_the_other_server_before_a_workers_lease(stack):
    doomed = stack.start_web()
    survivor = stack.start_web()
    stack.start_run_queue("--interval", "1")
    cookie = session_cookie(doomed)
    placing = Customer(doomed, cookie)
    await placing.connect()
    watching = Customer(survivor, cookie)  # another tab, on the other server
    await watching.connect()
    order = await placing.place_order(menu_item_id(doomed), 3.0)
    due = datetime.fromisoformat(order["pickup_at"]).timestamp()

    held = await kill_when(
        stack.web[int(doomed.rsplit(":", 1)[1])],
        lambda: time.time() < due - 0.1 and alerts_held_by_a_sender(stack),
        timeout=30,
        what="after its timer's claim, before the push",
    )
    stack.web.pop(int(doomed.rsplit(":", 1)[1]))
    assert time.time() < due, "killed too late: the timer may have pushed"
    owed = set(pickup_alerts(stack, [order["id"]]))
    assert held == owed

    await watching.wait_until_shown(1, timeout=WORKER_LEASE + 10)
    assert watching.shown == list(owed)
    late = watching.lateness()[0]
    print(f"shown {late:.3f} s after its due time")
    # The timer's claim ends TIMER_CLAIM_MARGIN after the due time (not before:
    # nobody else pushes while it holds), and run_queue's next pass pushes it.
    assert TIMER_CLAIM_MARGIN.total_seconds() <= late < WORKER_LEASE / 2
    await wait_until(lambda: all_acknowledged(stack, [order["id"]]), 10, "the acknowledgement recorded")
    await wait_until(lambda: first_push_senders(stack), 10, "the push to be logged")
    assert first_push_senders(stack) == {"run_queue": 1}
    await watching.disconnect()
