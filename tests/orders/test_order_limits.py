"""One script must not empty every pickup slot: orders per minute per customer
and per address, and a cap on open orders, over the real socket and Redis."""

from __future__ import annotations

import contextlib
import logging

import pytest
from django.contrib import messages
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from orders import limits, services
from orders.models import Order
from pickup import busy
from pickup.redis_clients import RedisPlace
from pickup.redis_server import free_port
from tests.conftest import customer_communicator, customer_session, order_message, pickup_in, redis_out_of_reach

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.asynccontextmanager
async def socket_from(address: str, session_key: str):
    communicator = customer_communicator(session_key)
    # The scope is read when the consumer starts, at connect: this is the
    # connection's peer daphne puts there, the client address with no trusted
    # proxy in front (pickup/addresses.py).
    communicator.scope["client"] = [address, 50000]
    connected, _ = await communicator.connect()
    assert connected
    try:
        assert (await communicator.receive_json_from(timeout=5))["type"] == "session.ready"
        yield communicator
    finally:
        await communicator.disconnect()


async def place(socket, menu, request_id: str) -> dict:
    await socket.send_json_to(order_message(menu, pickup_at=pickup_in(3600), request_id=request_id))
    return await socket.receive_json_from(timeout=5)


@pytest.fixture(autouse=True)
def one_minute(monkeypatch):
    """The counters' clock held at the start of a window, so a test never straddles two."""
    monkeypatch.setattr(limits, "clock", lambda: 1_800_000_000.0)


@pytest.fixture
def order_limits(settings):
    settings.PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER = 3
    settings.PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS = 5
    settings.PICKUP_OPEN_ORDERS_PER_CUSTOMER = 0


async def test_a_customer_over_the_per_minute_limit_is_refused_with_a_retry_hint_and_nothing_stored(menu, order_limits):
    session_key, customer_id = await customer_session()
    async with socket_from("198.51.100.7", session_key) as socket:
        replies = [await place(socket, menu, f"r{n}") for n in range(5)]
        # The socket stays usable after a refusal.
        await socket.send_json_to({"type": "ping", "request_id": "still-there"})
        assert (await socket.receive_json_from(timeout=5))["type"] == "pong"

    assert [reply["type"] for reply in replies] == ["order.accepted"] * 3 + ["error"] * 2
    refusal = replies[3]
    assert refusal["code"] == "rate_limited" and refusal["request_id"] == "r3"
    assert refusal["retry_after"] == limits.WINDOW_SECONDS  # the whole window is left
    assert str(refusal["retry_after"]) in refusal["message"]
    assert await Order.objects.filter(customer_id=customer_id).acount() == 3


async def test_another_customer_still_orders_while_one_is_refused(menu, order_limits):
    flooder, _ = await customer_session()
    honest, honest_id = await customer_session()
    async with socket_from("198.51.100.7", flooder) as socket:
        for n in range(4):
            await place(socket, menu, f"f{n}")
    async with socket_from("203.0.113.9", honest) as socket:
        reply = await place(socket, menu, "mine")
    assert reply["type"] == "order.accepted"
    assert await Order.objects.filter(customer_id=honest_id).acount() == 1


async def test_fresh_sessions_from_one_address_share_the_address_limit(menu, order_limits):
    replies = []
    for _ in range(3):  # a script opening a new session whenever one is refused
        session_key, _customer = await customer_session()
        async with socket_from("198.51.100.7", session_key) as socket:
            replies += [await place(socket, menu, f"r{n}") for n in range(2)]
    codes = [reply.get("code", reply["type"]) for reply in replies]
    assert codes == ["order.accepted"] * 5 + ["rate_limited"]


async def test_open_orders_are_capped_per_customer(menu, settings):
    settings.PICKUP_OPEN_ORDERS_PER_CUSTOMER = 2
    session_key, customer_id = await customer_session()
    async with socket_from("198.51.100.7", session_key) as socket:
        replies = [await place(socket, menu, f"r{n}") for n in range(3)]
        first = await Order.objects.aget(pk=replies[0]["order"]["id"])
        await socket.send_json_to({"type": "order.cancel", "request_id": "c", "order_id": first.pk})
        while (await socket.receive_json_from(timeout=5)).get("request_id") != "c":
            pass
        after_cancel = await place(socket, menu, "again")
    assert [reply.get("code", reply["type"]) for reply in replies] == [
        "order.accepted", "order.accepted", "too_many_open_orders",
    ]
    assert after_cancel["type"] == "order.accepted"
    assert await Order.objects.filter(customer_id=customer_id).exclude(status=Order.Status.CANCELLED).acount() == 2


def test_a_new_minute_lets_the_customer_order_again(settings, clean_redis):
    settings.PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER = 1
    settings.PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS = 0
    start = 1_800_000_000.0  # the start of a window
    assert limits.count_order_attempts([("c1", "")], now=start) == [None]
    assert limits.count_order_attempts([("c1", "")], now=start + 10) == [50]
    assert limits.count_order_attempts([("c1", "")], now=start + limits.WINDOW_SECONDS) == [None]


@pytest.fixture
def kitchen_staff(db) -> User:
    user = User.objects.create_user("cook", password="a long kitchen password 42", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_order", "change_order"]))
    return user


def test_staff_see_a_blocked_customer_and_clear_them(client, kitchen_staff, settings, clean_redis):
    settings.PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER = 1
    settings.PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS = 0
    limits.count_order_attempts([("flooder42", ""), ("flooder42", "")])
    client.force_login(kitchen_staff)

    page = client.get(reverse("admin:orders_blocked"))
    assert page.status_code == 200 and "flooder42" in page.content.decode()

    cleared = client.post(reverse("admin:orders_blocked"), {"kind": "customer", "who": "flooder42"}, follow=True)
    assert "Cleared: flooder42 may order again." in cleared.content.decode()
    assert limits.blocked_now() == []
    assert limits.count_order_attempts([("flooder42", "")]) == [None]


UNREADABLE = (
    "The list of refused customers cannot be read right now: Redis is not reachable. "
    "Until it is back, orders are refused as “server busy”."
)


def shown(page) -> list[tuple[int, str]]:
    return [(message.level, str(message)) for message in page.context["messages"]]


def test_the_refused_list_says_redis_is_out_of_reach_instead_of_failing(client, kitchen_staff, settings, caplog):
    client.force_login(kitchen_staff)
    client.raise_request_exception = False  # a failing page shows its 500 here

    with redis_out_of_reach(settings):
        page = client.get(reverse("admin:orders_blocked"))
        assert page.status_code == 200
        assert shown(page) == [(messages.WARNING, UNREADABLE)]
        assert "Nobody is refused right now." not in page.content.decode()  # not known: not said
        in_chinese = client.get(reverse("admin:orders_blocked"), HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert in_chinese.status_code == 200 and "Redis 无法连接" in in_chinese.content.decode()

    said = [record for record in caplog.records if record.name == "orders.limits"]
    assert [(record.levelname, record.exc_info) for record in said] == [("WARNING", None)] * 2  # one line per page
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_clearing_while_redis_is_out_of_reach_says_so_and_clears_nothing(client, kitchen_staff, settings, clean_redis):
    settings.PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER = 1
    settings.PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS = 0
    limits.count_order_attempts([("flooder42", ""), ("flooder42", "")])
    client.force_login(kitchen_staff)
    client.raise_request_exception = False

    with redis_out_of_reach(settings):
        cleared = client.post(reverse("admin:orders_blocked"), {"kind": "customer", "who": "flooder42"}, follow=True)

    assert cleared.redirect_chain == [(reverse("admin:orders_blocked"), 302)]
    assert shown(cleared) == [
        (
            messages.ERROR,
            "flooder42 could not be cleared: Redis is not reachable. "
            "Until it is back, orders are refused as “server busy”; clear it again then.",
        ),
        (messages.WARNING, UNREADABLE),
    ]
    # Redis back: still refused, as the page said.
    assert [block.who for block in limits.blocked_now()] == ["flooder42"]
    assert limits.count_order_attempts([("flooder42", "")]) != [None]


def test_staff_without_order_permissions_cannot_see_blocked_customers(client, db):
    user = User.objects.create_user("visitor", password="a long visitor password 42", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:orders_blocked")).status_code == 403


def test_orders_redis_cannot_count_are_refused_server_busy_with_nothing_stored(menu, order_limits, settings):
    """Redis out of reach (a failover's window, an outage): refused for a few seconds, each order, as a value."""
    nobody_listens = RedisPlace.from_settings(f"redis://127.0.0.1:{free_port()}/0", [], "")
    settings.CACHES = {"default": nobody_listens.cache(key_prefix="unreachable", socket_timeout=1, connect_timeout=1)}
    orders = [
        services.NewOrder(f"customer-{n}", [(menu["set"].pk, 1)], pickup_in(3600), address="198.51.100.7") for n in range(3)
    ]

    results = services.place_orders(orders)

    assert [(result.code, result.retry_after) for result in results] == [("server_busy", busy.RETRY_AFTER_SECONDS)] * 3
    assert not Order.objects.exists()
