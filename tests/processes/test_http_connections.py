"""A web server keeps its connections for customers who send whole requests, and
refuses politely before it runs out of file descriptors (pickup/http_connections.py).

A client trickling a header line every few seconds once held a daphne
connection for ever; with the common 1,024 open-file limit about a thousand
sockets from one client made ``GET /`` answer 500 "Too many open files".
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request

import pytest
import websockets

from bench.common import raise_file_limit
from pickup.testing import metric_samples

pytestmark = pytest.mark.processes

DEADLINE_SECONDS = 3
SLOW_CLIENTS = 20
HEADER_LINES = 60  # a minute of trickling, far past the deadline


@pytest.fixture
def stack_settings():
    return {"PICKUP_REQUEST_DEADLINE_SECONDS": DEADLINE_SECONDS}


@pytest.fixture
def stack_env():
    return {"PICKUP_SOCKETS_PER_ADDRESS": "0", "PICKUP_SOCKETS_PER_SESSION": "0"}


def _status(base: str, path: str = "/") -> int:
    try:
        with urllib.request.urlopen(base + path, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _counted(metrics: str, reason: str) -> float:
    return sum(value for (sample, labels), value in metric_samples(metrics).items()
               if sample == "pickup_http_connections_refused_total" and ("reason", reason) in labels)


async def _trickle(host: str, port: int) -> tuple[int, bytes]:
    """A slowloris: a request line, then one header line a second. (Lines sent, what the server said.)"""
    reader, writer = await asyncio.open_connection(host, port)
    answer = asyncio.create_task(reader.read())  # everything until the server closes
    sent = 0
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode())
        while sent < HEADER_LINES and not answer.done():
            await asyncio.wait([answer], timeout=1)
            if not answer.done():
                writer.write(f"X-Slow-{sent}: still coming\r\n".encode())
                sent += 1
        if not answer.done():
            writer.write(b"\r\n")  # the request complete at last: the server never closed it
        return sent, await asyncio.wait_for(answer, 60)
    except ConnectionError:
        return sent, b""
    finally:
        writer.close()


async def test_requests_trickling_their_headers_are_cut_off_while_a_page_load_is_answered(stack):
    base = stack.start_web()
    address = urllib.parse.urlparse(base)
    slow = [asyncio.create_task(_trickle(address.hostname, address.port)) for _ in range(SLOW_CLIENTS)]
    while not any(task.done() for task in slow):  # the honest customer comes while they trickle
        assert await asyncio.to_thread(_status, base) == 200
        await asyncio.sleep(0.2)
    outcomes = await asyncio.gather(*slow)
    for sent, answer in outcomes:
        assert sent < HEADER_LINES  # closed long before the request would have been complete
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert _counted(stack.metrics(base), "slow_request") == SLOW_CLIENTS


async def test_a_request_sent_in_pieces_within_the_deadline_is_answered(stack):
    base = stack.start_web()
    address = urllib.parse.urlparse(base)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    for piece in (b"GET /healthz HTTP/1.1\r\n", f"Host: {address.hostname}\r\n".encode(), b"Connection: close\r\n\r\n"):
        writer.write(piece)
        await asyncio.sleep(0.3)
    assert (await asyncio.wait_for(reader.read(), 30)).startswith(b"HTTP/1.1 200")
    writer.close()


async def _hold(host: str, port: int) -> tuple[int, bytes, asyncio.StreamWriter]:
    """A keep-alive connection that asked for readiness: (status, response head and body, its writer)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /readyz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    body = await asyncio.wait_for(reader.readexactly(length), 30)
    return int(head.split(b" ")[1]), head + body, writer


async def test_a_client_holding_hundreds_of_connections_is_refused_with_503_before_descriptors_run_out(stack):
    raise_file_limit()
    # Started with a soft limit of 200: daphne raises it to the hard 600 and
    # keeps what its pools and files need (100 + 32 + 128) for itself.
    base = stack.start_web(file_limit=(200, 600))
    address = urllib.parse.urlparse(base)
    held, statuses, refusal = [], [], None
    try:
        while len(held) < 500:
            status, response, writer = await _hold(address.hostname, address.port)
            statuses.append(status)
            held.append(writer)
            if status != 200:
                refusal = response
                break
        assert statuses.count(200) > 200  # more than the soft limit allowed: it was raised
        assert statuses[-1] == 503, statuses[-5:]
        head, body = refusal.split(b"\r\n\r\n", 1)
        assert b"retry-after: 5" in head.lower()
        assert json.loads(body)["code"] == "server_busy"
        # A page load and a customer's socket meanwhile: refused the same way, never a 500.
        assert await asyncio.to_thread(_status, base) == 503
        # The process is alive, only full: no liveness probe restarts it; readiness sends customers elsewhere.
        assert await asyncio.to_thread(_status, base, "/healthz") == 200
        assert await asyncio.to_thread(_status, base, "/readyz") == 503
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(base.replace("http://", "ws://") + "/ws/customer/", additional_headers={"Origin": base})
        assert refused.value.response.status_code == 503
    finally:
        for writer in held:
            writer.close()
    # The crowd gone, pages are served again (the server sees the closes as it reads them).
    for _ in range(300):
        status = await asyncio.to_thread(_status, base)
        assert status in (200, 503)
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert status == 200
    assert _counted(stack.metrics(base), "out_of_descriptors") >= 2
