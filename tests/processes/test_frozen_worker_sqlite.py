"""On SQLite, a run_queue worker frozen between its statements holds up nobody.

SQLite's write lock belongs to the process holding it, so a worker frozen
inside a transaction would stop every writer for as long as it stays frozen
(issue 16 point 3: 40 s). run_queue keeps no transaction open across a wait
(each write is one short statement, Redis is called after commit), so the
only moment a freeze can stop others is inside one statement
(docs/delivery.md). Here the worker is frozen at the worst moment between
statements: holding kitchen-queue claims, about to write the orders ready.
The web timers and a second worker go on without it: its orders are made
ready once when its claims run out, and every alert is shown once, while it
stays frozen.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.processes.clients import Customer, session_cookie, session_key, wait_until
from tests.processes.crashes import freeze_between_writes
from tests.processes.orders_in_bulk import place_orders
from tests.processes.records import (
    all_acknowledged,
    kitchen_queue_claims,
    kitchen_queue_keys,
    logged_ready_counts,
    order_states,
    pickup_alerts,
    processed_count,
)

pytestmark = pytest.mark.processes

ORDERS = 60


@pytest.fixture
def stack_settings():
    # The frozen worker's kitchen-queue claims go to the other worker quickly.
    return {"PICKUP_CLAIM_LEASE_SECONDS": 2}


async def test_a_worker_frozen_holding_claims_between_statements_holds_up_no_writer(stack):
    base = stack.start_web()
    cookie = session_cookie(base)
    customer = Customer(base, cookie)
    await customer.connect()
    order_ids = await asyncio.to_thread(place_orders, stack, session_keys=[session_key(cookie)], count=ORDERS, due_in=3.0)
    owed = set(pickup_alerts(stack, order_ids))

    frozen = stack.start_run_queue("--interval", "0.2", "--batch", "10")
    held = await freeze_between_writes(
        stack, frozen, lambda: kitchen_queue_claims(stack), timeout=60, what="while it holds kitchen-queue entries"
    )
    assert held and processed_count(stack, list(held)) == 0

    # It stays frozen to the end. Writers that come after it: the web timers
    # (claiming and recording alerts) and a second worker.
    stack.start_run_queue("--interval", "0.2", "--batch", "10")
    await wait_until(lambda: processed_count(stack, order_ids) == ORDERS, 60, "every order processed by the other worker")
    await customer.wait_until_shown(ORDERS, timeout=60)
    await wait_until(lambda: all_acknowledged(stack, order_ids), 30, "every acknowledgement recorded")
    assert frozen.poll() is None  # still frozen: the others did all of it

    assert order_states(stack, order_ids) == {"ready": ORDERS}
    assert await logged_ready_counts(stack, order_ids) == dict.fromkeys(order_ids, 1)  # the frozen one made none ready
    assert sorted(customer.shown) == sorted(owed)  # each alert shown once
    await wait_until(lambda: kitchen_queue_keys(stack) == {"queued": 0, "claimed": 0}, 30, "the frozen worker's claims taken over")
    await customer.disconnect()
