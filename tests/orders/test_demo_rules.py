"""A new demo restaurant lets someone trying it cancel and reschedule an order placed "as soon as possible"."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from orders.models import Restaurant
from orders.picker import picker_times

pytestmark = pytest.mark.django_db


def test_an_order_for_as_soon_as_possible_can_be_changed_for_two_minutes_and_is_ready_within_five():
    call_command("setup_demo", "--no-staff", stdout=StringIO())
    restaurant = Restaurant.current()
    now = timezone.now()

    earliest = datetime.fromisoformat(picker_times(restaurant, now=now)["earliest"]["value"])
    kitchen_starts = earliest - timedelta(minutes=restaurant.preparation_minutes)

    assert kitchen_starts - now >= timedelta(minutes=2)  # time to try cancel and reschedule
    assert earliest - now <= timedelta(minutes=5)  # and still see it ready soon after
