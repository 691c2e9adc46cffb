"""A customer ordering while the Redis primary is dead and Sentinel has not yet promoted the replica.

The promise for every order sent in that window (docs/delivery.md, "Redis
primary lost"): either accepted, stored, in the kitchen queue (at once or by
run_queue's periodic rebuild) and alerted once at its pickup time; or refused
with an error the page can retry, on a socket that stays usable, with
nothing stored. Never an order stored and refused, or stored by halves.

The sentinels are told to wait an hour before declaring the primary down,
so the window lasts as long as the test needs on a busy machine; then they
are given back their second and promote the replica.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.processes.clients import Customer, menu_item_id, session_cookie, wait_until
from tests.processes.orders_in_bulk import REFILL_EVERY_SECOND, fall_due
from tests.processes.records import logged_first_pushes, logged_ready_counts, order_states, pickup_alerts

pytestmark = pytest.mark.processes

IN_THE_WINDOW = 3
AFTER_THE_FAILOVER = 3


# The order limits count every attempt in Redis before anything is written (orders/limits.py):
# production's limits, and none (an installation that switched them off).
LIMITS = {
    "limits": {"PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER": "10", "PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS": "60"},
    "no-limits": {"PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER": "0", "PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS": "0"},
}


@pytest.fixture(params=list(LIMITS))
def stack_env(request, sentinel_redis):
    return {**sentinel_redis.env, **LIMITS[request.param]}  # every process reaches Redis through the sentinels


@pytest.fixture
def stack_settings():
    return REFILL_EVERY_SECOND


def primary(sentinel_redis) -> redis.Redis:
    """A client of the server the sentinels name primary now."""
    return redis.Redis(sentinel_redis.host, sentinel_redis.primary_port(), socket_timeout=5)


def kitchen_queue(stack, sentinel_redis) -> dict[int, int]:
    """The kitchen queue on the current primary: order id -> score (pickup time, epoch ms)."""
    client = primary(sentinel_redis)
    try:
        queue = stack.env["REDIS_KEY_PREFIX"] + "kitchen_queue"
        return {int(member): int(score) for member, score in client.zrange(queue, 0, -1, withscores=True)}
    finally:
        client.close()


def picker_status(base: str) -> int:
    """What the page's pickup-time picker gets (it reads the offers' cache)."""
    with urllib.request.urlopen(base + "/pickup-times/", timeout=60) as response:
        return response.status


def new_session_refusal(base: str) -> tuple[int, dict, str]:
    """A first-time customer starting a session (counted per address in Redis): (status, body, Retry-After)."""
    try:
        session_cookie(base)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers["Retry-After"]
    raise AssertionError("a session was started while Redis could not count it")


async def send_orders(customer: Customer, item: int, pickup_at: datetime, prefix: str, count: int) -> dict[str, dict]:
    """``count`` orders sent together; each request id with its reply, whatever it is."""
    message = {"type": "order.place", "items": [{"menu_item": item, "quantity": 1}], "pickup_at": pickup_at.isoformat()}
    ids = [f"{prefix}-{n}" for n in range(count)]
    replies = await asyncio.gather(*(customer.request({**message, "request_id": rid}, timeout=120) for rid in ids))
    return dict(zip(ids, replies, strict=True))


async def send_until_accepted(
    customer: Customer, item: int, pickup_at: datetime, prefix: str, count: int
) -> dict[str, dict]:
    """As the page does: what is refused is sent again a second later, until ``count`` orders are accepted
    (right after the promotion a client may still find no primary for a moment). Every attempt with its reply."""
    attempts: dict[str, dict] = {}
    deadline = asyncio.get_running_loop().time() + 120
    for attempt in itertools.count():
        missing = count - sum(reply["type"] == "order.accepted" for reply in attempts.values())
        if not missing or asyncio.get_running_loop().time() > deadline:
            return attempts
        if attempt:
            await asyncio.sleep(1)
        attempts.update(await send_orders(customer, item, pickup_at, f"{prefix}-{attempt}", missing))


def stored(stack) -> dict[int, tuple[int, int]]:
    """Every order in the database: id -> (its lines, its pickup alerts)."""
    rows = stack.query(
        "SELECT o.id, (SELECT COUNT(*) FROM orders_orderline l WHERE l.order_id = o.id), "
        "(SELECT COUNT(*) FROM notifications_alert a WHERE a.order_id = o.id AND a.kind = 'pickup') FROM orders_order o"
    )
    return {order_id: (lines, alerts) for order_id, lines, alerts in rows}


async def test_an_order_sent_while_the_primary_is_dead_is_either_placed_whole_or_refused_with_nothing_stored(
    stack, stack_env, sentinel_redis
):
    limits_on = stack_env["PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER"] != "0"
    base = stack.start_web()
    stack.start_run_queue("--interval", "0.3", "--rebuild-every", "1")
    customer = Customer(base, await asyncio.to_thread(session_cookie, base))
    await customer.connect()
    item = await asyncio.to_thread(menu_item_id, base)
    ahead = datetime.now(UTC) + timedelta(hours=1)  # none falls due while they are placed; moved below
    before = await send_orders(customer, item, ahead, "before", 1)
    assert before["before-0"]["type"] == "order.accepted", before
    await asyncio.to_thread(sentinel_redis.wait_until_replicated)

    sentinel_redis.hold_failover()
    sentinel_redis.kill_primary()
    during = await send_orders(customer, item, ahead, "window", IN_THE_WINDOW)
    await customer.ping()  # the socket stays usable
    assert await asyncio.to_thread(picker_status, base) == 200  # worked out afresh, the cache being out of reach
    if limits_on:
        status, body, retry_after = await asyncio.to_thread(new_session_refusal, base)
        assert (status, body["code"], retry_after) == (503, "server_busy", str(body["retry_after"])), body
    # Every reply came while the sentinels still named the dead server: these orders met the window.
    assert sentinel_redis.primary_port() == sentinel_redis.ports["primary"]
    sentinel_redis.release_failover()
    await asyncio.to_thread(sentinel_redis.wait_for_failover)
    after = await send_until_accepted(customer, item, ahead, "after", AFTER_THE_FAILOVER)

    replies = {**before, **during, **after}
    refused = {rid: reply for rid, reply in replies.items() if reply["type"] == "error"}
    accepted = {rid: reply["order"]["id"] for rid, reply in replies.items() if reply["type"] == "order.accepted"}
    assert len(refused) + len(accepted) == len(replies), replies
    # A refusal the page can retry: server_busy with retry_after and words for the customer (docs/protocol.md).
    assert all(
        reply["code"] == "server_busy" and reply["retry_after"] > 0 and reply["message"] for reply in refused.values()
    ), refused
    # With the limits on, Redis must count an order before it is written; without them nothing waits for Redis.
    assert set(during) <= set(refused) if limits_on else not refused, replies
    assert len(set(after) & set(accepted)) == AFTER_THE_FAILOVER, after  # once the replica is promoted, ordering works again
    order_ids = sorted(accepted.values())

    # (b) refused: nothing stored. (a) accepted: stored whole, with its lines, its alert and its place.
    assert stored(stack) == dict.fromkeys(order_ids, (1, 1))
    assert stack.query("SELECT SUM(taken) FROM orders_pickupslot")[0][0] == len(order_ids)
    score = int(ahead.timestamp() * 1000)
    await wait_until(
        lambda: {order_id: score for order_id in order_ids}.items() <= kitchen_queue(stack, sentinel_redis).items(),
        60, lambda: f"orders {order_ids} in the kitchen queue (have {kitchen_queue(stack, sentinel_redis)})",
    )

    new_primary = primary(sentinel_redis)
    try:
        await asyncio.to_thread(fall_due, stack, order_ids, first_in=3.0, redis=new_primary)
    finally:
        new_primary.close()
    await customer.wait_until_shown(len(order_ids), timeout=90)
    alerts = pickup_alerts(stack, order_ids)
    assert sorted(customer.shown) == sorted(alerts)  # each order's alert shown, once
    assert await logged_first_pushes(stack, alerts) == dict.fromkeys(alerts, 1)
    await wait_until(lambda: order_states(stack, order_ids) == {"ready": len(order_ids)}, 60, "every order ready")
    assert await logged_ready_counts(stack, order_ids) == dict.fromkeys(order_ids, 1)
    assert customer.close_codes == []
    await customer.disconnect()
