"""The first slice end to end, through real daphne, run_queue and Redis processes."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
import websockets

from tests.processes.clients import (
    connect,
    menu_item_id,
    place_order,
    session_cookie,
    wait_until,
)
from tests.processes.orders_in_bulk import REFILL_EVERY_SECOND, fall_due
from tests.processes.records import kitchen_queue_built, order_states, processed_count

pytestmark = pytest.mark.processes


@pytest.mark.parametrize("stack_settings", [REFILL_EVERY_SECOND])
async def test_order_alert_and_run_queue_through_real_processes(stack):
    base = stack.start_web()
    stack.start_run_queue("--interval", "0.5")
    cookie = session_cookie(base)
    item = menu_item_id(base)
    socket = await connect(base, cookie)
    second_tab = await connect(base, cookie)
    try:
        order = await place_order(socket, item, 3600)
        told = json.loads(await asyncio.wait_for(second_tab.recv(), timeout=10))
        assert told["type"] == "order.updated" and told["order"]["id"] == order["id"], told  # the other tab hears of it
        # Due 1.5 s from now, however long placing took (placed so, it could be refused as past):
        # the web server's next refill moves its timer, run_queue makes it ready.
        fall_due(stack, [order["id"]], first_in=1.5)
        for tab in (socket, second_tab):
            # The kitchen's own steps (preparing, then ready) may be told first.
            message = json.loads(await asyncio.wait_for(tab.recv(), timeout=10))
            while message["type"] == "order.updated":
                assert message["order"]["id"] == order["id"], message
                message = json.loads(await asyncio.wait_for(tab.recv(), timeout=10))
            assert message["type"] == "alert", message
            assert message["alert"]["pickup_code"] == order["pickup_code"]
    finally:
        await socket.close()
        await second_tab.close()
    # run_queue, not anyone else, made it ready: it alone sets processed_at.
    await wait_until(lambda: processed_count(stack, [order["id"]]) == 1, 30, "run_queue to process the order")
    assert order_states(stack, [order["id"]]) == {"ready": 1}


async def test_daphne_refuses_frames_over_its_size_limit(stack):
    base = stack.start_web()
    socket = await connect(base, session_cookie(base))
    await socket.send("x" * 70_000)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(socket.recv(), timeout=10)
    # Autobahn fails the connection (1009 or a dropped TCP stream) before the
    # application sees the frame; the server itself carries on.
    assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
    fresh = await connect(base, session_cookie(base))
    await fresh.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(fresh.recv(), timeout=10))["type"] == "pong"
    await fresh.close()


async def test_run_queue_exits_cleanly_on_sigterm(stack):
    worker = stack.start_run_queue("--interval", "0.2")
    await wait_until(lambda: kitchen_queue_built(stack), 30, "run_queue to be in its loop")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(10) == 0  # its own handler: SIGTERM's default would end it with -15
