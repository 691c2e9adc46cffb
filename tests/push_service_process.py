"""The push service stand-in as a process of its own, and its remote control.

``python -m tests.push_service --port N [--no-decrypt]`` serves the push
endpoints and, for the test's process, control routes (JSON): POST
``/_subscriptions``, DELETE ``/_subscriptions/<id>[?gone=1]``, POST
``/_answers``, POST ``/_release``, GET ``/_counts`` and ``/_requests``
(``?subscription=<id>`` to narrow). ``push_service_process()`` starts one and
yields a ``RemotePushService``, which makes ``PushService``'s calls over them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pickup.redis_server import free_port
from aiohttp import web

from tests.push_checks import BrowserSubscription
from tests.push_service import PushRequest, PushService, Records, SubscriptionRef, subscription_id_of

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ in the service's process

def control_routes(service: PushService) -> list[web.RouteDef]:
    """``PushService``'s calls over HTTP, for ``RemotePushService``."""

    async def subscribe(request: web.Request) -> web.Response:
        key = (await request.json()).get("application_server_key")
        return web.json_response(service.new_subscription(key).to_json())

    async def unsubscribe(request: web.Request) -> web.Response:
        service.unsubscribe(request.match_info["id"], gone=request.query.get("gone") == "1")
        return web.json_response({})

    async def answer(request: web.Request) -> web.Response:
        script = await request.json()
        service.answer(script.pop("status"), **script)
        return web.json_response({})

    async def release(request: web.Request) -> web.Response:
        service.release()
        return web.json_response({})

    async def counts(request: web.Request) -> web.Response:
        requests = service.requests(request.query.get("subscription"))
        return web.json_response({"requests": len(requests), "accepted": sum(r.accepted for r in requests)})

    async def requests(request: web.Request) -> web.Response:
        return web.json_response([r.to_json() for r in service.requests(request.query.get("subscription"))])

    return [
        web.post("/_subscriptions", subscribe), web.delete("/_subscriptions/{id}", unsubscribe),
        web.post("/_answers", answer), web.post("/_release", release),
        web.get("/_counts", counts), web.get("/_requests", requests),
    ]


async def serve(service: PushService) -> None:
    """Serve until SIGTERM or SIGINT, then answer held requests and stop."""
    await service.open(*control_routes(service))
    print(f"push service listening on {service.url}", flush=True)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await service.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.push_service", description="A Web Push service stand-in on 127.0.0.1 (tests only)."
    )
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed on the first line)")
    parser.add_argument("--no-decrypt", action="store_true", help="skip decrypting (benchmarks); other checks stay")
    args = parser.parse_args()
    asyncio.run(serve(PushService(decrypt=not args.no_decrypt, port=args.port)))


# ------------------------------------------------------------------ in the test's process


class RemotePushService(Records):
    """``PushService``'s calls, made on a push service process at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pid: int | None = None  # the process's, when push_service_process started it
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy

    def _call(self, method: str, path: str, body: dict | None = None, **query: str | None):
        query = {name: value for name, value in query.items() if value is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        with self._opener.open(request, timeout=10) as response:
            return json.load(response)

    def new_subscription(self, application_server_key: str | None = None) -> BrowserSubscription:
        made = self._call("POST", "/_subscriptions", {"application_server_key": application_server_key})
        return BrowserSubscription.from_json(made)

    def unsubscribe(self, subscription: SubscriptionRef, *, gone: bool = False) -> None:
        self._call("DELETE", f"/_subscriptions/{subscription_id_of(subscription)}", gone="1" if gone else None)

    def answer(
        self, status: int | str, *,
        subscription: SubscriptionRef = None, times: int | None = None, retry_after: int | None = None,
    ) -> None:
        script = {"status": status, "subscription": subscription_id_of(subscription), "times": times,
                  "retry_after": retry_after}
        self._call("POST", "/_answers", script)

    def release(self) -> None:
        self._call("POST", "/_release", {})

    def counts(self, subscription: SubscriptionRef = None) -> dict[str, int]:
        return self._call("GET", "/_counts", subscription=subscription_id_of(subscription))

    def requests(self, subscription: SubscriptionRef = None) -> list[PushRequest]:
        records = self._call("GET", "/_requests", subscription=subscription_id_of(subscription))
        return [PushRequest.from_json(record) for record in records]

    def wait_for(
        self, count: int, subscription: SubscriptionRef = None, *, timeout: float = 10, accepted: bool = True
    ) -> list[PushRequest]:
        """Like ``PushService.wait_for``; asks for the counts every 50 ms, then for the records once."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.counts(subscription)
            if counts["accepted" if accepted else "requests"] >= count:
                return self.received(subscription) if accepted else self.requests(subscription)
            if time.monotonic() > deadline:
                raise AssertionError(f"push service process: {counts} after {timeout} s, waiting for {count}")
            time.sleep(0.05)

    async def wait_for_async(self, count: int, subscription: SubscriptionRef = None, **options) -> list[PushRequest]:
        return await asyncio.to_thread(self.wait_for, count, subscription, **options)

    def wait_until_up(self, process: subprocess.Popen, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"push service exited with {process.returncode} before answering")
            try:
                self._call("GET", "/_counts")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)


@contextlib.contextmanager
def push_service_process(*, decrypt: bool = True, log: IO | None = None) -> Iterator[RemotePushService]:
    """A push service process on a free port, ended (SIGTERM, then SIGKILL) on leaving."""
    port = free_port()
    command = [sys.executable, "-m", "tests.push_service", "--port", str(port)] + ([] if decrypt else ["--no-decrypt"])
    output = log or subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=output)
    try:
        service = RemotePushService(f"http://127.0.0.1:{port}")
        service.pid = process.pid
        service.wait_until_up(process)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
