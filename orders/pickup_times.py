"""When an order can be picked up: opening hours, notice, days ahead, slots, capacity.

Opening hours are wall-clock times in the restaurant's zone. Each day's
opening windows are turned into real instants first, then cut into slots of
``slot_minutes`` real minutes, so a day with a daylight-saving change simply
has fewer or more slots. Everything is compared in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, date, datetime, time, timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orders.models import PickupSlot, Restaurant
from pickup.errors import PickupError


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime


def _instant(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=timezone.get_default_timezone())


def opening_windows(restaurant: Restaurant, day: date) -> list[tuple[datetime, datetime]]:
    """The restaurant's open periods on a local calendar day, as aware instants."""
    windows = []
    for hours in restaurant.opening_hours.all():
        if hours.weekday != day.weekday():
            continue
        opens = _instant(day, hours.opens)
        closes = _instant(day + timedelta(days=1), time(0)) if hours.closes == time(0) else _instant(day, hours.closes)
        windows.append((opens, closes))
    return sorted(windows)


def slots_of_day(restaurant: Restaurant, day: date) -> tuple[Slot, ...]:
    return day_grid(restaurant, day).slots


@dataclass(frozen=True)
class DayGrid:
    """A day's slots (or those still to come), the set of their starts to count full ones
    against, and the first and last start."""
    slots: tuple[Slot, ...]
    starts: frozenset[datetime]
    first: datetime | None
    last: datetime | None

    @classmethod
    def of(cls, slots: tuple[Slot, ...]) -> DayGrid:
        starts = [slot.start for slot in slots]
        return cls(slots, frozenset(starts), min(starts, default=None), max(starts, default=None))


NO_SLOTS = DayGrid.of(())


def day_grid(restaurant: Restaurant, day: date) -> DayGrid:
    """A day's slots, cut once for its opening hours and slot length (``_grid``)."""
    return _grid(tuple(opening_windows(restaurant, day)), restaurant.slot_minutes)


@lru_cache(maxsize=64)
def _grid(windows: tuple[tuple[datetime, datetime], ...], slot_minutes: int) -> DayGrid:
    """Cached: every order placed checks its day's slots (a few hundred of them), and
    the picker looks at a week of days on every page load."""
    return DayGrid.of(_cut_into_slots(windows, slot_minutes))


def _cut_into_slots(windows: tuple[tuple[datetime, datetime], ...], slot_minutes: int) -> tuple[Slot, ...]:
    length = timedelta(minutes=slot_minutes)
    slots = []
    for opens, closes in windows:
        start = opens.astimezone(UTC)
        closes = closes.astimezone(UTC)
        while start < closes:
            slots.append(Slot(start, min(start + length, closes)))
            start += length
    return tuple(slots)


def slot_at(restaurant: Restaurant, pickup_at: datetime) -> Slot | None:
    """The slot a pickup time falls in, or None when the restaurant is closed then."""
    day = timezone.localtime(pickup_at).date()
    for slot in slots_of_day(restaurant, day):
        if slot.start <= pickup_at < slot.end:
            return slot
    return None


def check_pickup_time(restaurant: Restaurant, pickup_at: datetime, *, now: datetime | None = None) -> Slot:
    """The slot for a pickup time the restaurant can honour; otherwise PickupError saying why."""
    now = now or timezone.now()
    if pickup_at <= now:
        raise PickupError("pickup_time_past", _("That pickup time has already passed."), field="pickup_at")
    if pickup_at < now + timedelta(minutes=restaurant.min_notice_minutes):
        raise PickupError(
            "too_soon",
            _("The kitchen needs at least %(minutes)d minutes' notice.") % {"minutes": restaurant.min_notice_minutes},
            field="pickup_at",
        )
    days_ahead = (timezone.localtime(pickup_at).date() - timezone.localtime(now).date()).days
    if days_ahead > restaurant.max_days_ahead:
        raise PickupError(
            "too_far_ahead",
            _("Orders can be placed at most %(days)d days ahead.") % {"days": restaurant.max_days_ahead},
            field="pickup_at",
        )
    slot = slot_at(restaurant, pickup_at)
    if slot is None:
        raise PickupError("closed_then", _("We are closed at that time."), field="pickup_at")
    return slot


# ---------------------------------------------------------------- capacity

_TAKE_PLACES_SQL = (
    f"UPDATE {PickupSlot._meta.db_table} SET taken = taken + %s "
    "WHERE start = %s AND taken + %s <= %s RETURNING id, taken"
)


def take_places(restaurant: Restaurant, slot: Slot, count: int = 1) -> PickupSlot:
    """Take ``count`` places in a slot, or refuse with slot_full and take none.

    Call inside the order's transaction. The conditional UPDATE is the lock:
    concurrent orders for the last places queue on the row and the database
    re-checks ``taken`` for each.
    """
    start = connection.ops.adapt_datetimefield_value(slot.start)
    with connection.cursor() as cursor:
        for _attempt in range(2):
            cursor.execute(_TAKE_PLACES_SQL, [count, start, count, restaurant.slot_capacity])
            row = cursor.fetchone()
            if row:
                transaction.on_commit(places_changed, robust=True)
                return PickupSlot(pk=row[0], start=slot.start, taken=row[1])
            _slot, created = PickupSlot.objects.get_or_create(start=slot.start)
            if not created and restaurant.slot_capacity < _slot.taken + count:
                break
    raise PickupError("slot_full", _("That pickup time is fully booked; please choose another."), field="pickup_at")


def take_place(restaurant: Restaurant, slot: Slot) -> PickupSlot:
    return take_places(restaurant, slot, 1)


def release_place(slot_id: int | None) -> None:
    if slot_id is not None and PickupSlot.objects.filter(pk=slot_id, taken__gt=0).update(taken=F("taken") - 1):
        transaction.on_commit(places_changed, robust=True)


# The offered times are cached per version of the slots' places (orders/views.py).
_PLACES_VERSION = "pickup-slot-places-version"


def places_version() -> int:
    """A number that changes whenever a place in any slot is taken or given back."""
    return cache.get_or_set(_PLACES_VERSION, 0, timeout=None)


def places_changed() -> None:
    try:
        cache.incr(_PLACES_VERSION)
    except ValueError:  # not there yet (a new or flushed Redis): any new value will do
        cache.set(_PLACES_VERSION, 1, timeout=None)
