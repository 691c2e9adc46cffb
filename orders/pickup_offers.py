"""Which pickup times customers may still choose, with the places left: every one of
them (``offered_times``), or what the picker shows, one day at a time (``picker_offers``).

The slots themselves, their rules and their places are ``pickup_times``;
this module only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import reduce
from itertools import islice
from operator import or_

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from orders.models import PickupSlot, Restaurant
from orders.pickup_times import NO_SLOTS, DayGrid, Slot, day_grid

@dataclass(frozen=True)
class Offer:
    start: datetime
    remaining: int


def _still_to_come(grid: DayGrid, now: datetime, earliest: datetime) -> DayGrid:
    """The slots of a day a customer may still choose: from the minimum notice on, not begun."""
    if grid.last is None or grid.last < earliest or grid.last <= now:
        return NO_SLOTS
    if grid.first >= earliest and grid.first > now:
        return grid  # the whole day, as cached
    return DayGrid.of(tuple(slot for slot in grid.slots if slot.start >= earliest and slot.start > now))


def _days_ahead(restaurant: Restaurant, now: datetime, zone: tzinfo) -> dict[date, DayGrid]:
    """Each day from today to ``max_days_ahead`` that still has slots to choose, with those slots."""
    earliest = now + timedelta(minutes=restaurant.min_notice_minutes)
    today = timezone.localtime(now, zone).date()
    days: dict[date, DayGrid] = {}
    for offset in range(restaurant.max_days_ahead + 1):
        day = today + timedelta(days=offset)
        still_to_come = _still_to_come(day_grid(restaurant, day), now, earliest)
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


def _days_with_room(days_ahead: dict[date, DayGrid], capacity: int) -> list[date]:
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


def _full_slots_per_day(grids: list[DayGrid], capacity: int) -> list[int]:
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


def _within(*grids: DayGrid) -> Q:
    """Rows from the first start to the last of these days."""
    return reduce(or_, (Q(start__range=(grid.first, grid.last)) for grid in grids))


def _places_taken(grids: list[DayGrid]) -> dict[datetime, int]:
    return dict(PickupSlot.objects.filter(_within(*grids)).values_list("start", "taken"))
