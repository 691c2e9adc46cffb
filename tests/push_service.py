"""A Web Push service on loopback (RFC 8030), checking each push as FCM or autopush would.

Subscriptions it hands out have endpoints ``http://127.0.0.1:PORT/push/<id>``.
A POST there is refused with the service's status and a reason in the body
(404 unknown, 410 gone, 413, 401/403 VAPID, 400 headers or body; see
``tests/push_checks.py``), or else answered as scripted (201 with a
``Location`` by default). Every request is recorded: accepted ones with the
decrypted payload. Checks come first, so a scripted answer is only ever given
to a request a real service would have taken.

Topics (RFC 8030 §5.4) are recorded, not acted on: this service delivers at
once, so nothing is queued to replace. ``as_if_offline`` gives what a
browser that stayed offline would have received.

In a test's process: ``with PushService() as service:`` (a thread of its own).
As a process: ``python -m tests.push_service --port N [--no-decrypt]``, driven
from the test's process by ``RemotePushService`` (tests/push_service_process.py).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from tests.push_checks import (
    BrowserSubscription, Refused, b64url, b64url_decode, check_body, check_headers, check_vapid,
)

HANG = "hang"  # an answer: hold the request unanswered until ``release()`` or stop
SubscriptionRef = BrowserSubscription | str | None  # a subscription, its id, or every subscription


def subscription_id_of(subscription: SubscriptionRef) -> str | None:
    return subscription.id if isinstance(subscription, BrowserSubscription) else subscription


@dataclass(frozen=True)
class PushRequest:
    """One POST to a subscription endpoint and what the service answered (``status`` None: held)."""

    subscription_id: str
    status: int | None
    reason: str  # "" when accepted
    payload: bytes | None  # decrypted; None when refused or not decrypted (--no-decrypt)
    ttl: int | None
    urgency: str | None
    topic: str | None
    received_at: float  # time.time()

    @property
    def accepted(self) -> bool:
        return self.status == 201

    @property
    def message(self) -> Any:
        """The payload parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.payload)
        except (TypeError, ValueError):
            return None

    def to_json(self) -> dict:
        return {**asdict(self), "payload": None if self.payload is None else b64url(self.payload)}

    @classmethod
    def from_json(cls, data: dict) -> PushRequest:
        return cls(**{**data, "payload": None if data["payload"] is None else b64url_decode(data["payload"])})


@dataclass
class _Answer:
    status: int | str
    times: int | None  # requests left to answer so; None: until changed
    retry_after: int | None


class Records:
    """Reading what a push service received; subclasses supply ``requests``."""

    def requests(self, subscription: SubscriptionRef = None) -> list[PushRequest]:
        raise NotImplementedError

    def received(self, subscription: SubscriptionRef = None) -> list[PushRequest]:
        """Accepted messages (201), oldest first."""
        return [request for request in self.requests(subscription) if request.accepted]

    def rejected(self, subscription: SubscriptionRef = None) -> list[PushRequest]:
        """Everything not accepted: refused by a check, answered as scripted, or held."""
        return [request for request in self.requests(subscription) if not request.accepted]

    def as_if_offline(self, subscription: SubscriptionRef) -> list[PushRequest]:
        """What a browser offline since subscribing would get on coming back: every
        message without a Topic, and of those sharing one only the latest (RFC 8030 §5.4)."""
        received = self.received(subscription)
        latest = {request.topic: request for request in received if request.topic is not None}
        return [request for request in received if request.topic is None or latest[request.topic] is request]


class PushService(Records):
    """The push service, in a thread of the test's process (``start``/``stop``, or ``with``)
    or on a process's own loop (``open``/``close``, see tests/push_service_process.py).
    ``decrypt=False`` skips only the decryption (payloads are then None), for
    benchmarks; every other check stands."""

    def __init__(self, *, decrypt: bool = True, port: int = 0) -> None:
        self.decrypt = decrypt
        self.port = port
        self._lock = threading.Condition()
        self._subscriptions: dict[str, BrowserSubscription] = {}
        self._gone: set[str] = set()
        self._answers: dict[str | None, _Answer] = {}
        self._requests: list[PushRequest] = []
        self._held: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ what a test does

    def new_subscription(self, application_server_key: str | None = None) -> BrowserSubscription:
        """A browser subscribing; with ``application_server_key`` (a VAPID public key,
        base64url) the service takes only pushes signed with that key (403 otherwise)."""
        endpoint = f"{self.url}/push/{secrets.token_urlsafe(16)}"
        subscription = BrowserSubscription.create(endpoint, application_server_key)
        with self._lock:
            self._subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, subscription: SubscriptionRef, *, gone: bool = False) -> None:
        """Forget a subscription: later pushes get 404 (expired), or 410 with ``gone``."""
        with self._lock:
            self._subscriptions.pop(subscription_id_of(subscription), None)
            if gone:
                self._gone.add(subscription_id_of(subscription))

    def answer(
        self, status: int | str, *,
        subscription: SubscriptionRef = None, times: int | None = None, retry_after: int | None = None,
    ) -> None:
        """Answer valid pushes (to this subscription, or to any without its own script) with
        ``status`` (201, 410, 429, 500 … or HANG), for the next ``times`` of them or until
        changed; ``retry_after`` adds a ``Retry-After`` header. ``answer(201)`` restores the default."""
        with self._lock:
            self._answers[subscription_id_of(subscription)] = _Answer(status, times, retry_after)

    def release(self) -> None:
        """Answer every held request (503); they stay recorded as held (status None)."""
        with self._lock:
            held, self._held = self._held, []
        for loop, event in held:
            loop.call_soon_threadsafe(event.set)

    def requests(self, subscription: SubscriptionRef = None) -> list[PushRequest]:
        """Every request recorded, oldest first."""
        wanted = subscription_id_of(subscription)
        with self._lock:
            return [request for request in self._requests if wanted is None or request.subscription_id == wanted]

    def wait_for(
        self, count: int, subscription: SubscriptionRef = None, *, timeout: float = 10, accepted: bool = True
    ) -> list[PushRequest]:
        """Block until ``count`` messages were accepted (or, with ``accepted=False``, requests
        arrived at all); returns them. From async code on the sender's loop use ``wait_for_async``."""
        pick = self.received if accepted else self.requests
        with self._lock:
            if not self._lock.wait_for(lambda: len(pick(subscription)) >= count, timeout):
                raise AssertionError(
                    f"push service: {len(pick(subscription))} of {count} {'accepted ' if accepted else ''}requests "
                    f"after {timeout} s; rejected: {[(r.status, r.reason) for r in self.rejected(subscription)]}"
                )
            return pick(subscription)

    async def wait_for_async(self, count: int, subscription: SubscriptionRef = None, **options) -> list[PushRequest]:
        return await asyncio.to_thread(self.wait_for, count, subscription, **options)

    # ------------------------------------------------------------ a push arriving

    async def _push(self, request: web.Request) -> web.Response:
        subscription_id = request.match_info["id"]
        body = await request.read()
        try:
            ttl, urgency, topic, payload = self._check(subscription_id, request.headers, body)
        except Refused as refusal:
            refused = PushRequest(subscription_id, refusal.status, refusal.reason, None, None, None, None, time.time())
            self._record(refused)
            return web.Response(status=refusal.status, text=refusal.reason)
        answer = self._next_answer(subscription_id)
        status = None if answer.status == HANG else int(answer.status)
        reason = "" if status == 201 else "held" if status is None else f"scripted {status}"
        recorded = PushRequest(subscription_id, status, reason, payload, ttl, urgency, topic, time.time())
        if status is None:
            await self._hold(recorded)
            return web.Response(status=503, text="released")
        self._record(recorded)
        headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after is not None else {}
        if status == 201:
            headers["Location"] = f"{self.url}/message/{secrets.token_urlsafe(12)}"
        return web.Response(status=status, text=reason, headers=headers)

    def _check(self, subscription_id: str, headers, body: bytes) -> tuple[int, str | None, str | None, bytes | None]:
        with self._lock:
            subscription = self._subscriptions.get(subscription_id)
            gone = subscription_id in self._gone
        if subscription is None:
            raise Refused(410, "subscription gone") if gone else Refused(404, "no such subscription")
        check_body(headers, body)
        check_vapid(headers.get("Authorization"), audience=self.url, now=time.time(),
                    restricted_to=subscription.application_server_key)
        ttl, urgency, topic = check_headers(headers)
        payload = None
        if self.decrypt:
            try:
                payload = subscription.decrypt(body) if body else b""
            except Exception as error:  # whatever http_ece or cryptography raised, the browser could not read it
                reason = f"body does not decrypt with the subscription's keys ({type(error).__name__})"
                raise Refused(400, reason) from None
        return ttl, urgency, topic, payload

    def _next_answer(self, subscription_id: str) -> _Answer:
        with self._lock:
            key = subscription_id if subscription_id in self._answers else None
            answer = self._answers.get(key, _Answer(201, None, None))
            if answer.times is not None:
                answer.times -= 1
                if answer.times <= 0:
                    del self._answers[key]
            return answer

    def _record(self, request: PushRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    async def _hold(self, request: PushRequest) -> None:
        """Recorded and registered in one step, so a test that saw the record can release it."""
        event = asyncio.Event()
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            if self._closing:
                return
            self._held.append((asyncio.get_running_loop(), event))
        await event.wait()

    # ------------------------------------------------------------ running

    async def open(self, *routes: web.RouteDef) -> None:
        """Listen on 127.0.0.1 (``port``, or a free one when 0), with ``routes`` besides the push endpoint."""
        app = web.Application()
        app.router.add_post("/push/{id}", self._push)
        app.router.add_routes(routes)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        with self._lock:
            self._closing = True
        self.release()
        await self._runner.cleanup()

    def start(self) -> PushService:
        """Serve from a thread of this process; returns once the port is open."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="push-service", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.open(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> PushService:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # python -m tests.push_service --port N [--no-decrypt]
    from tests.push_service_process import main

    main()
