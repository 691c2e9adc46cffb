"""The staff's kitchen screen: staff only, live, and agreeing with the database."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.models import Alert
from orders import kitchen_queue, selectors, services
from orders.models import Order
from tests.conftest import pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


def place(menu, seconds: float, customer_id: str = "customer-a") -> Order:
    return services.place_order(customer_id=customer_id, lines=[(menu["set"].pk, 2)], pickup_at=pickup_in(seconds))


def kitchen_socket(client: Client | None) -> WebsocketCommunicator:
    from pickup.asgi import application

    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    if client is not None:
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/kitchen/", headers=headers)


def logged_in(*permissions: str, **flags) -> Client:
    user = User.objects.create_user(f"user{User.objects.count()}", password="pw-123456789", **flags)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="orders", codename__in=permissions))
    client = Client()
    client.force_login(user)
    return client


def kitchen_staff() -> Client:
    """A cook as the kitchen page wants one: staff, allowed to view and change orders."""
    return logged_in("view_order", "change_order", is_staff=True)


async def test_kitchen_socket_refuses_anonymous_customers_and_staff_without_order_permissions(menu):
    # A staff login alone gets a 403 on the kitchen page: the socket agrees.
    for client in (None, await database_sync_to_async(logged_in)(), await database_sync_to_async(logged_in)(is_staff=True)):
        refused = kitchen_socket(client)
        connected, code = await refused.connect()
        assert not connected and code == 4403
        await refused.disconnect()
    page_for_staff_alone = await database_sync_to_async(logged_in)(is_staff=True)
    assert (await database_sync_to_async(page_for_staff_alone.get)(reverse("admin:orders_kitchen"))).status_code == 403


async def test_kitchen_socket_tells_staff_of_changes(menu):
    staff = await database_sync_to_async(kitchen_staff)()
    socket = kitchen_socket(staff)
    connected, _ = await socket.connect()
    assert connected
    order = await database_sync_to_async(place)(menu, 3600)
    message = await socket.receive_json_from(timeout=5)
    assert message == {"type": "kitchen.changed", "event": "order.placed", "order_ids": [order.pk]}
    await database_sync_to_async(services.change_status)(order, Order.Status.CANCELLED, reason="sold_out", note="out of congee")
    message = await socket.receive_json_from(timeout=5)
    assert message["event"] == "order.updated" and message["order_ids"] == [order.pk]
    await socket.disconnect()


BAD_KITCHEN_FRAMES = {
    "not json": ({"text_data": "{ping"}, "invalid_json"),
    "binary": ({"bytes_data": b"\x00\x01"}, "invalid_json"),
    "json but not an object": ({"text_data": "[1]"}, "invalid_message"),
    "unknown type": ({"text_data": '{"type": "order.place", "request_id": "x"}'}, "unknown_type"),
    "nested 8,000 deep": ({"text_data": "[" * 8000 + "]" * 8000}, "invalid_json"),
    "too large": ({"text_data": '{"type": "ping", "pad": "' + "x" * 20_000 + '"}'}, "message_too_large"),
}


@pytest.mark.parametrize("case", BAD_KITCHEN_FRAMES, ids=list(BAD_KITCHEN_FRAMES))
async def test_bad_frame_on_the_kitchen_socket_gets_a_json_error_and_the_socket_stays_open(case, menu, caplog):
    frame, code = BAD_KITCHEN_FRAMES[case]
    socket = kitchen_socket(await database_sync_to_async(kitchen_staff)())
    connected, _ = await socket.connect()
    assert connected
    try:
        await socket.send_to(**frame)
        reply = await socket.receive_json_from(timeout=5)
        assert reply["type"] == "error" and reply["code"] == code and reply["message"]
        await socket.send_json_to({"type": "ping", "request_id": "still-there"})
        assert await socket.receive_json_from(timeout=5) == {"type": "pong", "request_id": "still-there"}
    finally:
        await socket.disconnect()
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


def test_board_sections_follow_the_database_in_pickup_order(menu):
    later = place(menu, 7200)
    sooner = place(menu, 3600)
    preparing = place(menu, 5400)
    services.change_status(preparing, Order.Status.PREPARING)
    ready = place(menu, 1800)
    services.change_status(ready, Order.Status.READY)
    cancelled = place(menu, 900)
    services.change_status(cancelled, Order.Status.CANCELLED)
    kitchen_queue.add_many([(cancelled.pk, cancelled.pickup_at)])  # a stale entry Redis still holds

    board = selectors.kitchen_board()

    assert [order.pk for order in board["now"]] == [preparing.pk]
    assert [order.pk for order in board["next"]] == [sooner.pk, later.pk]
    assert [order.pk for order in board["ready"]] == [ready.pk]


def test_an_order_whose_preparation_time_has_come_is_listed_under_now(menu):
    soon = place(menu, 600)
    later = place(menu, 7200)
    Order.objects.filter(pk=soon.pk).update(preparation_at=pickup_in(-60))  # run_queue has not started it yet

    board = selectors.kitchen_board()

    assert [order.pk for order in board["now"]] == [soon.pk]
    assert [order.pk for order in board["next"]] == [later.pk]


def test_a_ready_order_is_overdue_once_its_customer_was_reminded_to_collect_it(menu):
    waiting, forgotten = place(menu, 600), place(menu, 900)
    for order in (waiting, forgotten):
        services.change_status(order, Order.Status.READY)
    Alert.objects.create(order=forgotten, customer_id=forgotten.customer_id, kind=Alert.Kind.REMINDER, due_at=timezone.now())

    board = selectors.kitchen_board()

    assert [(order.pk, order.reminded) for order in board["ready"]] == [(waiting.pk, False), (forgotten.pk, True)]


def test_board_still_lists_waiting_orders_when_redis_lost_them(menu, clean_redis):
    order = place(menu, 3600)
    clean_redis.flushdb()
    board = selectors.kitchen_board(timezone.now())
    assert [o.pk for o in board["next"]] == [order.pk]


def test_one_click_steps_are_for_staff_and_follow_the_lifecycle(menu):
    order = place(menu, 3600)
    url = reverse("admin:orders_kitchen_step", args=[order.pk, "ready"])
    assert Client().post(url).status_code == 302  # to the login page
    assert logged_in().post(url).status_code == 302
    cook = logged_in(is_staff=True)
    assert cook.post(url).status_code == 403  # staff without the order permission

    manager = logged_in(is_staff=True, is_superuser=True)
    response = manager.post(reverse("admin:orders_kitchen_step", args=[order.pk, "cancel"]), {"reason": "sold_out", "note": "no congee left"})
    assert response.json() == {"ok": True, "status": "cancelled"}
    again = manager.post(reverse("admin:orders_kitchen_step", args=[order.pk, "ready"]))
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED


def test_a_cancel_reason_must_come_from_the_translated_list(menu):
    order = place(menu, 3600)
    manager = logged_in(is_staff=True, is_superuser=True)
    url = reverse("admin:orders_kitchen_step", args=[order.pk, "cancel"])
    refused = manager.post(url, {"reason": "Sold out, sorry."})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "invalid_reason"
    assert Order.objects.get(pk=order.pk).status == Order.Status.QUEUED
    assert manager.post(url, {"reason": "equipment"}).json()["status"] == "cancelled"
    stored = Order.objects.get(pk=order.pk)
    assert (stored.cancel_reason, stored.cancel_note) == ("equipment", "")


def test_kitchen_page_and_board_render_for_staff(menu):
    place(menu, 3600)
    manager = logged_in(is_staff=True, is_superuser=True)
    page = manager.get(reverse("admin:orders_kitchen"))
    assert page.status_code == 200 and "kitchen-board" in page.content.decode()
    board = manager.get(reverse("admin:orders_kitchen_board")).json()
    assert [order["pickup_code"] for order in board["sections"]["next"]] == ["A001"]
    assert Client().get(reverse("admin:orders_kitchen_board")).status_code == 302


def test_kitchen_steps_need_the_csrf_token(menu):
    order = place(menu, 3600)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(User.objects.create_user("boss", password="pw-123456789", is_staff=True, is_superuser=True))
    assert strict.post(reverse("admin:orders_kitchen_step", args=[order.pk, "ready"])).status_code == 403
