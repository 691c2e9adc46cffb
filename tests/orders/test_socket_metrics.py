"""The operator's count of open sockets follows customers and kitchen screens as they come and go."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from prometheus_client import REGISTRY

from tests.conftest import customer_communicator, customer_session
from tests.orders.test_kitchen_screen import kitchen_socket, kitchen_staff

pytestmark = pytest.mark.django_db(transaction=True)


def sockets_open(kind: str) -> float:
    return REGISTRY.get_sample_value("pickup_sockets_open", {"kind": kind})


async def test_sockets_open_are_counted_while_open_and_a_refused_one_never(menu):
    customers, kitchens = sockets_open("customer"), sockets_open("kitchen")
    session_key, _ = await customer_session()
    customer = customer_communicator(session_key)
    assert (await customer.connect())[0]
    kitchen = kitchen_socket(await database_sync_to_async(kitchen_staff)())
    assert (await kitchen.connect())[0]
    refused = customer_communicator(None)  # no session: told why and closed
    await refused.connect()
    await refused.receive_json_from(timeout=5)
    await refused.disconnect()

    assert (sockets_open("customer"), sockets_open("kitchen")) == (customers + 1, kitchens + 1)

    await customer.disconnect()
    await kitchen.disconnect()
    assert (sockets_open("customer"), sockets_open("kitchen")) == (customers, kitchens)
