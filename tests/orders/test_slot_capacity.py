"""A slot never takes more orders than its capacity, even when many customers race for it.

Runs on SQLite by default and on PostgreSQL when the suite runs with
PICKUP_TEST_DATABASE_URL (scripts/test.sh does both where PostgreSQL answers).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from orders import services
from orders.models import Order, PickupSlot
from pickup.errors import PickupError
from tests.conftest import pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_full_slot_refuses_the_next_order_and_stores_nothing(menu, restaurant):
    restaurant.slot_capacity = 2
    restaurant.save()
    pickup_at = pickup_in(3600)
    for customer in ("a", "b"):
        services.place_order(customer_id=customer, lines=[(menu["set"].pk, 1)], pickup_at=pickup_at)
    with pytest.raises(PickupError) as refused:
        services.place_order(customer_id="c", lines=[(menu["set"].pk, 1)], pickup_at=pickup_at)
    assert refused.value.code == "slot_full"
    assert Order.objects.count() == 2
    assert PickupSlot.objects.get().taken == 2


def test_customers_racing_for_the_last_places_never_overfill_the_slot(menu, restaurant):
    restaurant.slot_capacity = 5
    restaurant.save()
    pickup_at = pickup_in(3600)
    racers = 16
    start = threading.Barrier(racers)
    outcomes: list[str] = []

    def race(customer: str) -> None:
        try:
            start.wait()
            services.place_order(customer_id=customer, lines=[(menu["set"].pk, 1)], pickup_at=pickup_at)
            outcomes.append("placed")
        except PickupError as error:
            outcomes.append(error.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=race, args=(f"racer-{n}",)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(set(outcomes)) == ["placed", "slot_full"], outcomes
    assert outcomes.count("placed") == 5
    assert Order.objects.count() == 5
    assert PickupSlot.objects.get().taken == 5
    assert sorted(Order.objects.values_list("pickup_code", flat=True)) == [f"A00{n}" for n in range(1, 6)]
    assert connection.vendor in ("sqlite", "postgresql")


def test_orders_placed_together_fill_a_slot_first_come_first_served(menu, restaurant):
    restaurant.slot_capacity = 3
    restaurant.save()
    pickup_at = pickup_in(3600)
    services.place_order(customer_id="early", lines=[(menu["set"].pk, 1)], pickup_at=pickup_at)
    other_slot = pickup_in(7200)
    batch = [services.NewOrder(f"c{n}", [(menu["set"].pk, 1)], pickup_at) for n in range(4)]
    batch.append(services.NewOrder("elsewhere", [(menu["set"].pk, 1)], other_slot))

    results = services.place_orders(batch)

    placed = [getattr(result, "customer_id", None) for result in results]
    assert placed == ["c0", "c1", None, None, "elsewhere"]
    assert [result.code for result in results[2:4]] == ["slot_full", "slot_full"]
    assert sorted(Order.objects.values_list("customer_id", flat=True)) == ["c0", "c1", "early", "elsewhere"]
    assert sorted(PickupSlot.objects.values_list("taken", flat=True)) == [1, 3]
