"""Days and times as a customer reads them, in the page's language.

English reads "Sun 29 Nov"; Chinese reads "11月29日 周日". Django's own
format strings give "星期日 29 十一月" in Chinese, so the words and their
order are translations of their own here.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

WEEKDAYS = [
    pgettext_lazy("short weekday", "Mon"), pgettext_lazy("short weekday", "Tue"),
    pgettext_lazy("short weekday", "Wed"), pgettext_lazy("short weekday", "Thu"),
    pgettext_lazy("short weekday", "Fri"), pgettext_lazy("short weekday", "Sat"),
    pgettext_lazy("short weekday", "Sun"),
]
MONTHS = [
    pgettext_lazy("short month", "Jan"), pgettext_lazy("short month", "Feb"),
    pgettext_lazy("short month", "Mar"), pgettext_lazy("short month", "Apr"),
    pgettext_lazy("short month", "May"), pgettext_lazy("short month", "Jun"),
    pgettext_lazy("short month", "Jul"), pgettext_lazy("short month", "Aug"),
    pgettext_lazy("short month", "Sep"), pgettext_lazy("short month", "Oct"),
    pgettext_lazy("short month", "Nov"), pgettext_lazy("short month", "Dec"),
]


def day_label(moment: datetime, zone: tzinfo | None = None) -> str:
    """The restaurant's calendar day of ``moment``: "Sun 29 Nov" / "11月29日 周日" (``zone``: as in time_label)."""
    local = timezone.localtime(moment, zone)
    return _("%(weekday)s %(day)s %(month)s") % {
        "weekday": WEEKDAYS[local.weekday()], "day": local.day, "month": MONTHS[local.month - 1],
    }


def time_label(moment: datetime, zone: tzinfo | None = None) -> str:
    """"10:45" in the restaurant's time zone (``zone``: that zone, when the caller already has it)."""
    return timezone.localtime(moment, zone).strftime("%H:%M")


def pickup_label(moment: datetime) -> str:
    """Day and time of a pickup: "Sun 29 Nov 10:45" / "11月29日 周日 10:45"."""
    return f"{day_label(moment)} {time_label(moment)}"
