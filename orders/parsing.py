"""Turning a client's order message into typed values.

Only the shape is checked here (types, presence, sizes a client could abuse);
what is allowed for the restaurant is decided in ``orders.services``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from pickup.errors import PickupError

MAX_LINES = 20


@dataclass(frozen=True)
class OrderRequest:
    lines: list[tuple[int, int]]  # (menu item id, quantity)
    pickup_at: datetime


def _integer(value: object, code: str, message, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PickupError(code, message, field=field)
    return value


def parse_pickup_time(value: object) -> datetime:
    """ISO 8601; a time without offset is read in the restaurant's time zone."""
    if not isinstance(value, str) or len(value) > 40:
        raise PickupError("invalid_pickup_time", _("Choose a pickup time."), field="pickup_at")
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise PickupError("invalid_pickup_time", _("That pickup time could not be read."), field="pickup_at")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
    return parsed


def parse_order_request(content: dict) -> OrderRequest:
    items = content.get("items")
    if not isinstance(items, list) or not items:
        raise PickupError("no_items", _("Choose at least one item."), field="items")
    if len(items) > MAX_LINES:
        raise PickupError("too_many_items", _("An order can have at most %(n)d lines.") % {"n": MAX_LINES}, field="items")
    lines = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise PickupError("invalid_item", _("Each item needs a menu_item and a quantity."), field=f"items[{index}]")
        menu_item = _integer(
            item.get("menu_item"), "unknown_item", _("That item is not on the menu."), f"items[{index}].menu_item"
        )
        quantity = _integer(
            item.get("quantity"), "invalid_quantity", _("Quantity must be a whole number."), f"items[{index}].quantity"
        )
        lines.append((menu_item, quantity))
    return OrderRequest(lines=lines, pickup_at=parse_pickup_time(content.get("pickup_at")))
