"""The picker shows exactly what working out every slot of every day ahead would show.

It works out only the chosen day's times and decides "this day has room"
for the others from the full slots alone; here it is compared with the long
way round (every slot of the horizon, each slot's places looked up) on the
edges: full days, notice past midnight, closed days, capacity and slot
length changed under existing orders, the last day, three time zones.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from orders import pickup_times
from orders.models import OpeningHours, PickupSlot, Restaurant
from orders.picker import picker_times

# (the restaurant's zone, "today"): Shanghai's mornings are the evening before in UTC;
# in Berlin the horizon holds the night the clocks go back (2026-10-25).
PLACES = [("Asia/Shanghai", date(2026, 12, 1)), ("UTC", date(2026, 12, 1)), ("Europe/Berlin", date(2026, 10, 24))]
HOURS = [(time(0, 0), time(3, 30)), (time(6, 30), time(10, 0)), (time(17, 0), time(0, 0))]


@pytest.fixture(params=PLACES, ids=[zone for zone, _today in PLACES])
def place(request, settings, db):
    settings.TIME_ZONE, today = request.param
    restaurant = Restaurant.current()
    restaurant.min_notice_minutes = 15
    restaurant.max_days_ahead = 3
    restaurant.slot_minutes = 5
    restaurant.slot_capacity = 2
    restaurant.save()
    OpeningHours.objects.bulk_create(
        OpeningHours(restaurant=restaurant, weekday=weekday, opens=opens, closes=closes)
        for weekday in range(7) for opens, closes in HOURS
    )
    return ZoneInfo(settings.TIME_ZONE), today


def rules() -> Restaurant:
    Restaurant.forget_current()
    return Restaurant.current()


def change_rules(**changes) -> None:
    Restaurant.objects.filter(pk=rules().pk).update(**changes)


def take(starts, taken: int) -> None:
    PickupSlot.objects.bulk_create(
        [PickupSlot(start=start, taken=taken) for start in starts],
        update_conflicts=True, unique_fields=["start"], update_fields=["taken"],
    )


def starts_of(day: date, after: datetime | None = None) -> list[datetime]:
    return [slot.start for slot in pickup_times.slots_of_day(rules(), day) if after is None or slot.start >= after]


# Each situation sets the restaurant up on its "today" and says what time it is; its
# ``edge`` holds for the days with room worked out the long way (so it is the case it says).
SITUATIONS = {}


def situation(edge):
    def register(set_up):
        SITUATIONS[set_up.__name__] = (set_up, edge)
        return set_up
    return register


def days_later(today: date, days: int) -> date:
    return today + timedelta(days=days)


@situation(edge=lambda days, today: days == [today, days_later(today, 1), days_later(today, 2), days_later(today, 3)])
def nothing_taken(zone, today):
    return datetime.combine(today, time(7, 40), tzinfo=zone)


@situation(edge=lambda days, today: days == [today, days_later(today, 2), days_later(today, 3)])
def a_day_completely_full_and_a_few_times_today(zone, today):
    now = datetime.combine(today, time(7, 40), tzinfo=zone)
    take(starts_of(days_later(today, 1)), 2)
    take(starts_of(today, after=now)[:3], 2)
    take(starts_of(today, after=now)[3:5], 1)
    take(starts_of(today)[:10], 2)  # before the notice: count for nothing
    return now


@situation(edge=lambda days, today: days[0] == days_later(today, 1))
def every_time_left_today_full(zone, today):
    now = datetime.combine(today, time(21, 0), tzinfo=zone)
    take(starts_of(today, after=now), 2)
    take(starts_of(days_later(today, 1))[:4], 1)
    return now


@situation(edge=lambda days, today: days[0] == days_later(today, 1))
def notice_crosses_midnight(zone, today):
    change_rules(min_notice_minutes=45)
    take(starts_of(days_later(today, 1))[7:9], 2)  # 00:35 and 00:40: the earliest would be 00:35
    return datetime.combine(today, time(23, 50), tzinfo=zone)


@situation(edge=lambda days, today: days[0] == days_later(today, 2))
def notice_of_two_days(zone, today):
    change_rules(min_notice_minutes=2 * 24 * 60 + 20)
    return datetime.combine(today, time(8, 0), tzinfo=zone)


@situation(edge=lambda days, today: days == [days_later(today, 2), days_later(today, 3)])
def closed_tomorrow(zone, today):
    OpeningHours.objects.filter(weekday=days_later(today, 1).weekday()).delete()
    now = datetime.combine(today, time(18, 0), tzinfo=zone)
    take(starts_of(today, after=now), 3)
    return now


@situation(edge=lambda days, today: days == [days_later(today, 2), days_later(today, 3)])
def capacity_lowered_under_taken_places(zone, today):
    now = datetime.combine(today, time(7, 40), tzinfo=zone)
    take(starts_of(today, after=now), 2)
    take(starts_of(days_later(today, 1)), 3)  # more than the new capacity
    change_rules(slot_capacity=1)
    return now


@situation(edge=lambda days, today: days[:2] == [today, days_later(today, 1)])
def capacity_raised_over_full_slots(zone, today):
    now = datetime.combine(today, time(7, 40), tzinfo=zone)
    take(starts_of(today, after=now), 2)
    take(starts_of(days_later(today, 1))[::2], 3)
    change_rules(slot_capacity=3)
    return now


@situation(edge=lambda days, today: days_later(today, 1) in days)
def slot_length_changed_under_full_slots(zone, today):
    """1-minute slots full all through tomorrow, then slots of 5 minutes: only their starts count."""
    now = datetime.combine(today, time(7, 40), tzinfo=zone)
    change_rules(slot_minutes=1)
    take([start for start in starts_of(days_later(today, 1)) if start.minute % 5], 2)
    change_rules(slot_minutes=5)
    take(starts_of(days_later(today, 1))[5:], 2)
    return now


@situation(edge=lambda days, today: days == [days_later(today, 3)])
def room_only_on_the_last_day(zone, today):
    now = datetime.combine(today, time(7, 40), tzinfo=zone)
    for offset in range(3):
        take(starts_of(days_later(today, offset)), 2)
    take(starts_of(days_later(today, 3))[:-1], 2)  # its very last time is left
    return now


@situation(edge=lambda days, today: days == [])
def no_room_anywhere(zone, today):
    now = datetime.combine(today, time(7, 40), tzinfo=zone)
    for offset in range(4):
        take(starts_of(days_later(today, offset)), 2)
    return now


@situation(edge=lambda days, today: days[0] == today)
def now_exactly_a_slot_start_without_notice(zone, today):
    change_rules(min_notice_minutes=0)
    return datetime.combine(today, time(9, 55), tzinfo=zone)


def every_slot_the_long_way(restaurant: Restaurant, now: datetime, zone: ZoneInfo) -> dict[date, list[tuple[datetime, int]]]:
    """Every slot of every day ahead, each one's places looked up: the times with room, by local day."""
    taken = dict(PickupSlot.objects.values_list("start", "taken"))
    earliest = now + timedelta(minutes=restaurant.min_notice_minutes)
    today = now.astimezone(zone).date()
    by_day: dict[date, list[tuple[datetime, int]]] = {}
    for offset in range(restaurant.max_days_ahead + 1):
        for slot in pickup_times.slots_of_day(restaurant, days_later(today, offset)):
            remaining = restaurant.slot_capacity - taken.get(slot.start, 0)
            if slot.start >= earliest and slot.start > now and remaining > 0:
                by_day.setdefault(slot.start.astimezone(zone).date(), []).append((slot.start, remaining))
    return by_day


def shown(picker: dict) -> dict:
    def chip(time: dict) -> tuple[datetime, int]:
        return datetime.fromisoformat(time["value"]), time["remaining"]

    return {
        "earliest": chip(picker["earliest"]) if picker["earliest"] else None,
        "days": [date.fromisoformat(day["value"]) for day in picker["days"]],
        "day": date.fromisoformat(picker["day"]) if picker["day"] else None,
        "times": [chip(time) for time in picker["times"]],
    }


@pytest.mark.parametrize("name", SITUATIONS)
def test_the_picker_shows_what_every_slot_worked_out_shows(place, name):
    zone, today = place
    set_up, edge = SITUATIONS[name]
    now = set_up(zone, today)
    restaurant = rules()
    expected = every_slot_the_long_way(restaurant, now, zone)
    days = list(expected)
    assert edge(days, today)
    horizon = [days_later(today, offset) for offset in range(-1, restaurant.max_days_ahead + 2)]  # and a day either side

    for asked in [None, *horizon]:
        chosen = asked if asked in expected else next(iter(days), None)
        for chips in (None, 8, 1):
            assert shown(picker_times(restaurant, asked, now=now, chips=chips)) == {
                "earliest": expected[days[0]][0] if days else None,
                "days": days,
                "day": chosen,
                "times": expected.get(chosen, [])[:chips],
            }, (asked, chips)

