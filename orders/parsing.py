"""Turning a client's WebSocket message into typed values: the one parser.

A frame becomes a JSON object (``parse_message``), and the object one typed
request per message type of docs/protocol.md (``parse_request``); the
consumers hand those values to the services, which never see raw JSON.
Only the shape is checked here (types, presence, ranges and sizes a client
could abuse), so that no value reaches the database or the date library
that could make them fail; what is allowed for the restaurant is decided in
``orders.services``. Every refusal is a ``BadMessage``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from pickup.errors import PickupError

MAX_LINES = 20
# Database ids are signed 64-bit; a larger number cannot name a row and
# would make the database driver fail instead of finding nothing.
MAX_ID = 2**63 - 1
# Far beyond any restaurant's horizon, yet far from the calendar's end, where
# converting between zones or adding a slot's length overflows.
EARLIEST_PICKUP = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_PICKUP = datetime(9000, 1, 1, tzinfo=UTC)


class BadMessage(PickupError):
    """A message the client built wrongly (as opposed to a refusal by the restaurant's rules)."""


@dataclass(frozen=True)
class PlaceOrder:
    lines: list[tuple[int, int]]  # (menu item id, quantity)
    pickup_at: datetime


@dataclass(frozen=True)
class CancelOrder:
    order_id: int


@dataclass(frozen=True)
class RescheduleOrder:
    order_id: int
    pickup_at: datetime


@dataclass(frozen=True)
class AcknowledgeAlert:
    alert_id: int


@dataclass(frozen=True)
class Ping:
    pass


Request = PlaceOrder | CancelOrder | RescheduleOrder | AcknowledgeAlert | Ping


def parse_message(text_data: str | None, limit: int) -> dict:
    """A text frame of at most ``limit`` bytes holding a JSON object, with an optional short request_id."""
    if not text_data:  # a binary frame, or empty text
        raise BadMessage("invalid_json", _("Send text frames containing JSON."))
    if len(text_data) > limit or len(text_data.encode()) > limit:
        raise BadMessage("message_too_large", _("Messages are limited to %(limit)d bytes.") % {"limit": limit})
    try:
        content = json.loads(text_data)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise BadMessage("invalid_json", _("That message is not valid JSON.")) from None
    if not isinstance(content, dict):
        raise BadMessage("invalid_message", _("A message must be a JSON object with a type."))
    request_id = content.get("request_id")
    if request_id is not None and not (isinstance(request_id, str) and len(request_id) <= 64):
        raise BadMessage("invalid_message", _("request_id must be a string of at most 64 characters."))
    return content


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


def _integer(value: object, code: str, message, field: str, *, minimum: int = -MAX_ID, maximum: int = MAX_ID) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise BadMessage(code, message, field=field)
    return value


def parse_order_id(value: object) -> int:
    return _integer(value, "order_not_found", _("There is no such order for you."), "order_id", minimum=1)


def parse_alert_id(value: object) -> int:
    return _integer(value, "invalid_alert_id", _("alert_id must be an integer."), "alert_id", minimum=1)


def parse_pickup_time(value: object) -> datetime:
    """ISO 8601; a time without offset is read in the restaurant's time zone."""
    if not isinstance(value, str) or len(value) > 40:
        raise BadMessage("invalid_pickup_time", _("Choose a pickup time."), field="pickup_at")
    try:
        parsed = parse_datetime(value.strip())
        if parsed is not None and timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
        if parsed is not None and not EARLIEST_PICKUP <= parsed <= LATEST_PICKUP:
            parsed = None
    except (ValueError, OverflowError):  # OverflowError: a year-1 time moved to UTC
        parsed = None
    if parsed is None:
        raise BadMessage("invalid_pickup_time", _("That pickup time could not be read."), field="pickup_at")
    return parsed


def parse_place_order(content: dict) -> PlaceOrder:
    items = content.get("items")
    if not isinstance(items, list) or not items:
        raise BadMessage("no_items", _("Choose at least one item."), field="items")
    if len(items) > MAX_LINES:
        raise BadMessage("too_many_items", _("An order can have at most %(n)d lines.") % {"n": MAX_LINES}, field="items")
    lines = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadMessage("invalid_item", _("Each item needs a menu_item and a quantity."), field=f"items[{index}]")
        menu_item = _integer(
            item.get("menu_item"), "unknown_item", _("That item is not on the menu."), f"items[{index}].menu_item", minimum=1
        )
        # Summed over equal lines in the services, still far from overflowing anything.
        quantity = _integer(
            item.get("quantity"), "invalid_quantity", _("Quantity must be a whole number."), f"items[{index}].quantity",
            minimum=-(2**31), maximum=2**31,
        )
        lines.append((menu_item, quantity))
    return PlaceOrder(lines=lines, pickup_at=parse_pickup_time(content.get("pickup_at")))


def parse_cancel_order(content: dict) -> CancelOrder:
    return CancelOrder(order_id=parse_order_id(content.get("order_id")))


def parse_reschedule_order(content: dict) -> RescheduleOrder:
    return RescheduleOrder(
        order_id=parse_order_id(content.get("order_id")), pickup_at=parse_pickup_time(content.get("pickup_at"))
    )


def parse_acknowledge_alert(content: dict) -> AcknowledgeAlert:
    return AcknowledgeAlert(alert_id=parse_alert_id(content.get("alert_id")))


# Every message a client may send (docs/protocol.md, "Client → server"), and its parser.
REQUESTS: dict[str, Callable[[dict], Request]] = {
    "order.place": parse_place_order,
    "order.cancel": parse_cancel_order,
    "order.reschedule": parse_reschedule_order,
    "alert.ack": parse_acknowledge_alert,
    "ping": lambda content: Ping(),
}


def parse_request(content: dict, accepted: Collection[str]) -> Request:
    """The typed request a message holds, if its ``type`` is one of ``accepted`` (a socket's handlers)."""
    kind = content.get("type")
    if not isinstance(kind, str) or kind not in accepted or kind not in REQUESTS:
        raise BadMessage("unknown_type", _("Unknown message type."), field="type")
    return REQUESTS[kind](content)
