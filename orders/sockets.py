"""What the customer and kitchen sockets share: one handler per client message type.

A frame takes Channels' own JSON path (``receive`` → ``decode_json`` →
``receive_json``); ``orders.parsing`` reads it and turns the message into a
typed request, and the handler named for its type in ``handlers`` gets that
request. Anything a handler raises is answered as an ``error`` with the
message's ``request_id``, and the socket stays open (docs/protocol.md).

Every socket this process has accepted is in ``open_here`` until it
disconnects, so a graceful stop can wait for them all to close
(pickup/graceful_stop.py).

A socket joins its groups before its handshake is accepted; one that cannot,
Redis being out of reach, is turned away to try again later, and the log
says so in a few lines however many pages retry (``turned_away``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import ClassVar

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from notifications.memberships import GroupsOutOfReach, memberships
from orders.parsing import BadMessage, Ping, parse_message, parse_request, request_id_of_oversized
from pickup.errors import PickupError
from pickup.outage_log import OutageLog, OutageWords

logger = logging.getLogger(__name__)

# One socket's bad messages or failures are logged at most this often.
LOG_INTERVAL_SECONDS = 60
# Close code (RFC 6455 "Try Again Later") for a socket that could not join its
# groups, Redis being out of reach. It closes the handshake, so daphne answers
# the upgrade with HTTP 403 and the page sees 1006 and retries with its backoff
# (docs/protocol.md says why not accepted first).
CLOSE_TRY_AGAIN_LATER = 1013

# A handler is called as handler(consumer, typed request, request_id).
Handler = Callable[..., Awaitable[None]]

# The sockets this process has accepted and not yet seen disconnect.
open_here: weakref.WeakSet[JsonSocket] = weakref.WeakSet()


async def all_closed(within: float) -> int:
    """Wait up to ``within`` seconds for every open socket to disconnect; how many were left."""
    deadline = time.monotonic() + within
    while open_here and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return len(open_here)


# Sockets turned away while Redis is out of reach: a thousand pages retrying
# through a failover write a handful of warnings, no tracebacks.
turned_away = OutageLog(logger, OutageWords(
    began="a socket turned away with 1013, Redis not reachable (%(error)s); its page retries",
    goes_on="%(count)d more socket(s) turned away with 1013, Redis not reachable (%(error)s); their pages retry",
    ended="Redis reachable again after %(total)d socket(s) turned away with 1013 over %(seconds).0f s; sockets join again",
))


class JsonSocket(AsyncJsonWebsocketConsumer):
    """A JSON socket whose client messages each go to the one handler for their type."""

    # Message type (docs/protocol.md) → handler; a type not listed is ``unknown_type``.
    handlers: ClassVar[dict[str, Handler]] = {}
    # The language of replies; set in ``connect``.
    language: str = settings.LANGUAGE_CODE

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        open_here.add(self)

    async def websocket_connect(self, message):
        """A connect that fails half-way gives back what it took, as a disconnect would.

        The error ends the consumer, so daphne never sends it a disconnect:
        without this, a Redis error other than an outage while joining, or
        a database error greeting the page, left the socket's place under the
        caps taken (its customer meets "too many open pages" after a few),
        its groups joined and its gauge counted.
        """
        try:
            await super().websocket_connect(message)
        except BaseException:
            await self.disconnect(None)
            raise

    async def join_or_turn_away(self, groups: list[str]) -> bool:
        """Join the socket's groups, before accepting it; False once it has been
        turned away (1013) because Redis is out of reach, in none of them."""
        try:
            await memberships.join_all(groups, self.channel_name)
        except GroupsOutOfReach as error:
            turned_away.failed(error)
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
            return False
        turned_away.succeeded()
        return True

    async def websocket_disconnect(self, message):
        open_here.discard(self)
        await super().websocket_disconnect(message)

    async def dispatch(self, message):
        """Channels' own ``dispatch`` without its ``close_old_connections`` before every message.

        That runs through ``sync_to_async``: a hop onto the one database
        thread per pushed alert and per received frame, queued behind the
        claims and acknowledgements (BENCHMARKS.md, item 9). Our handlers
        reach the database only through ``database_sync_to_async``, which
        closes stale connections itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Channels' JSON path, in the socket's language; a frame that cannot be read is answered here."""
        with translation.override(self.language):
            try:
                if not text_data:  # binary or empty: Channels' JSON path raises on those, the parser explains
                    parse_message(text_data, settings.PICKUP_MAX_MESSAGE_BYTES)
                await super().receive(text_data=text_data, **kwargs)
            except BadMessage as unread:  # from decode_json; receive_json answers its own errors
                request_id = request_id_of_oversized(text_data) if unread.code == "message_too_large" else None
                await self.send_error(request_id, unread)

    @classmethod
    async def decode_json(cls, text_data: str) -> dict:
        return parse_message(text_data, settings.PICKUP_MAX_MESSAGE_BYTES)

    async def receive_json(self, content: dict, **kwargs):
        request_id = content.get("request_id")
        try:
            request = parse_request(content, self.handlers)
            await self.handlers[content["type"]](self, request, request_id)
        except Exception as error:
            await self.send_error(request_id, error)

    async def send_error(self, request_id: str | None, error: Exception):
        """Answer a failed request: its PickupError as it is, anything else as ours (and logged)."""
        if isinstance(error, PickupError):
            if isinstance(error, BadMessage):
                self.log_once_a_minute(logging.INFO, "bad message on %s: %s", self.describe(), error.code)
            await self.send_json({"type": "error", "request_id": request_id, **error.as_dict()})
            return
        self.log_once_a_minute(logging.ERROR, "message on %s failed", self.describe(), exc_info=error)
        message = _("Something went wrong on our side; please try again.")
        await self.send_json({"type": "error", "request_id": request_id, "code": "internal_error", "message": message})

    async def answer_ping(self, request: Ping, request_id: str | None):
        await self.send_json({"type": "pong", "request_id": request_id})

    def describe(self) -> str:
        """Who is on this socket, for the log."""
        return type(self).__name__

    def log_once_a_minute(self, level: int, message: str, *args, **kwargs) -> None:
        """Log for this socket at most once a minute: a client repeating a bad
        message must not fill the log (nor keep the server busy writing it)."""
        now = time.monotonic()
        if now < getattr(self, "quiet_until", 0.0):
            return
        self.quiet_until = now + LOG_INTERVAL_SECONDS
        logger.log(level, message, *args, **kwargs)
