"""Pages whose sockets connect while Redis is down are turned away at the handshake, quietly,
and connect and hear their alerts once Redis is back (a real daphne, a real private Redis).

The consumer closes before accepting (1013, orders/sockets.py); daphne answers
such an upgrade with HTTP 403, which a browser reports as close code 1006 and
the page meets with its usual backoff (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from pickup.testing import metric_samples
from tests.processes.clients import session_cookie, session_key

pytestmark = pytest.mark.processes

RETRIES = 5  # pages retrying during the outage


async def open_socket(base: str, cookie: str):
    ws_url = base.replace("http://", "ws://") + "/ws/customer/"
    return await websockets.connect(ws_url, additional_headers={"Cookie": cookie, "Origin": base})


def customer_sockets_open(stack, base: str) -> float:
    return metric_samples(stack.metrics(base))[("pickup_sockets_open", (("kind", "customer"),))]


def web_log(stack, base: str) -> str:
    return (stack.log_dir / f"daphne-{base.rsplit(':', 1)[1]}.log").read_text(errors="replace")


async def test_a_page_connecting_while_redis_is_down_is_turned_away_quietly_and_hears_its_alerts_once_it_is_back(stack):
    base = stack.start_web()
    cookie = session_cookie(base)
    customer_id = stack.shell(
        "from django.contrib.sessions.backends.db import SessionStore; from orders.customers import SESSION_KEY; "
        f"print(SessionStore({session_key(cookie)!r})[SESSION_KEY])"
    ).strip()

    stack.redis.stop()
    for _retry in range(RETRIES):
        with pytest.raises(InvalidStatus) as refused:
            await open_socket(base, cookie)
        assert refused.value.response.status_code == 403  # the handshake refused, not a 500
    assert customer_sockets_open(stack, base) == 0  # nothing counted for the sockets turned away
    stack.redis.start()  # same port, empty memory

    while True:  # as the page does: retry until a connect joins (the first may meet a stale pooled connection)
        try:
            socket = await open_socket(base, cookie)
            break
        except InvalidStatus as error:
            assert error.response.status_code == 403
            await asyncio.sleep(0.5)
    try:
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "session.ready"
        await asyncio.to_thread(
            stack.shell,
            "from notifications.sender import customer_group, push_alerts_sync; "
            f"push_alerts_sync([(customer_group({customer_id!r}), "
            "{'type': 'pickup.alert', 'alert': {'id': 7, 'kind': 'pickup'}})])",
        )
        assert json.loads(await asyncio.wait_for(socket.recv(), 30)) == {"type": "alert", "alert": {"id": 7, "kind": "pickup"}}
        assert customer_sockets_open(stack, base) == 1
    finally:
        await socket.close()

    log = web_log(stack, base)
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    # One warning for the sockets turned away, not one per retry.
    assert 1 <= log.count("turned away with 1013") <= 2, log[-3000:]
