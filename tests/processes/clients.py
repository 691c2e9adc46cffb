"""Customer clients for process tests: a real HTTP session cookie and a real WebSocket."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import websockets


def _keep_cookies(response, cookie: SimpleCookie) -> None:
    for header in response.headers.get_all("Set-Cookie") or []:
        cookie.load(header)


def session_cookie(base_url: str) -> str:
    """Open the ordering page and start a session as the page does before the
    first order (``POST /session/`` with the CSRF token); returns the cookies."""
    cookie = SimpleCookie()
    with urllib.request.urlopen(base_url + "/", timeout=10) as response:
        _keep_cookies(response, cookie)
    token = cookie["csrftoken"].value
    start = urllib.request.Request(
        base_url + "/session/", method="POST", headers={"Cookie": f"csrftoken={token}", "X-CSRFToken": token}
    )
    with urllib.request.urlopen(start, timeout=10) as response:
        _keep_cookies(response, cookie)
    return "; ".join(f"{name}={morsel.value}" for name, morsel in cookie.items())


def menu_item_id(base_url: str) -> int:
    with urllib.request.urlopen(base_url + "/", timeout=10) as response:
        page = response.read().decode()
    marker = 'data-menu-item="'
    start = page.index(marker) + len(marker)
    return int(page[start : page.index('"', start)])


async def connect(base_url: str, cookie: str):
    ws_url = base_url.replace("http://", "ws://") + "/ws/customer/"
    socket = await websockets.connect(ws_url, additional_headers={"Cookie": cookie, "Origin": base_url})
    ready = json.loads(await socket.recv())
    assert ready["type"] == "session.ready", ready
    return socket


def pickup_at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def place_order(socket, item_id: int, seconds: float, request_id: str = "r1") -> dict:
    await socket.send(
        json.dumps({"type": "order.place", "request_id": request_id, "items": [{"menu_item": item_id, "quantity": 1}], "pickup_at": pickup_at(seconds)})
    )
    while True:
        reply = json.loads(await socket.recv())
        if reply.get("request_id") == request_id:
            assert reply["type"] == "order.accepted", reply
            return reply["order"]


def session_key(cookie: str) -> str:
    return dict(part.split("=", 1) for part in cookie.split("; "))["sessionid"]


class Customer:
    """A customer's browser tab as the durability tests need it.

    Like the real page (static/orders/pickup.js) it reconnects by itself when
    the connection drops, acknowledges every alert it receives by id and
    shows an alert id only the first time. It records every alert message it
    receives, so tests can tell delivery (at least once) from display (once).
    ``acknowledges=False`` is a page that dies before it can acknowledge.
    ``elsewhere`` are more web servers behind the same load balancer: a
    dropped connection comes back to the next one in turn.

    It reads on the test's event loop: while it is connected, a test runs
    anything that blocks for long (a ``manage.py shell``, an HTTP request, a
    process stopping) with ``asyncio.to_thread``, or the server's pings go
    unanswered and, on a loaded machine, the server drops the socket.
    """

    def __init__(self, base_url: str, cookie: str, *, acknowledges: bool = True, elsewhere: tuple[str, ...] = ()):
        self.base_url = base_url
        self.servers = [base_url, *elsewhere]
        self.cookie = cookie
        self.acknowledges = acknowledges
        self.pushes: Counter[int] = Counter()  # alert id -> alert messages received
        self.shown: list[int] = []  # alert ids in the order shown, once each
        self.first_seen: dict[int, float] = {}  # alert id -> epoch seconds it first arrived
        self.due_at: dict[int, float] = {}  # alert id -> its due time, epoch seconds
        self.replayed: set[int] = set()  # ids that arrived as a replay on connect
        self.acked: set[int] = set()  # ids the server confirmed acknowledged
        self.reconnects = 0
        self.close_codes: list[int | None] = []  # how each connection the server ended was closed
        self.socket = None
        self._runner = None
        self._closing = False
        self._replies: dict[str, asyncio.Future] = {}

    async def connect(self, base_url: str | None = None) -> None:
        """Connect (raising if the server refuses), then stay connected until disconnect()."""
        self.base_url = base_url or self.base_url
        self._closing = False
        self.socket = await self._open()
        self._runner = asyncio.create_task(self._stay_connected(self.socket))

    async def _open(self):
        ws_url = self.base_url.replace("http://", "ws://") + "/ws/customer/"
        return await websockets.connect(ws_url, additional_headers={"Cookie": self.cookie, "Origin": self.base_url})

    async def _stay_connected(self, socket) -> None:
        while True:
            await self._read(socket)
            if self._closing:
                return
            while not self._closing:  # dropped: come back like the page does
                await asyncio.sleep(0.2)
                if self.base_url in self.servers:
                    self.base_url = self.servers[(self.servers.index(self.base_url) + 1) % len(self.servers)]
                try:
                    socket = await self._open()
                except (OSError, websockets.InvalidHandshake):
                    continue
                if self._closing:  # closed while this connection was being opened
                    await socket.close()
                    return
                self.socket = socket
                self.reconnects += 1
                break

    async def _read(self, socket) -> None:
        try:
            async for raw in socket:
                message = json.loads(raw)
                waiting = self._replies.pop(message.get("request_id") or "", None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(message)
                if message["type"] == "alert.acked":
                    self.acked.add(message["alert_id"])
                elif message["type"] == "alert":
                    await self._receive_alert(socket, message)
        except websockets.ConnectionClosed:
            pass
        if not self._closing:
            self.close_codes.append(socket.close_code)

    async def _receive_alert(self, socket, message: dict) -> None:
        alert = message["alert"]
        alert_id = alert["id"]
        self.pushes[alert_id] += 1
        if message.get("replayed"):
            self.replayed.add(alert_id)
        if alert_id not in self.first_seen:
            self.first_seen[alert_id] = time.time()
            self.due_at[alert_id] = datetime.fromisoformat(alert["due_at"]).timestamp()
            self.shown.append(alert_id)
        # Not while closing: a send on a closing connection waits for it to be
        # closed, this reader would stop reading, and the server's close frame
        # would sit behind unread pushes until close() gives up after 10 s.
        if self.acknowledges and not self._closing:
            await socket.send(json.dumps({"type": "alert.ack", "alert_id": alert_id}))

    async def request(self, message: dict, timeout: float = 30) -> dict:
        """Send one request and wait for the reply carrying its request_id."""
        reply = asyncio.get_running_loop().create_future()
        self._replies[message["request_id"]] = reply
        await self.socket.send(json.dumps(message))
        return await asyncio.wait_for(reply, timeout=timeout)

    async def place_order(self, item_id: int, seconds: float, request_id: str = "r1") -> dict:
        return (await self.place_orders(item_id, 1, at=pickup_at(seconds), prefix=request_id))[0]

    async def place_orders(self, item_id: int, count: int, *, at: str, prefix: str = "bulk") -> list[dict]:
        """Place ``count`` orders all due at the instant ``at``, sent without waiting for each reply."""
        message = {"type": "order.place", "items": [{"menu_item": item_id, "quantity": 1}], "pickup_at": at}
        replies = await asyncio.gather(
            *(self.request({**message, "request_id": f"{prefix}-{n}"}, timeout=60) for n in range(count))
        )
        for reply in replies:
            assert reply["type"] == "order.accepted", reply
        return [reply["order"] for reply in replies]

    async def ping(self) -> None:
        """Round trip: everything the server sent this socket before the pong has arrived."""
        reply = await self.request({"type": "ping", "request_id": f"ping-{time.monotonic_ns()}"})
        assert reply["type"] == "pong", reply

    async def disconnect(self) -> None:
        """Close the tab: no reconnecting."""
        self._closing = True
        if self.socket is not None:
            await self.socket.close()
        if self._runner is not None:
            await asyncio.wait_for(self._runner, timeout=10)
        self.socket = self._runner = None

    async def wait_until_shown(self, count: int, timeout: float) -> None:
        await wait_until(lambda: len(self.shown) >= count, timeout, lambda: f"{count} alerts shown (have {len(self.shown)})")

    def lateness(self) -> list[float]:
        """Seconds from each shown alert's due time to its first arrival."""
        return [self.first_seen[alert_id] - self.due_at[alert_id] for alert_id in self.shown]


async def wait_until(condition, timeout: float, what, every: float = 0.1) -> None:
    """Poll ``condition`` until it holds; fail saying ``what`` (a string, or a
    function giving one) did not happen within ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        await asyncio.sleep(every)


async def reconnect_until_up(customer: Customer, base_url: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await customer.connect(base_url)
            return
        except (OSError, websockets.InvalidHandshake):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
