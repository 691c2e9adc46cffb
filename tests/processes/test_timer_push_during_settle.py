"""A web timer's push that is still on its way when the previous pushes are
written down is written down too, not dropped with a batch already settled.

The second push is made slow by Redis itself, not by a sleep: its customer's
group holds thousands of other members, so adding the message to each of
their inboxes takes far longer than the timers' 50 ms settle window, and the
settle of the first push runs while the second is being pushed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.processes.clients import Customer, menu_item_id, session_cookie, wait_until
from tests.processes.records import pickup_alerts

pytestmark = pytest.mark.processes

OTHER_MEMBERS = 20_000  # members of the second customer's group on no live socket


@pytest.fixture
def stack_settings():
    # No run_queue here, and no resends: the record is the web timers' alone.
    return {"PICKUP_ALERT_RESEND_SECONDS": 3600}


def group_keys(stack) -> set[bytes]:
    client = stack.redis.client()
    try:
        return set(client.keys(stack.env["REDIS_KEY_PREFIX"] + "asgi:group:*"))
    finally:
        client.close()


async def test_a_timer_push_still_on_its_way_when_the_previous_one_is_settled_is_recorded(stack):
    base = stack.start_web()
    item = menu_item_id(base)
    first, second = Customer(base, session_cookie(base)), Customer(base, session_cookie(base))
    await first.connect()
    before = group_keys(stack)
    await second.connect()
    [slow_group] = group_keys(stack) - before
    client = stack.redis.client()
    now = datetime.now(UTC).timestamp()
    client.zadd(slow_group, {f"elsewhere.channel{n}": now for n in range(OTHER_MEMBERS)})
    client.close()

    # Both orders must be accepted (and their timers armed) before the due time,
    # which must therefore leave room for two round trips on a busy machine.
    due = datetime.now(UTC) + timedelta(seconds=10)
    [order_1] = await first.place_orders(item, 1, at=due.isoformat(), prefix="first")
    # Due 10 ms later: pushed right after the first push, while that one waits to be settled.
    [order_2] = await second.place_orders(item, 1, at=(due + timedelta(milliseconds=10)).isoformat(), prefix="second")
    order_ids = [order_1["id"], order_2["id"]]
    assert datetime.now(UTC) < due - timedelta(milliseconds=200), "placing took longer than the margin before the claim"

    await first.wait_until_shown(1, timeout=20)
    await second.wait_until_shown(1, timeout=20)
    await wait_until(
        lambda: all(alert.sent and not alert.claimed for alert in pickup_alerts(stack, order_ids).values()),
        20,
        lambda: f"both pushes recorded (have {pickup_alerts(stack, order_ids)})",
    )
    assert {alert.send_count for alert in pickup_alerts(stack, order_ids).values()} == {1}
    await first.disconnect()
    await second.disconnect()
