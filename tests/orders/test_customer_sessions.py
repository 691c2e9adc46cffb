"""A visitor who only looks stores nothing; a session starts when the customer orders, and stays theirs."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from orders import limits
from orders.models import Order
from tests.conftest import connected, customer_communicator, order_message, pickup_in

VISITS = 25


def browser() -> Client:
    """A browser as far as Django can tell: it sends cookies back, and CSRF is checked."""
    return Client(enforce_csrf_checks=True)


def start_session(client: Client) -> int:
    """What the page does before the first order: POST /session/ with the page's CSRF token."""
    token = client.cookies["csrftoken"].value
    return client.post(reverse("orders:start_session"), HTTP_X_CSRFTOKEN=token).status_code


@pytest.mark.django_db
def test_cookieless_visits_to_the_order_page_and_pickup_times_store_no_session(menu):
    for _ in range(VISITS):
        visitor = Client()  # no cookie at all, as a script or a first visit
        page = visitor.get("/")
        assert page.status_code == 200
        assert visitor.get(reverse("orders:pickup_times")).status_code == 200
        assert settings.SESSION_COOKIE_NAME not in page.cookies
        # The page's CSRF token is a cookie of its own, not a session.
        assert "csrftoken" in page.cookies
    assert Session.objects.count() == 0


@pytest.mark.django_db
def test_a_visitor_has_no_orders_and_no_order_pages(menu):
    visitor = browser()
    assert "No orders yet." in visitor.get("/").content.decode()
    assert visitor.get(reverse("orders:order_detail", args=[1])).status_code == 404
    assert Session.objects.count() == 0


@pytest.mark.django_db
def test_starting_a_session_needs_the_pages_csrf_token(menu):
    stranger = browser()
    assert stranger.post(reverse("orders:start_session")).status_code == 403
    assert Session.objects.count() == 0

    customer = browser()
    customer.get("/")
    assert start_session(customer) == 204
    assert start_session(customer) == 204  # again (another tab): the same customer
    assert Session.objects.count() == 1


@pytest.mark.django_db(transaction=True)
async def test_a_customer_who_orders_keeps_their_session_and_sees_their_orders_after_reload(menu):
    customer = browser()
    await sync_to_async(customer.get)("/")
    assert await sync_to_async(start_session)(customer) == 204
    session_key = customer.cookies[settings.SESSION_COOKIE_NAME].value

    async with connected(session_key) as socket:
        await socket.send_json_to(order_message(menu, pickup_at=pickup_in(3600)))
        reply = await socket.receive_json_from(timeout=5)
    assert reply["type"] == "order.accepted"

    page = await sync_to_async(customer.get)("/")  # the reload
    assert reply["order"]["pickup_code"] in page.content.decode()
    detail = await sync_to_async(customer.get)(reverse("orders:order_detail", args=[reply["order"]["id"]]))
    assert detail.status_code == 200
    assert customer.cookies[settings.SESSION_COOKIE_NAME].value == session_key
    assert await Session.objects.acount() == 1


@pytest.mark.django_db(transaction=True)
async def test_a_visitors_socket_is_open_but_may_not_order_until_a_session_starts(menu):
    socket = customer_communicator(None)
    connected_ok, _ = await socket.connect()
    assert connected_ok
    try:
        assert await socket.receive_json_from(timeout=5) == {"type": "session.ready", "orders": []}
        await socket.send_json_to(order_message(menu, pickup_at=pickup_in(3600)))
        refusal = await socket.receive_json_from(timeout=5)
        assert (refusal["type"], refusal["code"], refusal["request_id"]) == ("error", "no_session", "r1")
        await socket.send_json_to({"type": "ping", "request_id": "still-open"})
        assert await socket.receive_json_from(timeout=5) == {"type": "pong", "request_id": "still-open"}
    finally:
        await socket.disconnect()
    assert not await Order.objects.aexists()


@pytest.mark.django_db
def test_one_address_starting_too_many_sessions_is_refused_with_a_retry_hint_and_others_are_not(menu, settings, monkeypatch):
    settings.PICKUP_SESSIONS_PER_MINUTE_PER_ADDRESS = 3
    monkeypatch.setattr(limits, "clock", lambda: 1_800_000_000.0)  # the start of a minute, held still
    customers = [browser() for _ in range(3)]
    for customer in customers:
        customer.get("/")
        assert start_session(customer) == 204

    script = browser()
    script.get("/")
    refused = script.post(reverse("orders:start_session"), HTTP_X_CSRFTOKEN=script.cookies["csrftoken"].value)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["retry_after"] == 60 and refused["Retry-After"] == "60"
    assert "60 seconds" in refused.json()["message"]
    assert Session.objects.count() == 3  # nothing stored for the refused one

    assert start_session(customers[0]) == 204  # a customer who has one keeps it (another tab)
    elsewhere = Client(enforce_csrf_checks=True, REMOTE_ADDR="203.0.113.9")
    elsewhere.get("/")
    assert start_session(elsewhere) == 204  # another address has its own allowance
    assert Session.objects.count() == 4
