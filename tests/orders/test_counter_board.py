"""The counter screen: opened by an unguessable link, codes and states only, closed when the link is revoked."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from orders import boards, services
from orders.models import BoardLink, Order
from tests.orders.test_kitchen_screen import kitchen_staff, place

pytestmark = pytest.mark.django_db(transaction=True)


def board_socket(token: str) -> WebsocketCommunicator:
    from pickup.asgi import application

    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    return WebsocketCommunicator(application, f"/ws/board/{token}/", headers=headers)


def test_each_board_link_gets_its_own_long_random_token(db):
    first, second = BoardLink.objects.create(name="Counter TV"), BoardLink.objects.create(name="Window TV")
    assert first.token != second.token
    assert len(first.token) >= 43  # 256 bits in URL-safe base64
    assert boards.find_link(first.token) == first
    assert boards.find_link("guessed") is None and boards.find_link("") is None


def test_revoking_a_link_stamps_it_once(db):
    link = BoardLink.objects.create(name="Counter TV")
    assert boards.revoke_links([link]) == 1
    link.refresh_from_db()
    assert link.is_revoked
    assert boards.revoke_links([link]) == 0
    assert boards.board_state(link.token) is None


def test_board_shows_preparing_and_ready_codes_and_nothing_about_the_customer(menu):
    place(menu, 7200, customer_id="secret-customer-1")  # queued, for later
    preparing = place(menu, 5400, customer_id="secret-customer-2")
    services.change_status(preparing, Order.Status.PREPARING)
    ready = place(menu, 1800, customer_id="secret-customer-3")
    services.change_status(ready, Order.Status.READY)
    collected = place(menu, 900)
    services.change_status(collected, Order.Status.READY)
    services.change_status(collected, Order.Status.PICKED_UP)

    board = boards.board_payload()

    # Only these two: the queued order (not started yet) and the collected one are on neither list.
    # (Their codes are no test: pickup codes count per pickup day, and from 22:00
    # the queued order's falls on tomorrow, whose first code is today's first too.)
    assert board["preparing"] == [{"code": preparing.pickup_code, "status": "preparing"}]
    assert [entry["code"] for entry in board["ready"]] == [ready.pickup_code]
    assert set(board) == {"now", "preparing", "ready"}
    assert set(board["ready"][0]) == {"code", "status", "ready_at"}
    text = json.dumps(board)
    for private in ("secret-customer", "Breakfast", str(ready.total), "lines", "customer"):
        assert private not in text


def test_board_page_opens_with_a_valid_link_and_says_so_when_revoked(menu):
    link = BoardLink.objects.create(name="Counter TV")
    client = Client()
    page = client.get(reverse("orders:board", args=[link.token]))
    assert page.status_code == 200
    assert "Ready" in page.content.decode() and "请取餐" in page.content.decode()  # both languages at once
    assert client.get(reverse("orders:board_state", args=[link.token])).json()["preparing"] == []
    assert client.get(reverse("orders:board", args=["not-a-token"])).status_code == 404

    boards.revoke_links([link])

    revoked = client.get(reverse("orders:board", args=[link.token]))
    assert revoked.status_code == 410 and "This board link was revoked." in revoked.content.decode()
    assert client.get(reverse("orders:board_state", args=[link.token])).status_code == 410


async def test_board_socket_sends_the_board_on_connect_and_after_each_change(menu):
    link = await database_sync_to_async(BoardLink.objects.create)(name="Counter TV")
    socket = board_socket(link.token)
    connected, _ = await socket.connect()
    assert connected
    first = await socket.receive_json_from(timeout=5)
    assert first["type"] == "board.state" and first["board"]["preparing"] == [] and first["board"]["ready"] == []

    order = await database_sync_to_async(place)(menu, 3600)
    await socket.receive_json_from(timeout=5)  # the new order: not started, so not shown
    await database_sync_to_async(services.change_status)(order, Order.Status.PREPARING)
    message = await socket.receive_json_from(timeout=5)
    assert message["board"]["preparing"] == [{"code": order.pickup_code, "status": "preparing"}]
    await socket.disconnect()


async def test_revoking_the_link_closes_its_open_board_with_a_clear_code(menu):
    link = await database_sync_to_async(BoardLink.objects.create)(name="Counter TV")
    socket = board_socket(link.token)
    connected, _ = await socket.connect()
    assert connected
    await socket.receive_json_from(timeout=5)

    await database_sync_to_async(boards.revoke_links)([link])

    closed = await socket.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": boards.CLOSE_BOARD_REVOKED}
    again = board_socket(link.token)
    assert (await again.connect())[0]  # accepted, so the page can read why it closes
    assert await again.receive_output(timeout=5) == {"type": "websocket.close", "code": boards.CLOSE_BOARD_REVOKED}
    await again.disconnect()


async def test_unknown_token_is_closed_with_its_own_code(db):
    socket = board_socket("nobody-made-this")
    assert (await socket.connect())[0]
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": boards.CLOSE_BOARD_UNKNOWN}
    await socket.disconnect()


def test_kitchen_board_carries_the_steps_each_order_allows(menu):
    queued = place(menu, 3600)
    preparing = place(menu, 5400)
    services.change_status(preparing, Order.Status.PREPARING)
    ready = place(menu, 1800)
    services.change_status(ready, Order.Status.READY)

    board = kitchen_staff().get(reverse("admin:orders_kitchen_board")).json()

    steps = {order["id"]: order["steps"] for section in board["sections"].values() for order in section}
    assert steps == {
        queued.pk: ["start", "ready", "cancel"],
        preparing.pk: ["ready", "cancel"],
        ready.pk: ["picked-up"],
    }


def test_staff_who_may_only_look_get_no_steps_and_the_stand_alone_screen_is_staff_only(menu):
    from tests.orders.test_kitchen_screen import logged_in

    place(menu, 3600)
    viewer = logged_in("view_order", is_staff=True)
    board = viewer.get(reverse("admin:orders_kitchen_board")).json()
    assert [order["steps"] for order in board["sections"]["next"]] == [[]]
    assert viewer.get(reverse("orders:kitchen_screen")).status_code == 200
    assert Client().get(reverse("orders:kitchen_screen")).status_code == 302  # to the admin login
    assert logged_in(is_staff=True).get(reverse("orders:kitchen_screen")).status_code == 403
