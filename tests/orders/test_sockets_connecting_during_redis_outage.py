"""A page whose socket connects while Redis is out of reach (an outage, a failover's seconds) is
turned away to try again later, with nothing of it left behind, and joins once Redis answers.

The socket cannot join its group, so it could never hear its alerts: it is
closed before its handshake completes with 1013 (daphne answers the upgrade
with 403, the page retries with its backoff: docs/protocol.md). The operator
reads a few warnings for a thousand retrying pages, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from prometheus_client import REGISTRY

from notifications.memberships import memberships
from notifications.sender import STAFF_GROUP, customer_group, send_to_groups
from orders import boards, sockets
from orders.models import BoardLink
from orders.socket_limits import open_sockets
from orders.sockets import CLOSE_TRY_AGAIN_LATER
from pickup.outage_log import OutageLog
from tests.conftest import customer_communicator, customer_session, redis_out_of_reach
from tests.orders.test_counter_board import board_socket
from tests.orders.test_kitchen_screen import kitchen_socket, kitchen_staff

pytestmark = pytest.mark.django_db(transaction=True)


def sockets_open(kind: str) -> float:
    return REGISTRY.get_sample_value("pickup_sockets_open", {"kind": kind})


def held_places() -> tuple[dict, dict]:
    """Every socket's place under the per-session and per-address caps."""
    return dict(open_sockets.per_session), dict(open_sockets.per_address)


def failures(caplog) -> list[str]:
    """What was logged as an error, or with a traceback: nothing, for an outage the operator sees elsewhere."""
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]


async def a_customer() -> tuple[Callable[[], WebsocketCommunicator], str]:
    session_key, customer_id = await customer_session()
    return (lambda: customer_communicator(session_key)), customer_group(customer_id)


async def a_cook() -> tuple[Callable[[], WebsocketCommunicator], str]:
    cook = await database_sync_to_async(kitchen_staff)()
    return (lambda: kitchen_socket(cook)), STAFF_GROUP


async def a_counter_board() -> tuple[Callable[[], WebsocketCommunicator], str]:
    link = await database_sync_to_async(BoardLink.objects.create)(name="Counter TV")
    return (lambda: board_socket(link.token)), boards.board_group(link.pk)


# Each kind of socket: how to open one, and what it is sent once connected.
KINDS = {
    "customer": (a_customer, {"type": "pickup.alert", "alert": {"id": 7, "kind": "pickup"}}, "alert"),
    "kitchen": (a_cook, {"type": "kitchen.changed", "event": "order.placed", "order_ids": [7]}, "kitchen.changed"),
    "board": (a_counter_board, {"type": "kitchen.changed", "event": "order.placed", "order_ids": [7]}, "board.state"),
}


async def next_message_of_type(socket: WebsocketCommunicator, message_type: str) -> dict:
    """The next message of that type, past the greeting (session.ready, board.state) a socket starts with."""
    while True:
        message = await socket.receive_json_from(timeout=5)
        if message["type"] == message_type:
            return message


@pytest.mark.parametrize("kind", KINDS)
async def test_a_socket_connecting_while_redis_is_out_of_reach_is_turned_away_then_joins_once_it_answers(
    kind, menu, settings, caplog
):
    opener, push, pushed_type = KINDS[kind]
    open_one, group = await opener()
    count_before, places_before = sockets_open(kind), held_places()

    with redis_out_of_reach(settings):
        turned_away = open_one()
        assert await turned_away.connect() == (False, CLOSE_TRY_AGAIN_LATER)
        await turned_away.disconnect()  # as daphne says after refusing the handshake

    assert failures(caplog) == []
    assert (sockets_open(kind), held_places()) == (count_before, places_before)
    assert memberships.sockets_in(group) == ()  # not half-joined: no alert is handed to it here

    socket = open_one()
    connected, _ = await socket.connect()
    assert connected
    try:
        if kind == "customer":  # greets first, so its group was joined before this push
            await next_message_of_type(socket, "session.ready")
        elif kind == "board":
            await next_message_of_type(socket, "board.state")
        await send_to_groups([(group, push)])
        assert (await next_message_of_type(socket, pushed_type))["type"] == pushed_type
        assert sockets_open(kind) == count_before + 1
    finally:
        await socket.disconnect()
    assert (sockets_open(kind), held_places()) == (count_before, places_before)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_socket_whose_connect_fails_half_way_for_another_reason_gives_back_what_it_took(
    kind, menu, clean_redis
):
    """Not an outage: a Redis error a join does not expect (a group key of the wrong type).
    The consumer ends with it, as any unexpected error (daphne logs its traceback),
    but its place under the caps, its gauge and its groups are given back."""
    opener, push, pushed_type = KINDS[kind]
    open_one, group = await opener()
    count_before, places_before = sockets_open(kind), held_places()
    wrong_type = get_channel_layer()._group_key(group)
    clean_redis.set(wrong_type, "not a sorted set")

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        await open_one().connect()

    assert (sockets_open(kind), held_places()) == (count_before, places_before)
    assert memberships.sockets_in(group) == ()
    clean_redis.delete(wrong_type)
    socket = open_one()
    assert (await socket.connect())[0]
    await socket.disconnect()
    assert (sockets_open(kind), held_places()) == (count_before, places_before)


async def test_pages_retrying_through_an_outage_are_said_in_two_warnings_not_one_per_page(
    menu, settings, caplog, monkeypatch
):
    now = [0.0]
    words = sockets.turned_away.words
    monkeypatch.setattr(sockets, "turned_away", OutageLog(sockets.logger, words, every=10.0, clock=lambda: now[0]))
    open_one, _group = await a_customer()

    with caplog.at_level(logging.WARNING, logger="orders.sockets"), redis_out_of_reach(settings):
        for _retry in range(5):
            turned_away = open_one()
            assert await turned_away.connect() == (False, CLOSE_TRY_AGAIN_LATER)
            await turned_away.disconnect()
    now[0] += 11  # Redis is back some seconds later
    with caplog.at_level(logging.WARNING, logger="orders.sockets"):
        socket = open_one()
        assert (await socket.connect())[0]
        await socket.disconnect()

    said = [record for record in caplog.records if record.name == "orders.sockets"]
    # The first at once, all five counted when sockets join again; no tracebacks.
    assert [(record.levelno, record.msg, record.args["total"]) for record in said] == [
        (logging.WARNING, words.began, 1), (logging.WARNING, words.ended, 5)
    ]
    assert failures(caplog) == []
