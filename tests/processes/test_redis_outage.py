"""Redis down for a few seconds, then back empty: run_queue waits for it quietly,
the customer's socket stays open, and every alert and order comes through once."""

from __future__ import annotations

import asyncio

import pytest

from tests.processes.clients import Customer, session_cookie, session_key, wait_until
from tests.processes.orders_in_bulk import fall_due, place_orders
from tests.processes.records import (
    all_acknowledged,
    kitchen_queue_built,
    logged_ready_counts,
    order_states,
    pickup_alerts,
    processed_count,
)

pytestmark = pytest.mark.processes

OUTAGE = 3.5  # seconds Redis stays down at least
AFTER_OUTAGE = 6.0  # the last orders fall due this long after the outage is over


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
    # Placed ahead, in a thread: a shell takes seconds on a busy machine, and
    # this loop must go on answering the server's keepalive pings meanwhile,
    # as the customer's browser does (blocked, the server drops the socket).
    keys = [session_key(cookie)]
    after_outage = await asyncio.to_thread(place_orders, stack, session_keys=keys, count=10, due_in=None)
    during_outage = await asyncio.to_thread(place_orders, stack, session_keys=keys, count=10, due_in=None)
    order_ids = during_outage + after_outage

    stack.redis.stop()
    # Due while Redis is down, however long the placing took: moved in the
    # database only, the record the kitchen queue is rebuilt from when Redis is back.
    await asyncio.to_thread(fall_due, stack, during_outage, first_in=0.5, redis_down=True)
    await asyncio.sleep(OUTAGE)  # how long the outage lasts at least, not a race: nothing is waited for
    # ... and until run_queue has seen it, however late its next pass came.
    await wait_until(lambda: run_queue_says(stack, "Redis unavailable") > 0, 60, "run_queue noticing the outage")
    await asyncio.to_thread(fall_due, stack, after_outage, first_in=AFTER_OUTAGE, redis_down=True)
    stack.redis.start()  # same port, empty memory

    await wait_until(lambda: processed_count(stack, order_ids) == 20, 60, "every order processed")
    await customer.wait_until_shown(20, timeout=60)
    await wait_until(lambda: all_acknowledged(stack, order_ids), 20, "every acknowledgement recorded")
    assert sorted(customer.shown) == sorted(pickup_alerts(stack, order_ids))
    # run_queue logs a moment after its commit: wait for the lines, then count them.
    assert await logged_ready_counts(stack, order_ids) == dict.fromkeys(order_ids, 1)
    assert order_states(stack, order_ids) == {"ready": 20}
    # One warning for the whole outage, one line when it ends (after its first
    # pass since, which may still be logging), no spinning in between.
    await wait_until(lambda: run_queue_says(stack, "Redis is back") > 0, 20, "run_queue saying Redis is back")
    assert (run_queue_says(stack, "Redis unavailable"), run_queue_says(stack, "Redis is back")) == (1, 1)
    # The web process kept its socket: it joined its groups again, nothing was closed.
    assert customer.reconnects == 0, customer.close_codes  # how the server ended each connection
    await customer.disconnect()
