"""The Web Push transport: one alert to one browser subscription, through its push service.

Each message is encrypted for the subscription (RFC 8291, aes128gcm) and
signed with the site's VAPID key (RFC 8292) by pywebpush, and posted over a
shared aiohttp session (pywebpush's own async path), many at once. The push
service's answer becomes a ``Result`` as RFC 8030 reads it:

    201 (200, 202)      delivered
    404, 410            gone: the browser dropped the subscription
    429                 refused: try again after Retry-After
    5xx, timeout, I/O   failed: try again with back-off (Retry-After honoured)
    400, 401, 403, 413  rejected: never again; logged for an operator

Headers: ``Urgency: high`` (a customer is waiting at the counter),
``TTL`` = what is left of the alert's replay window, and ``Topic`` = the
alert, so a repeated attempt replaces a message still queued at the push
service instead of doubling it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import aiohttp
from pywebpush import WebPusher

from notifications import vapid
from notifications.transports import DELIVERED, Outcome, Result

logger = logging.getLogger(__name__)

# An answer that takes longer than this is a failed attempt, tried again.
TIMEOUT_SECONDS = 10
# Requests in flight at once, over every push service.
CONCURRENCY = 64
# Push services must take 4,096 bytes of payload (RFC 8291 §4); stay under it.
MAX_PAYLOAD_BYTES = 3800
# A VAPID signature is reused for this long per push service (it is valid for 12 h).
SIGNATURE_REUSE_SECONDS = 3600


@dataclass(frozen=True)
class Message:
    """What to send: to which subscription, the alert's payload, for how long it is worth having."""

    subscription: dict
    payload: dict
    topic: str
    ttl_seconds: int


def encode(payload: dict) -> bytes:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    if len(body) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"Web Push payload of {len(body)} bytes is over {MAX_PAYLOAD_BYTES}")
    return body


class Signatures:
    """VAPID Authorization headers, one per push service origin, renewed hourly."""

    def __init__(self) -> None:
        self._headers: dict[str, tuple[float, dict]] = {}

    def for_endpoint(self, endpoint: str) -> dict:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._headers.get(audience)
        if cached is None or cached[0] < now:
            claims = {"aud": audience, "sub": vapid.subject(), "exp": int(now) + 12 * 3600}
            cached = (now + SIGNATURE_REUSE_SECONDS, vapid.signer().sign(claims))
            self._headers[audience] = cached
        return cached[1]


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when: datetime = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _result(status: int, retry_after: float | None, detail: str) -> Result:
    if status in (200, 201, 202):
        return DELIVERED
    if status in (404, 410):
        return Result(Outcome.GONE, detail=detail)
    if status == 429:
        return Result(Outcome.REFUSED, retry_after, detail)
    if status >= 500:
        return Result(Outcome.FAILED, retry_after, detail)
    return Result(Outcome.REJECTED, detail=detail)


class Sender:
    """Sends Web Push messages from one event loop, over one pooled HTTP session."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._signatures = Signatures()

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=CONCURRENCY),
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_one(self, message: Message) -> Result:
        """Send one message; every failure is a Result, never an exception."""
        session = await self._client()
        endpoint = message.subscription["endpoint"]
        headers = {"Urgency": "high", "Topic": message.topic, **self._signatures.for_endpoint(endpoint)}
        try:
            pusher = WebPusher(message.subscription, aiohttp_session=session)
            response = await pusher.send_async(
                encode(message.payload), headers, ttl=message.ttl_seconds, content_encoding="aes128gcm",
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            return Result(Outcome.FAILED, detail=error.__class__.__name__)
        except Exception as error:  # keys pywebpush cannot use, a payload too large
            logger.exception("could not encrypt a Web Push for %s", endpoint[:80])
            return Result(Outcome.REJECTED, detail=error.__class__.__name__)
        async with response:
            detail = f"{response.status} {(await response.text())[:200]}".strip()
            return _result(response.status, _retry_after(response), detail)
