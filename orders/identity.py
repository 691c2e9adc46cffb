"""What the customer pages say about the restaurant: its name, address, where to collect, opening hours.

Staff edit all of it in the admin (Restaurant and its OpeningHours), in
English and Simplified Chinese; a field left empty in Chinese falls back to
the English one.
"""

from __future__ import annotations

from datetime import time

from django.utils.translation import gettext as _

from orders.dates import WEEKDAYS
from orders.models import Restaurant


def _in_language(restaurant: Restaurant, field: str, language: str) -> str:
    if (language or "").lower().startswith("zh"):
        return getattr(restaurant, f"{field}_zh_hans") or getattr(restaurant, field)
    return getattr(restaurant, field)


def _hours_of_day(restaurant: Restaurant, weekday: int) -> str:
    """"07:00–10:00, 17:00–21:00", "Open 24 hours" or "Closed"."""
    periods = sorted((hours.opens, hours.closes) for hours in restaurant.opening_hours.all() if hours.weekday == weekday)
    if not periods:
        return _("Closed")
    if periods == [(time(0), time(0))]:
        return _("Open 24 hours")
    return ", ".join(f"{opens:%H:%M}–{'24:00' if closes == time(0) else format(closes, '%H:%M')}" for opens, closes in periods)


def opening_hours(restaurant: Restaurant) -> list[tuple[str, str]]:
    """(days, hours) rows; neighbouring days with the same hours share a row ("Mon–Fri")."""
    rows: list[tuple[int, int, str]] = []
    for weekday in range(7):
        hours = _hours_of_day(restaurant, weekday)
        if rows and rows[-1][2] == hours:
            rows[-1] = (rows[-1][0], weekday, hours)
        else:
            rows.append((weekday, weekday, hours))
    if len(rows) == 1:
        return [(_("Every day"), rows[0][2])]
    return [
        (str(WEEKDAYS[first]) if first == last else _("%(first)s–%(last)s") % {"first": WEEKDAYS[first], "last": WEEKDAYS[last]}, hours)
        for first, last, hours in rows
    ]


def restaurant_card(restaurant: Restaurant, language: str) -> dict:
    return {
        "name": _in_language(restaurant, "name", language),
        "address": _in_language(restaurant, "address", language),
        "counter": _in_language(restaurant, "counter", language),
        "hours": opening_hours(restaurant),
    }
