"""Redis losing its memory (FLUSHDB, a restart) skips no order, repeats none, and loses no alert.

The kitchen queue is an index rebuilt from the database; the channel layer's
lost messages and group memberships come back through resends, rejoining and
replay on reconnect.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime, timezone

import pytest

from tests.processes.clients import Customer, session_cookie, session_key, wait_until
from tests.processes.crashes import freeze_between_writes, holding_writes
from tests.processes.orders_in_bulk import move_pickup_time, place_orders
from tests.processes.records import (
    all_acknowledged,
    kitchen_queue_built,
    kitchen_queue_entries,
    kitchen_queue_keys,
    logged_first_pushes,
    logged_ready_counts,
    order_states,
    orders_restored,
    pickup_alerts,
    processed_count,
)

pytestmark = pytest.mark.processes


@pytest.fixture
def stack_settings():
    # Pushes lost with Redis come again after a second, not ten.
    return {"PICKUP_ALERT_RESEND_SECONDS": 1}


@pytest.mark.parametrize("loss", ["flushdb", "restart"])
async def test_redis_losing_its_memory_mid_run_skips_no_order_and_repeats_none(stack, loss):
    base = stack.start_web()
    worker = stack.start_run_queue("--interval", "0.3", "--batch", "20")
    cookie = session_cookie(base)
    customer = Customer(base, cookie)
    await customer.connect()
    order_ids = await asyncio.to_thread(place_orders, stack, session_keys=[session_key(cookie)], count=200, due_in=3.0)
    owed = set(pickup_alerts(stack, order_ids))
    # Frozen mid-run, so Redis goes while orders are queued, claimed and half done.
    await freeze_between_writes(
        stack, worker, lambda: 20 <= processed_count(stack, order_ids, timeout=0.01) < 200, timeout=60, what="mid-run"
    )
    rebuilds_before = len(orders_restored(stack))
    if loss == "flushdb":
        stack.redis.client().flushdb()
    else:
        await asyncio.to_thread(stack.redis.restart)  # same port, empty memory; open sockets drop and reconnect
    worker.send_signal(signal.SIGCONT)

    await wait_until(lambda: processed_count(stack, order_ids) == 200, 60, "every order processed")
    assert await logged_ready_counts(stack, order_ids) == dict.fromkeys(order_ids, 1)
    assert order_states(stack, order_ids) == {"ready": 200}
    assert sum(orders_restored(stack)[rebuilds_before:]) > 0  # the waiting orders, rebuilt from the database
    assert kitchen_queue_keys(stack) == {"queued": 0, "claimed": 0}

    await customer.wait_until_shown(200, timeout=60)
    await wait_until(lambda: all_acknowledged(stack, order_ids), 20, "every acknowledgement recorded")
    assert sorted(customer.shown) == sorted(owed)
    pushed_first = await logged_first_pushes(stack, owed)
    assert {alert_id: pushed_first[alert_id] for alert_id in owed} == dict.fromkeys(owed, 1)
    await customer.disconnect()


async def test_an_order_redis_lost_behind_an_intact_marker_is_restored_by_the_periodic_rebuild(stack):
    """A failover can lose a few recent writes and keep the rest: nothing tells run_queue, so it re-checks."""
    stack.start_run_queue("--interval", "0.3", "--rebuild-every", "1")
    await wait_until(lambda: kitchen_queue_built(stack), 30, "run_queue's first pass")
    order_ids = place_orders(stack, count=3, due_in=None)  # half an hour ahead, until moved below
    await wait_until(lambda: len(kitchen_queue_entries(stack)) == 3, 10, "the orders in the kitchen queue")
    queued = kitchen_queue_entries(stack)
    client = stack.redis.client()
    client.zrem(stack.env["REDIS_KEY_PREFIX"] + "kitchen_queue", str(order_ids[0]))  # lost; the marker stays
    client.close()
    assert kitchen_queue_entries(stack).keys() == set(order_ids[1:])

    # Back, under its pickup time, by the periodic rebuild: nothing else adds it.
    await wait_until(lambda: kitchen_queue_entries(stack) == queued, 10, "a rebuild to restore the order")
    assert processed_count(stack, order_ids) == 0  # restored before its pickup time, not late
    with holding_writes(stack) as database:
        move_pickup_time(stack, order_ids, datetime.now(timezone.utc), database)
    await wait_until(lambda: processed_count(stack, order_ids) == 3, 30, "all three orders processed")
    assert await logged_ready_counts(stack, order_ids) == dict.fromkeys(order_ids, 1)
    assert order_states(stack, order_ids) == {"ready": 3}
