"""Redis losing its memory again while a web process is joining its sockets'
groups again after a first loss: every socket still hears its alerts.

The second loss is placed in the middle of the re-join exactly: the web
process is frozen (SIGSTOP) at a moment when some of its groups are back and
others are not, Redis is flushed, and the process runs on.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.processes.clients import Customer, session_cookie, session_key, wait_until
from tests.processes.crashes import freeze_when
from tests.processes.orders_in_bulk import place_orders
from tests.processes.records import all_acknowledged, pickup_alerts

pytestmark = pytest.mark.processes

CUSTOMERS = 40  # one group each: a re-join long enough to be caught half-way


@pytest.fixture
def stack_env():
    return {"PICKUP_SESSIONS_PER_MINUTE_PER_ADDRESS": "0"}  # forty customers from one address


@pytest.fixture
def stack_settings():
    # run_queue pushes through Redis to the groups; a web timer would hand
    # alerts to its own sockets without asking Redis who is in the group.
    return {"PICKUP_WEB_TIMERS": False, "PICKUP_ALERT_RESEND_SECONDS": 1}


def groups_in_redis(stack) -> int:
    client = stack.redis.client()
    try:
        return len(client.keys(stack.env["REDIS_KEY_PREFIX"] + "asgi:group:*"))
    finally:
        client.close()


def flush(stack) -> None:
    client = stack.redis.client()
    try:
        client.flushdb()
    finally:
        client.close()


async def test_groups_lost_again_in_the_middle_of_their_rejoin_still_get_their_alerts(stack):
    base = stack.start_web()
    process = next(iter(stack.web.values()))
    stack.start_run_queue("--interval", "0.3")
    cookies = [session_cookie(base) for _ in range(CUSTOMERS)]
    customers = [Customer(base, cookie) for cookie in cookies]
    for customer in customers:
        await customer.connect()
    await wait_until(lambda: groups_in_redis(stack) == CUSTOMERS, 10, "every socket in its group")

    for _attempt in range(10):
        flush(stack)  # the first loss: within a second the web process joins its groups again
        try:
            await freeze_when(
                process, lambda: 0 < groups_in_redis(stack) < CUSTOMERS, timeout=3, what="half-way through its re-join"
            )
            break
        except AssertionError:  # the re-join was over before it could be caught: lose it all again
            await wait_until(lambda: groups_in_redis(stack) == CUSTOMERS, 10, "the re-join to end")
    else:
        raise AssertionError("never caught the web process half-way through its re-join")
    flush(stack)  # the second loss, with some groups joined again and others not yet
    process.send_signal(signal.SIGCONT)

    await wait_until(lambda: groups_in_redis(stack) == CUSTOMERS, 10, "every group joined again after the second loss")
    order_ids = await asyncio.to_thread(
        place_orders, stack, session_keys=[session_key(cookie) for cookie in cookies], count=CUSTOMERS, due_in=5.0
    )
    owed = pickup_alerts(stack, order_ids)
    for customer in customers:
        await customer.wait_until_shown(1, timeout=30)
    await wait_until(lambda: all_acknowledged(stack, order_ids), 20, "every acknowledgement recorded")
    assert sorted(alert_id for customer in customers for alert_id in customer.shown) == sorted(owed)
    assert all(customer.reconnects == 0 for customer in customers)  # heard live, not replayed on a reconnect
    await asyncio.gather(*(customer.disconnect() for customer in customers))
