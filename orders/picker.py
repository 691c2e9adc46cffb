"""What the pickup-time picker shows: "as soon as possible", the days, and one day's times.

The page asks for one day at a time (a restaurant with 1-minute slots offers
over a thousand times a day, a week ahead ten thousand), so no answer is
bigger than a day's list, and it goes out gzip-compressed.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from orders import dates, pickup_offers
from orders.models import Restaurant

# How often an open picker asks again: the earliest time moves with the clock.
REFRESH_SECONDS = 30
# A time with this many places left or fewer says so on its chip ("2 left").
FEW_PLACES_LEFT = 3


def _time(offer: pickup_offers.Offer, capacity: int, zone: tzinfo) -> dict:
    """One time chip; a time that is nearly full says how many places are left, in words and
    in its accessible name (most times say nothing: a day of 1-minute slots has a thousand)."""
    local = timezone.localtime(offer.start, zone)
    label = dates.time_label(local, zone)
    time = {"value": local.isoformat(), "label": label, "remaining": offer.remaining}
    if offer.remaining <= FEW_PLACES_LEFT and offer.remaining < capacity:
        count = offer.remaining
        time["left"] = _("%(count)s left") % {"count": count}
        time["accessible_name"] = ngettext("%(time)s, only %(count)s place left", "%(time)s, only %(count)s places left", count) % {
            "time": label, "count": count}
    return time


def _day_label(day: date, today: date, zone: tzinfo) -> str:
    """"Today", "Tomorrow", else "Tue 1 Dec" / "12月1日 周二"."""
    if day == today:
        return _("Today")
    if (day - today).days == 1:
        return _("Tomorrow")
    return dates.day_label(datetime.combine(day, datetime.min.time(), tzinfo=zone), zone)


def parse_day(text: str | None) -> date | None:
    """The ``day`` a page asked for, or None for "the first day with room" (a bad value included)."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def picker_times(
    restaurant: Restaurant, day: date | None = None, *, now: datetime | None = None, chips: int | None = None
) -> dict:
    """The picker's contents: the earliest time with room, the days that have room, and ``day``'s times
    (its first ``chips`` times, or all of them).

    A day without room (or none asked for) gives the first day that has some.
    Only that day's times are worked out (``pickup_offers.picker_offers``).

    The time zone is looked up once: Django keeps the current one in an
    asgiref ``Local`` guarded by one lock for the whole process, and a week
    of 1-minute slots looked it up ten thousand times per page. Page loads in
    flight then queued on that lock: four at once served a third as many
    pages a second as one at a time (BENCHMARKS.md, "The picker's time zone").
    """
    now = now or timezone.now()
    zone = timezone.get_current_timezone()
    today = timezone.localtime(now, zone).date()
    picker = pickup_offers.picker_offers(restaurant, day, now=now, zone=zone, limit=chips)
    return {
        "earliest": _time(picker.earliest, restaurant.slot_capacity, zone) if picker.earliest else None,
        "days": [{"value": each.isoformat(), "label": _day_label(each, today, zone)} for each in picker.days],
        "day": picker.day.isoformat() if picker.day else None,
        "times": [_time(offer, restaurant.slot_capacity, zone) for offer in picker.offers],
        "refresh_after": REFRESH_SECONDS,
    }
