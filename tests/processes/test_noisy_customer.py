"""One noisy customer must not hurt the others: a socket flooding a real
daphne is told to slow down, then closed, and sockets per session are capped,
while another customer's socket keeps its answers."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from pickup.testing import metric_samples
from tests.processes.clients import connect, session_cookie

pytestmark = pytest.mark.processes

FLOOD_CLOSE_CODE = 4429


@pytest.fixture
def stack_env():
    return {
        "PICKUP_MESSAGES_PER_SECOND_PER_SOCKET": "10",
        "PICKUP_SOCKETS_PER_SESSION": "3",
        "PICKUP_SOCKETS_PER_ADDRESS": "0",
    }


async def test_a_socket_sending_far_too_fast_is_told_once_then_closed_and_another_customer_is_still_answered(stack):
    base = stack.start_web()
    stack.start_run_queue()
    flooder = await connect(base, session_cookie(base))
    honest = await connect(base, session_cookie(base))

    async def flood():
        # A script at 300 messages a second, thirty times what the socket may
        # send, until the server closes it. (A flood at full line speed is
        # another matter: see docs/protocol.md, "Limits".)
        sent = 0
        try:
            while True:
                for _ in range(30):
                    await flooder.send(json.dumps({"type": "ping"}))
                    sent += 1
                await asyncio.sleep(0.1)
        except websockets.ConnectionClosed:
            return sent

    async def replies():
        received = []
        try:
            async for raw in flooder:
                received.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        return received

    flooding = asyncio.create_task(flood())
    received = await asyncio.wait_for(replies(), timeout=60)
    sent = await flooding

    assert flooder.close_code == FLOOD_CLOSE_CODE
    refusals = [message for message in received if message.get("code") == "rate_limited"]
    assert len(refusals) >= 1 and refusals[0]["retry_after"] >= 1
    pongs = [message for message in received if message["type"] == "pong"]
    assert 1 <= len(pongs) < sent / 2  # its burst and its rate, not its flood
    await honest.send(json.dumps({"type": "ping", "request_id": "still-served"}))
    assert json.loads(await asyncio.wait_for(honest.recv(), timeout=10)) == {"type": "pong", "request_id": "still-served"}
    await honest.close()


async def test_a_session_holding_its_share_of_sockets_is_refused_one_more_with_a_reason(stack):
    base = stack.start_web()
    cookie = session_cookie(base)
    tabs = [await connect(base, cookie) for _ in range(3)]
    ws_url = base.replace("http://", "ws://") + "/ws/customer/"
    async with websockets.connect(ws_url, additional_headers={"Cookie": cookie, "Origin": base}) as extra:
        refusal = json.loads(await asyncio.wait_for(extra.recv(), timeout=10))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(extra.recv(), timeout=10)
    assert refusal["code"] == "too_many_connections"
    assert extra.close_code == FLOOD_CLOSE_CODE
    await tabs[0].close()
    # A tab closed frees its place (the server counts the close asynchronously).
    for _attempt in range(50):
        async with websockets.connect(ws_url, additional_headers={"Cookie": cookie, "Origin": base}) as again:
            first = json.loads(await asyncio.wait_for(again.recv(), timeout=10))
            if first["type"] == "session.ready":
                break
        await asyncio.sleep(0.1)
    assert first["type"] == "session.ready"
    for tab in tabs[1:]:
        await tab.close()


def _counted(metrics: str, name: str) -> float:
    return sum(value for (sample, _labels), value in metric_samples(metrics).items() if sample == name)


async def test_a_socket_flooding_at_line_speed_is_paced_as_daphne_reads_it_and_closed(stack):
    """No sleeps in the flood: frames as fast as the connection takes them. The
    server stops reading the socket once it is over budget, drops what it
    reads over the budget before any consumer sees it, and closes it."""
    base = stack.start_web()
    flooder = await connect(base, session_cookie(base))
    honest = await connect(base, session_cookie(base))
    frame = json.dumps({"type": "ping"})

    async def flood():
        sent = 0
        try:
            while True:
                await flooder.send(frame)  # waits whenever the server stops reading
                sent += 1
                await asyncio.sleep(0)  # its reader runs too, as a browser's would
        except websockets.ConnectionClosed:
            return sent

    async def replies():  # read, as any client library does, or the close frame is never seen
        try:
            async for _raw in flooder:
                pass
        except websockets.ConnectionClosed:
            pass

    reading = asyncio.create_task(replies())
    sent = await asyncio.wait_for(flood(), timeout=60)
    await asyncio.wait_for(reading, timeout=60)
    metrics = stack.metrics(base)
    assert flooder.close_code == FLOOD_CLOSE_CODE
    assert _counted(metrics, "pickup_websocket_flooding_closed_total") == 1
    dropped = _counted(metrics, "pickup_websocket_frames_dropped_total")
    assert dropped >= 200 - 1  # the refusals before the close, all but the one answered
    assert dropped < sent  # and the flooder's frames were not all read: it was made to wait
    await honest.send(json.dumps({"type": "ping", "request_id": "still-served"}))
    assert json.loads(await asyncio.wait_for(honest.recv(), timeout=10)) == {"type": "pong", "request_id": "still-served"}
    await honest.close()
