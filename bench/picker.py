"""What the pickup-time picker costs per page load, in this process: no server, no network.

    .venv/bin/python -m bench.picker                        # the demo's 1-minute slots, then 5-minute ones
    .venv/bin/python -m bench.picker --repeats 500 --slot-minutes 1

The demo restaurant (open around the clock, 3 minutes' notice, a week
ahead, 10 orders a slot) in a rush: the next three hours' slots alternately
full and nearly full, and every tenth slot of the rest of the week full.
Timed, each many times, median and p90 in milliseconds:

- ``picker_times``: the first day with room and the last day of the week, all
  their times; and the picker as the pages render it (its first eight times);
- ``GET /`` and ``GET /orders/<id>/`` (both render the picker), through
  Django's test client with every middleware;
- ``GET /pickup-times/?day=<last day>`` with its cache missed each time.

A private redis-server and an SQLite file of its own; production settings
(``DEBUG`` off).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from bench.common import print_table, write_results
from pickup.redis_server import PrivateRedis
from pickup.testing import TEST_SECRET_KEY

RUSH_HOURS = 3
SCATTERED_FULL_EVERY = 10


def _configure(directory: Path, redis_url: str) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "tests.settings", "DEBUG": "false", "SECRET_KEY": TEST_SECRET_KEY,
        "SECURE_SSL_REDIRECT": "false", "ALLOWED_HOSTS": "testserver", "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}", "STATIC_ROOT": str(directory),
        "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": "pickup-bench:",
    })
    import django

    django.setup()


def _demo_restaurant_in_a_rush(slot_minutes: int) -> dict:
    """The demo restaurant with ``slot_minutes``; its slots filled as at the morning rush."""
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    from orders import pickup_offers
    from orders.models import Order, PickupSlot, Restaurant

    call_command("migrate", "--noinput", verbosity=0)
    call_command("setup_demo", "--no-staff", stdout=StringIO())
    Restaurant.objects.filter(pk=1).update(slot_minutes=slot_minutes)
    Order.objects.all().delete()  # a previous slot length's order holds its slot
    PickupSlot.objects.all().delete()
    Restaurant.forget_current()
    restaurant = Restaurant.current()
    offers = pickup_offers.offered_times(restaurant)
    rush_ends = timezone.now() + timedelta(hours=RUSH_HOURS)
    capacity = restaurant.slot_capacity
    rows = []
    for index, offer in enumerate(offers):
        if offer.start < rush_ends:
            rows.append(PickupSlot(start=offer.start, taken=capacity if index % 2 == 0 else capacity - 2))
        elif index % SCATTERED_FULL_EVERY == 0:
            rows.append(PickupSlot(start=offer.start, taken=capacity))
    PickupSlot.objects.bulk_create(rows, batch_size=2000)
    return {"slot_minutes": slot_minutes, "slots_in_horizon": len(offers), "pickup_slot_rows": len(rows),
            "full_slots": sum(row.taken >= capacity for row in rows), "days_ahead": restaurant.max_days_ahead}


def _customer_with_an_order() -> tuple[str, int]:
    """A customer's session key and their order, for the order detail page."""
    from django.contrib.sessions.backends.db import SessionStore

    from orders import pickup_offers, services
    from orders.customers import SESSION_KEY
    from orders.models import MenuItem, Restaurant

    session = SessionStore()
    session[SESSION_KEY] = "bench-picker"
    session.create()
    pickup_at = pickup_offers.offered_times(Restaurant.current())[-1].start
    order = services.place_order(customer_id="bench-picker", lines=[(MenuItem.objects.first().pk, 1)], pickup_at=pickup_at)
    return session.session_key, order.pk


def _timed(work: Callable[[], object], repeats: int) -> dict:
    for _ in range(min(10, repeats)):  # warm: the slot grid's cache, the templates, the connection
        work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    ordered = sorted(times)
    return {"repeats": repeats, "median_ms": round(statistics.median(ordered), 3),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 3), "min_ms": round(ordered[0], 3)}


def _queries(work: Callable[[], object]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        work()
    return len(captured)


def measure(slot_minutes: int, repeats: int) -> dict:
    from django.conf import settings
    from django.test import Client

    from orders import pickup_times, views
    from orders.models import Restaurant
    from orders.picker import picker_times

    setup = _demo_restaurant_in_a_rush(slot_minutes)
    session_key, order_id = _customer_with_an_order()
    restaurant = Restaurant.current()
    first = picker_times(restaurant)
    last_day = first["days"][-1]["value"]
    visitor, customer = Client(), Client()
    customer.cookies[settings.SESSION_COOKIE_NAME] = session_key

    def get(client: Client, url: str) -> Callable[[], object]:
        def load() -> object:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return response
        return load

    def day_uncached() -> object:
        pickup_times.places_changed()  # a new places version: the cached answer is not found
        return get(visitor, f"/pickup-times/?day={last_day}")()

    cases = {
        "picker_times, first day": lambda: picker_times(Restaurant.current()),
        "the page's picker (views._picker)": views._picker,
        "picker_times, last day": lambda: picker_times(Restaurant.current(), date.fromisoformat(last_day)),
        "GET /": get(visitor, "/"),
        "GET /orders/<id>/": get(customer, f"/orders/{order_id}/"),
        "GET /pickup-times/?day=<last day>, uncached": day_uncached,
    }
    rows = []
    for name, work in cases.items():
        rows.append({"what": name, "queries": _queries(work), **_timed(work, repeats)})
    return {**setup, "first_day_times": len(first["times"]), "days_with_room": len(first["days"]), "rows": rows}


def run(slot_minutes: list[int], repeats: int) -> list[dict]:
    """``measure`` each slot length, on a private Redis and an SQLite file of its own;
    once per process (it sets Django up)."""
    redis_server = PrivateRedis().start()
    try:
        with tempfile.TemporaryDirectory(prefix="pickup-bench-picker-") as directory:
            _configure(Path(directory), redis_server.url)
            return [measure(each, repeats) for each in slot_minutes]
    finally:
        redis_server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=300, help="timed calls of each (after 10 untimed)")
    parser.add_argument("--slot-minutes", type=int, nargs="+", default=[1, 5])
    args = parser.parse_args()
    results = run(args.slot_minutes, args.repeats)
    for slot_minutes, result in zip(args.slot_minutes, results):
        print_table(
            f"{slot_minutes}-minute slots: {result['slots_in_horizon']:,} in {result['days_ahead'] + 1} days, "
            f"{result['pickup_slot_rows']:,} slot rows ({result['full_slots']:,} full)",
            result["rows"], ["what", "queries", "median_ms", "p90_ms", "min_ms"],
        )
    path = write_results("picker", {"repeats": args.repeats, "runs": results})
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
