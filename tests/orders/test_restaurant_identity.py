"""The restaurant's name, address, where to collect and opening hours: edited in the admin, shown to customers."""

from __future__ import annotations

from datetime import time

import pytest
from django.contrib.auth import get_user_model

from orders.identity import opening_hours, restaurant_card
from orders.models import OpeningHours, Restaurant

pytestmark = pytest.mark.django_db


def test_neighbouring_days_with_the_same_hours_share_a_row(restaurant):
    restaurant.opening_hours.all().delete()
    for weekday in range(5):
        OpeningHours.objects.create(restaurant=restaurant, weekday=weekday, opens=time(7), closes=time(10))
    OpeningHours.objects.create(restaurant=restaurant, weekday=5, opens=time(8), closes=time(0))

    assert opening_hours(Restaurant.objects.get()) == [("Mon–Fri", "07:00–10:00"), ("Sat", "08:00–24:00"), ("Sun", "Closed")]


def test_the_demo_is_open_around_the_clock_every_day(restaurant):
    assert opening_hours(restaurant) == [("Every day", "Open 24 hours")]


def test_chinese_customers_read_the_chinese_fields_and_the_english_where_staff_left_them_empty(restaurant):
    restaurant.address_zh_hans = ""
    card = restaurant_card(restaurant, "zh-hans")
    assert card["name"] == "Pickup 早餐铺"
    assert card["counter"] == "进门左手边的取餐架"
    assert card["address"] == "1 Example Road, Shanghai"


def test_the_ordering_page_shows_what_staff_entered_in_the_admin(client, restaurant, menu):
    staff = get_user_model().objects.create_superuser("owner", password="x")
    client.force_login(staff)
    form = client.get(f"/admin/orders/restaurant/{restaurant.pk}/change/").content.decode()
    for field in ("name_zh_hans", "address", "address_zh_hans", "counter", "counter_zh_hans"):
        assert f'name="{field}"' in form
    Restaurant.objects.filter(pk=restaurant.pk).update(counter="The red shelf by the window")
    Restaurant.forget_current()

    page = client.get("/").content.decode()

    assert "The red shelf by the window" in page
    assert "1 Example Road, Shanghai" in page
    assert "Open 24 hours" in page


def test_chinese_opening_hours_read_naturally(restaurant):
    from django.utils import translation

    restaurant.opening_hours.all().delete()
    for weekday in range(5):
        OpeningHours.objects.create(restaurant=restaurant, weekday=weekday, opens=time(7), closes=time(10))
    with translation.override("zh-hans"):
        assert opening_hours(Restaurant.objects.get()) == [("周一至周五", "07:00–10:00"), ("周六至周日", "休息")]
