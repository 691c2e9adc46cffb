"""A client cannot pick the address its orders are counted under by writing
X-Forwarded-For itself: fresh sessions, each with a different forged address,
still share one per-address limit on a real daphne (started, as the README
says, without ``--proxy-headers``)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from tests.processes.clients import menu_item_id, pickup_at, session_cookie

pytestmark = pytest.mark.processes

LIMIT = 3
LIMITS = {
    "PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS": str(LIMIT),
    "PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER": "0",
    "PICKUP_OPEN_ORDERS_PER_CUSTOMER": "0",
}
BEHIND_NGINX = {**LIMITS, "PICKUP_TRUSTED_PROXIES": "1"}
FACING_CLIENTS = {**LIMITS, "PICKUP_TRUSTED_PROXIES": "0"}


async def order_once(base: str, item: int, forwarded_for: str) -> dict:
    """A new customer session orders once over a socket whose handshake carries ``forwarded_for``."""
    headers = {"Cookie": session_cookie(base), "Origin": base, "X-Forwarded-For": forwarded_for}
    async with websockets.connect(base.replace("http://", "ws://") + "/ws/customer/", additional_headers=headers) as socket:
        assert json.loads(await socket.recv())["type"] == "session.ready"
        message = {"type": "order.place", "request_id": "r1", "items": [{"menu_item": item, "quantity": 1}], "pickup_at": pickup_at(3600)}
        await socket.send(json.dumps(message))
        while True:
            reply = json.loads(await asyncio.wait_for(socket.recv(), timeout=30))
            if reply.get("request_id") == "r1":
                return reply


def counted_addresses(stack) -> set[str]:
    """The addresses the per-address limit has counters for (``limits:address:<who>:<minute>``)."""
    keys = stack.redis.client().keys("pickup-stack:limits:address:*")
    return {key.decode().removeprefix("pickup-stack:limits:address:").rsplit(":", 1)[0] for key in keys}


def well_inside_a_minute() -> None:
    """The limit counts in clock-minute windows: start with at least 20 s of the
    window left (a few orders take a second or two), so they all fall in one."""
    into = time.time() % 60
    if into > 40:
        time.sleep(60 - into)


@pytest.mark.parametrize("stack_env", [BEHIND_NGINX])
async def test_forged_leftmost_entries_do_not_escape_the_per_address_limit_behind_a_proxy(stack):
    base = stack.start_web()
    item = menu_item_id(base)
    well_inside_a_minute()
    # What nginx's $proxy_add_x_forwarded_for sends: the client's own header, then the address nginx saw.
    replies = [await order_once(base, item, f"203.0.113.{n}, 198.51.100.7") for n in range(LIMIT + 2)]

    assert [reply["type"] for reply in replies] == ["order.accepted"] * LIMIT + ["error"] * 2
    assert {reply.get("code") for reply in replies[LIMIT:]} == {"rate_limited"}
    assert counted_addresses(stack) == {"198.51.100.7"}
    # Another real address (the entry nginx appended) has its own allowance.
    other = await order_once(base, item, "198.51.100.7, 198.51.100.8")
    assert other["type"] == "order.accepted"
    assert counted_addresses(stack) == {"198.51.100.7", "198.51.100.8"}


@pytest.mark.parametrize("stack_env", [FACING_CLIENTS])
async def test_with_no_trusted_proxy_the_header_is_ignored_and_the_connection_counts(stack):
    base = stack.start_web()
    item = menu_item_id(base)
    well_inside_a_minute()
    replies = [await order_once(base, item, f"203.0.113.{n}, 198.51.100.{n}") for n in range(LIMIT + 1)]

    assert [reply["type"] for reply in replies] == ["order.accepted"] * LIMIT + ["error"]
    assert replies[-1]["code"] == "rate_limited"
    assert counted_addresses(stack) == {"127.0.0.1"}
