"""The page's pickup-time picker is fed only times that are valid and still have room, one day at a time."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from orders import pickup_offers, services
from orders.models import PickupSlot

pytestmark = pytest.mark.django_db


def test_offers_list_valid_times_with_room_in_the_restaurant_zone(client, restaurant):
    restaurant.min_notice_minutes = 10
    restaurant.slot_capacity = 3
    restaurant.max_days_ahead = 1  # today and tomorrow: never empty, whatever the hour
    restaurant.save()
    first = pickup_offers.offered_times(restaurant)[0]
    PickupSlot.objects.create(start=first.start, taken=3)

    response = client.get("/pickup-times/")

    assert response.status_code == 200
    body = response.json()
    assert body["time_zone"] == "Asia/Shanghai"
    values = [datetime.fromisoformat(time["value"]) for time in body["times"]]
    assert first.start not in values  # full
    assert all(value.utcoffset().total_seconds() == 8 * 3600 for value in values)
    assert all(1 <= time["remaining"] <= 3 for time in body["times"])
    assert body["times"][0]["label"] == values[0].strftime("%H:%M")
    assert body["earliest"] == body["times"][0]  # "as soon as possible": the earliest time with room
    assert response["Cache-Control"] == "no-store"


def test_the_picker_gets_one_day_at_a_time(client, restaurant):
    restaurant.max_days_ahead = 2
    restaurant.save()
    first_day = client.get("/pickup-times/").json()
    days = [day["value"] for day in first_day["days"]]
    assert first_day["day"] == days[0]
    assert first_day["days"][0]["label"] in ("Today", "Tomorrow")  # today may have closed already

    later = client.get(f"/pickup-times/?day={days[-1]}").json()

    assert later["day"] == days[-1]
    assert {time["value"][:10] for time in later["times"]} == {days[-1]}
    assert later["earliest"]["value"] < later["times"][0]["value"]  # "as soon as possible" stays the first day's
    assert client.get("/pickup-times/?day=not-a-day").json()["day"] == days[0]


def test_the_ordering_page_shows_as_soon_as_possible_and_a_handful_of_times(client, menu, breakfast_time):
    before = client.get("/pickup-times/").json()["earliest"]["value"]
    page = client.get("/").content.decode()
    after = client.get("/pickup-times/").json()["earliest"]["value"]
    assert any(f'value="{earliest}" data-asap checked' in page for earliest in (before, after))  # a minute may turn
    assert page.count('name="pickup_at"') == 1 + 8  # not hundreds of options
    assert "As soon as possible" in page


def test_the_ordering_page_offers_the_same_times_and_names_its_zone(client, menu):
    page = client.get("/").content.decode()
    offered = client.get("/pickup-times/").json()["times"]
    # The second time offered (a minute may have turned between the two requests: then the first).
    assert any(f'<input type="radio" name="pickup_at" value="{time["value"]}">' in page for time in offered[:2])
    assert "Asia/Shanghai" in page


@pytest.mark.django_db(transaction=True)
def test_the_offers_are_cached_until_a_place_is_taken(client, restaurant, menu, breakfast_time):
    restaurant.slot_capacity = 3
    restaurant.max_days_ahead = 1
    restaurant.save()
    while True:  # the cache also turns over with the minute: look within one
        minute = int(time.time() // 60)
        # The second time offered: a slot length ahead, so it cannot pass during the test.
        chosen = client.get("/pickup-times/").json()["times"][1]
        pickup_at = datetime.fromisoformat(chosen["value"])
        # A change that bypasses the services (no place taken): the cached answer stands.
        PickupSlot.objects.update_or_create(start=pickup_at, defaults={"taken": 2})
        again = client.get("/pickup-times/").json()["times"]
        if int(time.time() // 60) == minute:
            break
        PickupSlot.objects.filter(start=pickup_at).delete()
    assert chosen in again
    # An order takes the last place: the next answer is worked out afresh.
    services.place_order(customer_id="c1", lines=[(menu["set"].pk, 1)], pickup_at=pickup_at)
    assert chosen["value"] not in [time["value"] for time in client.get("/pickup-times/").json()["times"]]


def test_the_offers_are_sent_compressed_to_a_browser_that_accepts_it(client, restaurant):
    restaurant.slot_minutes = 1  # the demo's: over a thousand times a day
    restaurant.save()
    response = client.get("/pickup-times/", HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    assert len(response.content) < 20_000


def test_a_nearly_full_time_says_how_many_places_are_left_and_the_others_say_nothing(client, restaurant, breakfast_time):
    restaurant.slot_capacity = 10
    restaurant.max_days_ahead = 1  # today and tomorrow: never empty, whatever the hour
    restaurant.save()
    nearly_full, half_full = pickup_offers.offered_times(restaurant)[2:4]  # still offered when the minute turns
    PickupSlot.objects.create(start=nearly_full.start, taken=8)
    PickupSlot.objects.create(start=half_full.start, taken=6)

    times = {datetime.fromisoformat(time["value"]): time for time in client.get("/pickup-times/").json()["times"]}

    shown = times[nearly_full.start]
    assert shown["left"] == "2 left"
    assert shown["accessible_name"] == f"{shown['label']}, only 2 places left"
    assert "left" not in times[half_full.start]  # four places: plenty
    assert sum("left" in time for time in times.values()) == 1
    page = client.get("/").content.decode()
    assert f'aria-label="{shown["label"]}, only 2 places left"><span>{shown["label"]}<small class="places-left">2 left</small>' in page
