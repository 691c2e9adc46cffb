"""The customer's WebSocket: place orders, receive alerts, acknowledge them.

Transport only: each message is parsed, handed to one service and the result
or the PickupError turned into a reply. docs/protocol.md describes every
message.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import datetime

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.consumer import get_handler_name
from django.conf import settings
from django.db.models import prefetch_related_objects
from django.utils import translation
from django.utils.translation import gettext as _

from notifications import acks
from notifications import services as alert_services
from notifications.memberships import memberships
from notifications.sender import STAFF_GROUP, customer_group
from notifications.timers import alert_timers
from orders import selectors, services
from orders.customers import customer_id_from_scope, language_from_scope
from orders.kitchen_views import may_watch_kitchen
from orders.parsing import BadMessage, parse_alert_id, parse_message, parse_order_id, parse_order_request, parse_pickup_time
from orders.payloads import order_payload
from orders.socket_limits import CLOSE_FLOODING, message_budget, open_sockets
from pickup.batching import Batcher
from pickup.errors import PickupError

logger = logging.getLogger(__name__)

# Sent in the close frame when the page's session is missing.
CLOSE_NO_SESSION = 4401
# One socket's bad messages or failures are logged at most this often.
LOG_INTERVAL_SECONDS = 60


def _place_many(new_orders: list[services.NewOrder]) -> list[dict | PickupError]:
    """Place the orders of many sockets together; each gets its order's payload or its refusal."""
    results = services.place_orders(new_orders)
    placed = [result for result in results if not isinstance(result, PickupError)]
    prefetch_related_objects(placed, selectors.LINES_WITH_ITEMS)
    replies = []
    for result in results:
        if isinstance(result, PickupError):
            replies.append(result)
            continue
        replies.append(order_payload(result, result.language))
    return replies


# Where an oversized message names its request_id, near its start as clients write it.
_REQUEST_ID = re.compile(r'"request_id"\s*:\s*"([^"\\]{0,64})"')
_REQUEST_ID_SEARCHED = 1024


def request_id_of_oversized(text_data: str) -> str | None:
    """The request_id of a message too large to parse, if its first kilobyte holds one at the top level.

    The message is not parsed (that is what the limit prevents); a request_id
    that comes later, is escaped or sits inside a nested object is not found
    and the error goes out with ``request_id: null``.
    """
    head = text_data[:_REQUEST_ID_SEARCHED]
    match = _REQUEST_ID.search(head)
    if match is None:
        return None
    before = head[: match.start()]
    return match.group(1) if before.count("{") - before.count("}") == 1 else None


# Orders arriving on any socket while others are being written join the next
# write: one transaction for many customers (pickup/batching.py).
order_placing = Batcher(database_sync_to_async(_place_many))


class JsonConsumer(AsyncJsonWebsocketConsumer):
    """A JSON socket whose handlers reach the database only through
    ``database_sync_to_async``, which closes stale connections itself.

    Channels' own ``dispatch`` first runs ``close_old_connections`` through
    ``sync_to_async`` for every message: a hop onto the one database thread
    per pushed alert and per received frame, queued behind the claims and
    acknowledgements. In a burst of alerts those hops were most of the delay.
    """

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    def log_once_a_minute(self, level: int, message: str, *args, **kwargs) -> None:
        """Log for this socket at most once a minute: a client repeating a bad
        message must not fill the log (nor keep the server busy writing it)."""
        now = time.monotonic()
        if now < getattr(self, "quiet_until", 0.0):
            return
        self.quiet_until = now + LOG_INTERVAL_SECONDS
        logger.log(level, message, *args, **kwargs)


class CustomerConsumer(JsonConsumer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ack_tasks: set[asyncio.Task] = set()

    async def connect(self):
        self.customer_id = customer_id_from_scope(self.scope)
        self.language = language_from_scope(self.scope, settings.LANGUAGE_CODE)
        self.address = (self.scope.get("client") or [""])[0] or ""
        if not self.customer_id:
            with translation.override(self.language):
                await self.refuse("no_session", _("Open the ordering page first to start a session."), CLOSE_NO_SESSION)
            return
        if not open_sockets.admit(self.customer_id, self.address):
            with translation.override(self.language):
                message = _("Too many open pages for this customer or network. Close some and reload.")
                await self.refuse("too_many_connections", message, CLOSE_FLOODING)
            return
        self.admitted = True
        self.budget = message_budget()
        alert_timers.start()
        self.group = customer_group(self.customer_id)
        await memberships.join(self.group, self.channel_name)
        await self.accept()
        orders, missed = await database_sync_to_async(self._session_state)()
        await self.send_json({"type": "session.ready", "orders": orders})
        for alert in missed:
            await self.send_json({"type": "alert", "alert": alert, "replayed": True})

    async def refuse(self, code: str, message: str, close_code: int):
        """Turn a socket away with a reason it can read, then close it."""
        await self.accept()
        await self.send_json({"type": "error", "code": code, "message": message})
        await self.close(code=close_code)

    def _session_state(self) -> tuple[list[dict], list[dict]]:
        recent = selectors.customer_orders(self.customer_id).order_by("-pickup_at")[:10]
        orders = [order_payload(order, self.language) for order in recent]
        return orders, alert_services.alerts_to_replay(self.customer_id)

    async def disconnect(self, code):
        for task in self.ack_tasks:
            task.cancel()
        if getattr(self, "admitted", False):
            open_sockets.release(self.customer_id, self.address)
        if getattr(self, "group", None):
            await memberships.leave(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if not self.budget.take():
            await self.refuse_flood()
            return
        with translation.override(self.language):
            await self.handle_text(text_data)

    async def handle_text(self, text_data: str | None):
        request_id = None
        try:
            content = self.parse(text_data)
            request_id = content.get("request_id")
            await self.dispatch_message(content, request_id)
        except Exception as error:
            if isinstance(error, PickupError) and error.code == "message_too_large":
                request_id = request_id_of_oversized(text_data)
            await self.send_error(request_id, error)

    async def refuse_flood(self):
        """Over the socket's message budget: say so once per streak, close a socket that keeps on."""
        if self.budget.flooding:
            await self.close(code=CLOSE_FLOODING)
        elif self.budget.refused == 1:
            retry_after = self.budget.retry_after()
            with translation.override(self.language):
                message = _("Too many messages; slow down for %(seconds)d seconds.") % {"seconds": retry_after}
            await self.send_json({"type": "error", "code": "rate_limited", "message": message, "retry_after": retry_after})

    async def send_error(self, request_id: str | None, error: Exception):
        """Answer a failed request: its PickupError as it is, anything else as ours (and logged)."""
        if isinstance(error, PickupError):
            if isinstance(error, BadMessage):
                self.log_once_a_minute(logging.INFO, "bad message from %s: %s", self.customer_id, error.code)
            await self.send_json({"type": "error", "request_id": request_id, **error.as_dict()})
            return
        self.log_once_a_minute(logging.ERROR, "customer message failed", exc_info=error)
        message = _("Something went wrong on our side; please try again.")
        await self.send_json({"type": "error", "request_id": request_id, "code": "internal_error", "message": message})

    def parse(self, text_data: str | None) -> dict:
        return parse_message(text_data, settings.PICKUP_MAX_MESSAGE_BYTES)

    async def dispatch_message(self, content: dict, request_id: str | None):
        kind = content.get("type")
        if kind == "order.place":
            request = parse_order_request(content)
            order = await order_placing.submit(
                services.NewOrder(
                    self.customer_id, request.lines, request.pickup_at, self.language, self.channel_name, self.address
                )
            )
            await self.send_json(
                {
                    "type": "order.accepted",
                    "request_id": request_id,
                    "order": order,
                    "message": _("Payment successful, please wait for your pickup alert."),
                }
            )
        elif kind == "order.cancel":
            order = await database_sync_to_async(self._cancel)(parse_order_id(content.get("order_id")))
            await self.send_json({"type": "order.updated", "request_id": request_id, "order": order})
        elif kind == "order.reschedule":
            order_id, pickup_at = parse_order_id(content.get("order_id")), parse_pickup_time(content.get("pickup_at"))
            order = await database_sync_to_async(self._reschedule)(order_id, pickup_at)
            await self.send_json({"type": "order.updated", "request_id": request_id, "order": order})
        elif kind == "alert.ack":
            # Answered from a task: the batcher holds an ack up to 20 ms, and
            # the customer's next alert must not wait behind it.
            task = asyncio.create_task(self.handle_ack(content, request_id))
            self.ack_tasks.add(task)
            task.add_done_callback(self.ack_tasks.discard)
        elif kind == "ping":
            await self.send_json({"type": "pong", "request_id": request_id})
        else:
            raise PickupError("unknown_type", _("Unknown message type."), field="type")

    async def handle_ack(self, content: dict, request_id: str | None):
        try:
            alert_id = parse_alert_id(content.get("alert_id"))
            await acks.acknowledge(customer_id=self.customer_id, alert_id=alert_id)
            await self.send_json({"type": "alert.acked", "request_id": request_id, "alert_id": alert_id})
        except Exception as error:
            await self.send_error(request_id, error)

    def _cancel(self, order_id: int) -> dict:
        order = services.cancel_order(customer_id=self.customer_id, order_id=order_id, reply_channel=self.channel_name)
        return order_payload(selectors.customer_order(self.customer_id, order.pk), self.language)

    def _reschedule(self, order_id: int, pickup_at: datetime) -> dict:
        order = services.reschedule_order(
            customer_id=self.customer_id, order_id=order_id, pickup_at=pickup_at, reply_channel=self.channel_name
        )
        return order_payload(selectors.customer_order(self.customer_id, order.pk), self.language)

    # Events from the channel layer, one handler per type.
    async def pickup_alert(self, event):
        await self.send_json({"type": "alert", "alert": event["alert"]})

    async def order_updated(self, event):
        if event.get("except_channel") == self.channel_name:
            return  # this tab asked for the change and has its reply already
        await self.send_json({"type": "order.updated", "order": event["order"]})


# Close code for a kitchen socket without a login allowed to see the kitchen page.
CLOSE_NOT_STAFF = 4403


class KitchenConsumer(JsonConsumer):
    """The staff's live kitchen screen: told when any order changes, then re-reads the board."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(may_watch_kitchen)(user):
            await self.close(code=CLOSE_NOT_STAFF)  # refused before the handshake completes
            return
        alert_timers.start()
        await memberships.join(STAFF_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "joined", False):
            await memberships.leave(STAFF_GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        request_id = None
        try:
            content = parse_message(text_data, settings.PICKUP_MAX_MESSAGE_BYTES)
            request_id = content.get("request_id")
            if content.get("type") != "ping":
                raise BadMessage("unknown_type", _("Unknown message type."), field="type")
        except BadMessage as error:
            self.log_once_a_minute(logging.INFO, "bad message on the kitchen socket: %s", error.code)
            await self.send_json({"type": "error", "request_id": request_id, **error.as_dict()})
            return
        await self.send_json({"type": "pong", "request_id": request_id})

    async def kitchen_changed(self, event):
        await self.send_json({"type": "kitchen.changed", "event": event["event"], "order_ids": event["order_ids"]})
