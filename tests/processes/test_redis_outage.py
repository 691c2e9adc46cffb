"""Redis down for a few seconds, then back empty: run_queue waits for it quietly,
the customer's socket stays open, and every alert and order comes through once."""

from __future__ import annotations

import asyncio

import pytest

from tests.processes.clients import Customer, session_cookie, session_key, wait_until
from tests.processes.orders_in_bulk import place_orders
from tests.processes.records import (
    all_acknowledged,
    kitchen_queue_built,
    logged_ready_counts,
    order_states,
    pickup_alerts,
    processed_count,
)

pytestmark = pytest.mark.processes

OUTAGE = 3.5  # seconds Redis stays down


@pytest.fixture
def stack_settings():
    # Pushes lost with Redis come again after a second, not ten.
    return {"PICKUP_ALERT_RESEND_SECONDS": 1}


def run_queue_says(stack, words: str) -> int:
    return (stack.log_dir / "run_queue-0.log").read_text(errors="replace").count(words)


async def test_run_queue_waits_out_a_redis_outage_and_the_sockets_stay_open(stack):
    base = stack.start_web()
    stack.start_run_queue("--interval", "0.3")
    cookie = session_cookie(base)
    customer = Customer(base, cookie)
    await customer.connect()
    await wait_until(lambda: kitchen_queue_built(stack), 30, "run_queue's first pass")
    after_outage = place_orders(stack, session_keys=[session_key(cookie)], count=10, due_in=OUTAGE + 6)
    during_outage = place_orders(stack, session_keys=[session_key(cookie)], count=10, due_in=2.0)
    order_ids = during_outage + after_outage

    stack.redis.stop()
    await asyncio.sleep(OUTAGE)  # how long the outage lasts, not a race: nothing is waited for
    stack.redis.start()  # same port, empty memory

    await wait_until(lambda: processed_count(stack, order_ids) == 20, 60, "every order processed")
    await customer.wait_until_shown(20, timeout=60)
    await wait_until(lambda: all_acknowledged(stack, order_ids), 20, "every acknowledgement recorded")
    assert sorted(customer.shown) == sorted(pickup_alerts(stack, order_ids))
    # run_queue logs a moment after its commit: wait for the lines, then count them.
    assert await logged_ready_counts(stack, order_ids) == dict.fromkeys(order_ids, 1)
    assert order_states(stack, order_ids) == {"ready": 20}
    # One warning for the whole outage, one line when it ends, no spinning in between.
    assert (run_queue_says(stack, "Redis unavailable"), run_queue_says(stack, "Redis is back")) == (1, 1)
    # The web process kept its socket: it joined its groups again, nothing was closed.
    assert customer.reconnects == 0
    await customer.disconnect()
