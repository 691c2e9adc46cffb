"""When an order can be picked up: opening hours, notice, days ahead, slots, capacity.

Opening hours are wall-clock times in the restaurant's zone. Each day's
opening windows are turned into real instants first, then cut into slots of
``slot_minutes`` real minutes, so a day with a daylight-saving change simply
has fewer or more slots. Everything is compared in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, reduce
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import islice
from operator import or_

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q
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


def slots_of_day(restaurant: Restaurant, day: date) -> list[Slot]:
    return list(_day_grid(restaurant, day).slots)


@dataclass(frozen=True)
class _DayGrid:
    """A day's slots (or those still to come), the set of their starts to count full ones
    against, and the first and last start."""
    slots: tuple[Slot, ...]
    starts: frozenset[datetime]
    first: datetime | None
    last: datetime | None

    @classmethod
    def of(cls, slots: tuple[Slot, ...]) -> _DayGrid:
        starts = [slot.start for slot in slots]
        return cls(slots, frozenset(starts), min(starts, default=None), max(starts, default=None))


_NO_SLOTS = _DayGrid.of(())


def _day_grid(restaurant: Restaurant, day: date) -> _DayGrid:
    return _grid(tuple(opening_windows(restaurant, day)), restaurant.slot_minutes)


@lru_cache(maxsize=64)
def _grid(windows: tuple[tuple[datetime, datetime], ...], slot_minutes: int) -> _DayGrid:
    """Cached: every order placed checks its day's slots (a few hundred of them), and
    the picker looks at a week of days on every page load."""
    return _DayGrid.of(_cut_into_slots(windows, slot_minutes))


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


# ---------------------------------------------------------------- the picker

@dataclass(frozen=True)
class Offer:
    start: datetime
    remaining: int


def _still_to_come(grid: _DayGrid, now: datetime, earliest: datetime) -> _DayGrid:
    """The slots of a day a customer may still choose: from the minimum notice on, not begun."""
    if grid.last is None or grid.last < earliest or grid.last <= now:
        return _NO_SLOTS
    if grid.first >= earliest and grid.first > now:
        return grid  # the whole day, as cached
    return _DayGrid.of(tuple(slot for slot in grid.slots if slot.start >= earliest and slot.start > now))


def _days_ahead(restaurant: Restaurant, now: datetime, zone: tzinfo) -> dict[date, _DayGrid]:
    """Each day from today to ``max_days_ahead`` that still has slots to choose, with those slots."""
    earliest = now + timedelta(minutes=restaurant.min_notice_minutes)
    today = timezone.localtime(now, zone).date()
    days: dict[date, _DayGrid] = {}
    for offset in range(restaurant.max_days_ahead + 1):
        day = today + timedelta(days=offset)
        still_to_come = _still_to_come(_day_grid(restaurant, day), now, earliest)
        if still_to_come.slots:
            days[day] = still_to_come
    return days


def offered_times(restaurant: Restaurant, *, now: datetime | None = None) -> list[Offer]:
    """Every slot start a customer may choose now, with the places left; full slots are left out.

    All the days ahead, thousands of offers: the picker reads less (``picker_offers``).
    """
    now = now or timezone.now()
    days_ahead = _days_ahead(restaurant, now, timezone.get_current_timezone())
    candidates = [slot for day in days_ahead.values() for slot in day.slots]
    if not candidates:
        return []
    taken = dict(
        PickupSlot.objects.filter(start__gte=candidates[0].start, start__lte=candidates[-1].start).values_list("start", "taken")
    )
    offers = []
    for slot in candidates:
        remaining = restaurant.slot_capacity - taken.get(slot.start, 0)
        if remaining > 0:
            offers.append(Offer(slot.start, remaining))
    return offers


@dataclass(frozen=True)
class PickerOffers:
    """The days that still have a time with room, the earliest such time, and one day's times."""
    days: list[date]
    earliest: Offer | None
    day: date | None
    offers: list[Offer]


def picker_offers(
    restaurant: Restaurant, day: date | None = None, *, now: datetime | None = None, zone: tzinfo | None = None,
    limit: int | None = None,
) -> PickerOffers:
    """``offered_times`` grouped by day, as the picker shows them: every day with room, but the
    offers of ``day`` alone (the first day with room when ``day`` has none), at most ``limit``.

    Only the places of that day (and of the first day with room, for the
    earliest time) are read; the other days' are counted (``_days_with_room``).
    """
    now = now or timezone.now()
    days_ahead = _days_ahead(restaurant, now, zone or timezone.get_current_timezone())
    capacity = restaurant.slot_capacity
    days = _days_with_room(days_ahead, capacity)
    if not days:
        return PickerOffers([], None, None, [])
    day = day if day in days else days[0]
    taken = _places_taken([days_ahead[each] for each in {day, days[0]}])

    def open_slots(of: date, at_most: int | None) -> list[Slot]:
        return list(islice((slot for slot in days_ahead[of].slots if taken.get(slot.start, 0) < capacity), at_most))

    shown = open_slots(day, limit)
    # A day may have filled between the count and the reading of its places: then it shows no times.
    first = next(iter(shown if day == days[0] else open_slots(days[0], 1)), None)
    return PickerOffers(
        days, Offer(first.start, capacity - taken.get(first.start, 0)) if first else None, day,
        [Offer(slot.start, capacity - taken.get(slot.start, 0)) for slot in shown],
    )


def _days_with_room(days_ahead: dict[date, _DayGrid], capacity: int) -> list[date]:
    """The days that have a start still to come that is not full.

    One query counts each day's full slots; a day has room when it has more
    starts than that. Rows off the slot grid (left by an older slot length)
    are counted too, so a day counted as full is checked start by start
    (rare: a day booked out, or nearly).
    """
    if not days_ahead:
        return []
    counts = _full_slots_per_day(list(days_ahead.values()), capacity)
    unsure = [day for (day, grid), count in zip(days_ahead.items(), counts) if count >= len(grid.starts)]
    full_starts = set()
    if unsure:
        full = PickupSlot.objects.filter(_within(*(days_ahead[day] for day in unsure)), taken__gte=capacity)
        full_starts = set(full.values_list("start", flat=True))
    return [day for day, grid in days_ahead.items() if day not in unsure or not grid.starts <= full_starts]


# Raw SQL as in take_places: the ORM took longer to build this query (a count per day) than the database to answer it.
_COUNT_FULL_OF_DAY = "SUM(CASE WHEN start BETWEEN %s AND %s THEN 1 ELSE 0 END)"


def _full_slots_per_day(grids: list[_DayGrid], capacity: int) -> list[int]:
    """How many rows are full from each day's first start to its last, in one query."""
    adapt = connection.ops.adapt_datetimefield_value
    sql = (
        f"SELECT {', '.join([_COUNT_FULL_OF_DAY] * len(grids))} FROM {PickupSlot._meta.db_table} "
        "WHERE taken >= %s AND start BETWEEN %s AND %s"
    )
    bounds = [adapt(moment) for grid in grids for moment in (grid.first, grid.last)]
    span = [adapt(min(grid.first for grid in grids)), adapt(max(grid.last for grid in grids))]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*bounds, capacity, *span])
        return [count or 0 for count in cursor.fetchone()]


def _within(*grids: _DayGrid) -> Q:
    """Rows from the first start to the last of these days."""
    return reduce(or_, (Q(start__range=(grid.first, grid.last)) for grid in grids))


def _places_taken(grids: list[_DayGrid]) -> dict[datetime, int]:
    return dict(PickupSlot.objects.filter(_within(*grids)).values_list("start", "taken"))
