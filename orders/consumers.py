"""The customer's and the kitchen's WebSockets.

Transport only: each client message type has one handler (``handlers``),
which gets the typed request ``orders.parsing`` read, calls one service and
turns the result into a reply (a PickupError into an ``error``, in
``orders.sockets``). Channel-layer events have one handler each too, named
after their type. docs/protocol.md describes every message.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import prefetch_related_objects
from django.utils import translation
from django.utils.translation import gettext as _

from notifications import acks
from notifications import services as alert_services
from notifications.memberships import memberships
from notifications.sender import STAFF_GROUP, customer_group
from notifications.timers import alert_timers
from orders import boards, selectors, services
from orders.customers import customer_id_from_scope, language_from_scope
from orders.kitchen_views import may_watch_kitchen
from orders.metrics import board_sockets, customer_sockets, kitchen_sockets
from orders.parsing import AcknowledgeAlert, CancelOrder, PlaceOrder, RescheduleOrder
from orders.payloads import order_payload
from orders.socket_limits import CLOSE_FLOODING, message_budget, open_sockets
from orders.sockets import JsonSocket
from pickup.addresses import client_address_from_scope
from pickup.batching import Batcher
from pickup.errors import PickupError

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


# Orders arriving on any socket while others are being written join the next
# write: one transaction for many customers (pickup/batching.py).
order_placing = Batcher(database_sync_to_async(_place_many))

def _read_session_states(sockets: list[tuple[str, str]]) -> list[tuple[list[dict], list[dict]]]:
    """(orders, missed alerts) for each (customer, language) of sockets connecting together."""
    customer_ids = sorted({customer_id for customer_id, _language in sockets})
    latest = selectors.latest_orders_of(customer_ids)
    missed = alert_services.alerts_to_replay(customer_ids)
    return [
        ([order_payload(order, language) for order in latest[customer_id]], missed[customer_id])
        for customer_id, language in sockets
    ]


# Pages reconnecting together (a web server's restart sends them all to
# another) read their state in a few queries, not two each on the one
# database thread.
session_reading = Batcher(database_sync_to_async(_read_session_states))


class CustomerConsumer(JsonSocket):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ack_tasks: set[asyncio.Task] = set()

    async def connect(self):
        # None for a visitor who has not ordered: their page's socket is
        # accepted and hears nothing until the page starts a session and reconnects.
        self.customer_id = customer_id_from_scope(self.scope)
        self.language = language_from_scope(self.scope, settings.LANGUAGE_CODE)
        self.address = client_address_from_scope(self.scope)
        if not open_sockets.admit(self.customer_id, self.address):
            with translation.override(self.language):
                message = _("Too many open pages for this customer or network. Close some and reload.")
                await self.refuse("too_many_connections", message, CLOSE_FLOODING)
            return
        self.admitted = True
        customer_sockets.inc()
        self.budget = message_budget()
        if not self.customer_id:
            await self.accept()
            await self.send_json({"type": "session.ready", "orders": []})
            return
        if not await self.join_or_turn_away([customer_group(self.customer_id)]):
            self.release()  # turned away: it holds no place, whether or not daphne says disconnect
            return
        self.group = customer_group(self.customer_id)
        alert_timers.customer_arrived(self.customer_id)  # their alerts' timers live where their sockets are
        await self.accept()
        orders, missed = await session_reading.submit((self.customer_id, self.language))
        await self.send_json({"type": "session.ready", "orders": orders})
        for alert in missed:
            await self.send_json({"type": "alert", "alert": alert, "replayed": True})

    async def refuse(self, code: str, message: str, close_code: int):
        """Turn a socket away with a reason it can read, then close it."""
        await self.accept()
        await self.send_json({"type": "error", "code": code, "message": message})
        await self.close(code=close_code)

    async def disconnect(self, code):
        for task in self.ack_tasks:
            task.cancel()
        self.release()
        if getattr(self, "group", None):
            await memberships.leave(self.group, self.channel_name)
            alert_timers.customer_left(self.customer_id)

    def release(self) -> None:
        """Give back the socket's place under the caps and in the count, once."""
        if getattr(self, "admitted", False):
            self.admitted = False
            open_sockets.release(self.customer_id, self.address)
            customer_sockets.dec()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # The budget is spent before the frame is parsed: a flood costs no JSON parsing.
        if self.budget.take():
            await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)
        else:
            await self.refuse_flood()

    async def refuse_flood(self):
        """Over the socket's message budget: say so once per streak, close a socket that keeps on."""
        if self.budget.flooding:
            await self.close(code=CLOSE_FLOODING)
        elif self.budget.refused == 1:
            retry_after = self.budget.retry_after()
            with translation.override(self.language):
                message = _("Too many messages; slow down for %(seconds)d seconds.") % {"seconds": retry_after}
            await self.send_json({"type": "error", "code": "rate_limited", "message": message, "retry_after": retry_after})

    def describe(self) -> str:
        return f"customer {self.customer_id}" if self.customer_id else "visitor"

    def require_customer(self) -> None:
        """A visitor's socket may ping, nothing more, until the page starts a session."""
        if not self.customer_id:
            raise PickupError("no_session", _("Open the ordering page first to start a session."))

    # Client messages, one handler per type (the table follows them).
    async def place_order(self, request: PlaceOrder, request_id: str | None):
        self.require_customer()
        new_order = services.NewOrder(
            self.customer_id, request.lines, request.pickup_at, self.language, self.channel_name, self.address
        )
        order = await order_placing.submit(new_order)
        message = _("Payment successful, please wait for your pickup alert.")
        await self.send_json({"type": "order.accepted", "request_id": request_id, "order": order, "message": message})

    async def cancel_order(self, request: CancelOrder, request_id: str | None):
        self.require_customer()
        order = await database_sync_to_async(self._cancel)(request.order_id)
        await self.send_json({"type": "order.updated", "request_id": request_id, "order": order})

    async def reschedule_order(self, request: RescheduleOrder, request_id: str | None):
        self.require_customer()
        order = await database_sync_to_async(self._reschedule)(request.order_id, request.pickup_at)
        await self.send_json({"type": "order.updated", "request_id": request_id, "order": order})

    async def acknowledge_alert(self, request: AcknowledgeAlert, request_id: str | None):
        self.require_customer()
        # Answered from a task: the batcher holds an ack up to 20 ms, and the
        # customer's next alert must not wait behind it.
        task = asyncio.create_task(self._acknowledge(request.alert_id, request_id))
        self.ack_tasks.add(task)
        task.add_done_callback(self.ack_tasks.discard)

    handlers = {
        "order.place": place_order,
        "order.cancel": cancel_order,
        "order.reschedule": reschedule_order,
        "alert.ack": acknowledge_alert,
        "ping": JsonSocket.answer_ping,
    }

    async def _acknowledge(self, alert_id: int, request_id: str | None):
        try:
            await acks.acknowledge(customer_id=self.customer_id, alert_id=alert_id)
        except Exception as error:
            await self.send_error(request_id, error)
            return
        await self.send_json({"type": "alert.acked", "request_id": request_id, "alert_id": alert_id})

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

    async def alert_scheduled(self, event):
        """Another process scheduled an alert of this customer: this process's timer pushes it."""
        alert_timers.arm_here(event["alert_id"], datetime.fromisoformat(event["due_at"]), self.customer_id)

    async def order_updated(self, event):
        if event.get("except_channel") == self.channel_name:
            return  # this tab asked for the change and has its reply already
        await self.send_json({"type": "order.updated", "order": event["order"]})


# Close code for a kitchen socket without a login allowed to see the kitchen page.
CLOSE_NOT_STAFF = 4403


class KitchenConsumer(JsonSocket):
    """The staff's live kitchen screen: told when any order changes, then re-reads the board."""

    handlers = {"ping": JsonSocket.answer_ping}

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(may_watch_kitchen)(user):
            await self.close(code=CLOSE_NOT_STAFF)  # refused before the handshake completes
            return
        self.language = language_from_scope(self.scope, settings.LANGUAGE_CODE)
        if not await self.join_or_turn_away([STAFF_GROUP]):
            return
        self.joined = True
        kitchen_sockets.inc()
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "joined", False):
            kitchen_sockets.dec()
            await memberships.leave(STAFF_GROUP, self.channel_name)

    def describe(self) -> str:
        return "the kitchen socket"

    async def kitchen_changed(self, event):
        await self.send_json({"type": "kitchen.changed", "event": event["event"], "order_ids": event["order_ids"]})


class BoardConsumer(JsonSocket):
    """The counter screen's socket: opened by a board link's token, sent codes and states only.

    It hears the kitchen's "something changed" and answers with the whole
    board (``board.state``, from the database), read again on every change,
    so a lost message is mended by the next one. A link revoked in the admin
    closes its boards with CLOSE_BOARD_REVOKED, also when that message was lost.
    """

    handlers = {"ping": JsonSocket.answer_ping}

    async def connect(self):
        self.token = self.scope["url_route"]["kwargs"]["token"]
        link = await database_sync_to_async(boards.find_link)(self.token)
        if link is None or link.is_revoked:
            await self.accept()  # accepted first, so the page reads the close code
            await self.close(code=boards.CLOSE_BOARD_UNKNOWN if link is None else boards.CLOSE_BOARD_REVOKED)
            return
        self.refresh_task: asyncio.Task | None = None
        self.stale = False
        groups = [STAFF_GROUP, boards.board_group(link.pk)]
        if not await self.join_or_turn_away(groups):
            return
        self.groups_joined = groups
        board_sockets.inc()
        await self.accept()
        await self.send_board()

    async def disconnect(self, code):
        if getattr(self, "groups_joined", None):
            board_sockets.dec()
        if getattr(self, "refresh_task", None):
            self.refresh_task.cancel()
        for group in getattr(self, "groups_joined", []):
            await memberships.leave(group, self.channel_name)

    def describe(self) -> str:
        return "a counter board"

    async def send_board(self):
        board = await database_sync_to_async(boards.board_state)(self.token)
        if board is None:
            await self.close(code=boards.CLOSE_BOARD_REVOKED)
        else:
            await self.send_json({"type": "board.state", "board": board})

    async def refresh(self):
        """Read the board again until no change came in meanwhile: a burst of orders costs a few reads."""
        while self.stale:
            self.stale = False
            await self.send_board()

    async def kitchen_changed(self, event):
        self.stale = True
        if self.refresh_task is None or self.refresh_task.done():
            self.refresh_task = asyncio.create_task(self.refresh())

    async def board_revoked(self, event):
        await self.close(code=boards.CLOSE_BOARD_REVOKED)
