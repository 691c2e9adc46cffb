"""Which pickup times the restaurant accepts, and why it refuses the others."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from orders import pickup_offers, pickup_times
from orders.models import OpeningHours, Restaurant
from pickup.errors import PickupError

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Tuesday; "now" is 07:00 local on that day in these tests.
TUESDAY = date(2026, 12, 1)
NOW = datetime.combine(TUESDAY, time(7, 0), tzinfo=SHANGHAI)


@pytest.fixture
def breakfast_bar(db) -> Restaurant:
    """Open 06:30-10:00 every day, 5-minute slots, 15 minutes' notice, 2 days ahead."""
    restaurant = Restaurant.current()
    restaurant.min_notice_minutes = 15
    restaurant.max_days_ahead = 2
    restaurant.slot_minutes = 5
    restaurant.slot_capacity = 2
    restaurant.save()
    for weekday in range(7):
        OpeningHours.objects.create(restaurant=restaurant, weekday=weekday, opens=time(6, 30), closes=time(10, 0))
    return Restaurant.current()


def at(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=SHANGHAI)


def refusal(restaurant, pickup_at, now=NOW) -> str:
    with pytest.raises(PickupError) as refused:
        pickup_times.check_pickup_time(restaurant, pickup_at, now=now)
    assert refused.value.message  # every refusal says why, in words
    return refused.value.code


def test_pickup_exactly_at_opening_time_is_accepted(breakfast_bar):
    wednesday = TUESDAY + timedelta(days=1)
    slot = pickup_times.check_pickup_time(breakfast_bar, at(wednesday, 6, 30), now=NOW)
    assert slot.start == at(wednesday, 6, 30)


def test_one_second_before_opening_is_closed(breakfast_bar):
    assert refusal(breakfast_bar, at(TUESDAY + timedelta(days=1), 6, 29, 59)) == "closed_then"


def test_exactly_at_closing_time_is_closed(breakfast_bar):
    assert refusal(breakfast_bar, at(TUESDAY, 10, 0)) == "closed_then"


def test_last_slot_of_the_day_takes_the_last_second_before_closing(breakfast_bar):
    slot = pickup_times.check_pickup_time(breakfast_bar, at(TUESDAY, 9, 59, 59), now=NOW)
    assert (slot.start, slot.end) == (at(TUESDAY, 9, 55), at(TUESDAY, 10, 0))
    assert pickup_times.slots_of_day(breakfast_bar, TUESDAY)[-1] == slot


def test_too_soon_is_refused_and_the_minimum_notice_itself_is_fine(breakfast_bar):
    assert refusal(breakfast_bar, NOW + timedelta(minutes=14, seconds=59)) == "too_soon"
    pickup_times.check_pickup_time(breakfast_bar, NOW + timedelta(minutes=15), now=NOW)


def test_past_time_is_refused(breakfast_bar):
    assert refusal(breakfast_bar, NOW - timedelta(seconds=1)) == "pickup_time_past"


def test_days_ahead_counts_calendar_days_in_the_restaurant_zone(breakfast_bar):
    pickup_times.check_pickup_time(breakfast_bar, at(TUESDAY + timedelta(days=2), 9, 55), now=NOW)
    assert refusal(breakfast_bar, at(TUESDAY + timedelta(days=3), 6, 30)) == "too_far_ahead"


def test_closed_weekday_is_refused(breakfast_bar):
    breakfast_bar.opening_hours.filter(weekday=TUESDAY.weekday() + 1).delete()
    restaurant = Restaurant.current()
    assert refusal(restaurant, at(TUESDAY + timedelta(days=1), 8, 0)) == "closed_then"


def test_split_opening_hours_leave_the_gap_closed(breakfast_bar):
    breakfast_bar.opening_hours.filter(weekday=TUESDAY.weekday()).delete()
    OpeningHours.objects.create(restaurant=breakfast_bar, weekday=TUESDAY.weekday(), opens=time(7, 0), closes=time(9, 0))
    OpeningHours.objects.create(restaurant=breakfast_bar, weekday=TUESDAY.weekday(), opens=time(11, 0), closes=time(13, 0))
    restaurant = Restaurant.current()
    pickup_times.check_pickup_time(restaurant, at(TUESDAY, 11, 0), now=NOW)
    assert refusal(restaurant, at(TUESDAY, 10, 0)) == "closed_then"


def test_offered_times_start_after_the_notice_and_skip_full_slots(breakfast_bar):
    from orders.models import PickupSlot

    PickupSlot.objects.create(start=at(TUESDAY, 7, 20), taken=2)  # full
    PickupSlot.objects.create(start=at(TUESDAY, 7, 25), taken=1)
    offers = pickup_offers.offered_times(breakfast_bar, now=NOW)
    starts = [offer.start for offer in offers]
    assert starts[0] == at(TUESDAY, 7, 15)
    assert at(TUESDAY, 7, 20) not in starts
    assert {offer.start: offer.remaining for offer in offers}[at(TUESDAY, 7, 25)] == 1
    assert starts[-1] == at(TUESDAY + timedelta(days=2), 9, 55)
    assert len(starts) == len(set(starts))


@pytest.mark.parametrize(
    ("day", "real_hours"),
    [(date(2026, 3, 29), 5), (date(2026, 10, 25), 7)],  # clocks go forward / back in Berlin
    ids=["spring-forward", "fall-back"],
)
def test_slots_are_real_minutes_across_daylight_saving_changes(settings, db, day, real_hours):
    settings.TIME_ZONE = "Europe/Berlin"
    berlin = ZoneInfo("Europe/Berlin")
    restaurant = Restaurant.current()
    OpeningHours.objects.create(restaurant=restaurant, weekday=day.weekday(), opens=time(0, 0), closes=time(6, 0))
    restaurant = Restaurant.current()

    slots = pickup_times.slots_of_day(restaurant, day)

    assert len(slots) == real_hours * 12
    assert all(slot.end - slot.start == timedelta(minutes=5) for slot in slots)
    assert all(later.start == earlier.end for earlier, later in zip(slots, slots[1:]))
    assert slots[0].start == datetime.combine(day, time(0), tzinfo=berlin)
    assert slots[-1].end == datetime.combine(day, time(6), tzinfo=berlin)
    # A pickup time given with its UTC offset lands in the right slot on either side of the change.
    now = datetime.combine(day - timedelta(days=1), time(12), tzinfo=berlin)
    restaurant.min_notice_minutes = 0
    for slot in (slots[20], slots[-20]):
        assert pickup_times.check_pickup_time(restaurant, slot.start + timedelta(minutes=2), now=now) == slot
