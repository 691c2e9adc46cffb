"""The operator's count of open sockets follows customers, kitchen screens and counter boards as they come and go."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from prometheus_client import REGISTRY

from orders.models import BoardLink
from tests.conftest import customer_communicator, customer_session
from tests.orders.test_counter_board import board_socket
from tests.orders.test_kitchen_screen import kitchen_socket, kitchen_staff

pytestmark = pytest.mark.django_db(transaction=True)


def sockets_open(kind: str) -> float:
    return REGISTRY.get_sample_value("pickup_sockets_open", {"kind": kind})


async def test_sockets_open_are_counted_while_open_and_a_refused_one_never(menu):
    kinds = ("customer", "kitchen", "board")
    before = [sockets_open(kind) for kind in kinds]
    session_key, _ = await customer_session()
    customer = customer_communicator(session_key)
    assert (await customer.connect())[0]
    kitchen = kitchen_socket(await database_sync_to_async(kitchen_staff)())
    assert (await kitchen.connect())[0]
    board = board_socket((await database_sync_to_async(BoardLink.objects.create)(name="Counter TV")).token)
    assert (await board.connect())[0]
    await board.receive_json_from(timeout=5)  # board.state
    refused = customer_communicator(None)  # no session: told why and closed
    await refused.connect()
    await refused.receive_json_from(timeout=5)
    await refused.disconnect()
    unknown_board = board_socket("nobody-made-this")  # closed at once
    await unknown_board.connect()
    await unknown_board.disconnect()

    assert [sockets_open(kind) for kind in kinds] == [count + 1 for count in before]

    for socket in (customer, kitchen, board):
        await socket.disconnect()
    assert [sockets_open(kind) for kind in kinds] == before
