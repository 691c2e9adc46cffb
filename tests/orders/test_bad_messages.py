"""Bad input gets a clear error, the socket stays usable and nothing is stored."""

from __future__ import annotations

import json
import logging

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from notifications.models import Alert
from orders.models import Order, OrderLine
from tests.conftest import connected, customer_session, move_pickup, order_message, pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


def good(menu, **changes) -> dict:
    message = {
        "type": "order.place",
        "items": [{"menu_item": menu["set"].pk, "quantity": 1}],
        "pickup_at": pickup_in(3600).isoformat(),
    }
    message.update(changes)
    return message


BAD_ORDERS = {
    "missing items": (lambda m: {k: v for k, v in good(m).items() if k != "items"}, "no_items"),
    "empty items": (lambda m: good(m, items=[]), "no_items"),
    "items not a list": (lambda m: good(m, items="congee"), "no_items"),
    "item not an object": (lambda m: good(m, items=[3]), "invalid_item"),
    "unknown item": (lambda m: good(m, items=[{"menu_item": 999_999, "quantity": 1}]), "unknown_item"),
    "missing item id": (lambda m: good(m, items=[{"quantity": 1}]), "unknown_item"),
    "item id as text": (lambda m: good(m, items=[{"menu_item": "1; DROP TABLE", "quantity": 1}]), "unknown_item"),
    "quantity zero": (lambda m: good(m, items=[{"menu_item": m["set"].pk, "quantity": 0}]), "invalid_quantity"),
    "quantity negative": (lambda m: good(m, items=[{"menu_item": m["set"].pk, "quantity": -3}]), "invalid_quantity"),
    "quantity huge": (lambda m: good(m, items=[{"menu_item": m["set"].pk, "quantity": 10**12}]), "invalid_quantity"),
    "quantity fraction": (lambda m: good(m, items=[{"menu_item": m["set"].pk, "quantity": 1.5}]), "invalid_quantity"),
    "quantity as text": (lambda m: good(m, items=[{"menu_item": m["set"].pk, "quantity": "2"}]), "invalid_quantity"),
    "quantity bool": (lambda m: good(m, items=[{"menu_item": m["set"].pk, "quantity": True}]), "invalid_quantity"),
    "same item over the limit in two lines": (
        lambda m: good(m, items=[{"menu_item": m["set"].pk, "quantity": 15}] * 2), "invalid_quantity"),
    "too many lines": (lambda m: good(m, items=[{"menu_item": m["set"].pk, "quantity": 1}] * 21), "too_many_items"),
    "missing pickup time": (lambda m: {k: v for k, v in good(m).items() if k != "pickup_at"}, "invalid_pickup_time"),
    "unparseable pickup time": (lambda m: good(m, pickup_at="tomorrow at eight"), "invalid_pickup_time"),
    "impossible date": (lambda m: good(m, pickup_at="2026-02-30T08:00:00+08:00"), "invalid_pickup_time"),
    "pickup time as number": (lambda m: good(m, pickup_at=1764000000), "invalid_pickup_time"),
    "past pickup time": (lambda m: good(m, pickup_at=pickup_in(-60).isoformat()), "pickup_time_past"),
    "pickup time far ahead": (lambda m: good(m, pickup_at=pickup_in(86400 * 60).isoformat()), "too_far_ahead"),
    "item id beyond 64 bits": (lambda m: good(m, items=[{"menu_item": 2**63, "quantity": 1}]), "unknown_item"),
    "item id below 64 bits": (lambda m: good(m, items=[{"menu_item": -(2**63) - 1, "quantity": 1}]), "unknown_item"),
    "largest 64-bit item id": (lambda m: good(m, items=[{"menu_item": 2**63 - 1, "quantity": 1}]), "unknown_item"),
    "quantity beyond 64 bits": (lambda m: good(m, items=[{"menu_item": m["set"].pk, "quantity": 2**64}]), "invalid_quantity"),
    "pickup time at the calendar's end": (lambda m: good(m, pickup_at="9999-12-31T23:59:59+00:00"), "invalid_pickup_time"),
    "pickup time at the calendar's start": (lambda m: good(m, pickup_at="0001-01-01T00:00:00+08:00"), "invalid_pickup_time"),
    "pickup time in year 8999": (lambda m: good(m, pickup_at="8999-06-01T08:00:00+08:00"), "too_far_ahead"),
}


async def assert_socket_still_usable(socket):
    await socket.send_json_to({"type": "ping", "request_id": "still-there"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong", "request_id": "still-there"}


async def assert_nothing_stored(clean_redis):
    assert await Order.objects.acount() == 0
    assert await OrderLine.objects.acount() == 0
    assert await Alert.objects.acount() == 0
    assert clean_redis.zcard("pickup-test:kitchen_queue") == 0


def assert_no_traceback_logged(caplog):
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


@pytest.mark.parametrize("case", BAD_ORDERS, ids=list(BAD_ORDERS))
async def test_bad_order_gets_a_clear_error_and_stores_nothing(case, menu, clean_redis, caplog):
    build, code = BAD_ORDERS[case]
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        await socket.send_json_to({**build(menu), "request_id": "bad"})
        reply = await socket.receive_json_from(timeout=5)
        assert reply["type"] == "error"
        assert reply["code"] == code
        assert reply["request_id"] == "bad"
        assert reply["message"] and "Traceback" not in reply["message"]
        await assert_socket_still_usable(socket)
    await assert_nothing_stored(clean_redis)
    assert_no_traceback_logged(caplog)


BAD_FRAMES = {
    "not json": ("{order: congee", "invalid_json"),
    "json but not an object": ("[1, 2, 3]", "invalid_message"),
    "no type": (json.dumps({"items": []}), "unknown_type"),
    "unknown type": (json.dumps({"type": "order.steal"}), "unknown_type"),
    "type not a string": (json.dumps({"type": ["ping"]}), "unknown_type"),
    "a channel-layer event's type": (json.dumps({"type": "pickup.alert", "alert": {}}), "unknown_type"),
    "request id not a string": (json.dumps({"type": "ping", "request_id": {"x": 1}}), "invalid_message"),
    "ack without id": (json.dumps({"type": "alert.ack"}), "invalid_alert_id"),
    "ack of unknown alert": (json.dumps({"type": "alert.ack", "alert_id": 424242}), "alert_not_found"),
    "ack of alert id beyond 64 bits": (json.dumps({"type": "alert.ack", "request_id": "bad", "alert_id": 2**63}), "invalid_alert_id"),
    "ack of negative alert id": (json.dumps({"type": "alert.ack", "request_id": "bad", "alert_id": -(2**70)}), "invalid_alert_id"),
    "cancel of order id beyond 64 bits": (json.dumps({"type": "order.cancel", "request_id": "bad", "order_id": 2**63}), "order_not_found"),
    "reschedule of order id beyond 64 bits": (
        json.dumps({"type": "order.reschedule", "request_id": "bad", "order_id": 2**64, "pickup_at": "2030-01-01T08:00:00+08:00"}), "order_not_found"),
    "reschedule to the calendar's end": (
        json.dumps({"type": "order.reschedule", "request_id": "bad", "order_id": 1, "pickup_at": "9999-12-31T23:59:59+00:00"}), "invalid_pickup_time"),
    # 8,000 nested arrays fit in 16 KiB and are deeper than the JSON parser recurses.
    "nested 8,000 deep": ("[" * 8000 + "]" * 8000, "invalid_json"),
    "nested 8,000 deep in an object": ('{"type": "ping", "x": ' + "[" * 8000 + "]" * 8000 + "}", "invalid_json"),
}


@pytest.mark.parametrize("case", BAD_FRAMES, ids=list(BAD_FRAMES))
async def test_malformed_message_gets_an_error_and_the_socket_stays_open(case, menu, clean_redis, caplog):
    frame, code = BAD_FRAMES[case]
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        await socket.send_to(text_data=frame)
        reply = await socket.receive_json_from(timeout=5)
        assert reply["type"] == "error" and reply["code"] == code
        if '"request_id": "bad"' in frame:
            assert reply["request_id"] == "bad"
        await assert_socket_still_usable(socket)
    await assert_nothing_stored(clean_redis)
    assert_no_traceback_logged(caplog)


async def test_binary_frame_and_oversized_message_are_refused(menu, clean_redis):
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        await socket.send_to(bytes_data=b"\x00\x01")
        assert (await socket.receive_json_from(timeout=5))["code"] == "invalid_json"
        huge = json.dumps({**good(menu), "padding": "x" * (settings.PICKUP_MAX_MESSAGE_BYTES + 1)})
        await socket.send_to(text_data=huge)
        assert (await socket.receive_json_from(timeout=5))["code"] == "message_too_large"
        await assert_socket_still_usable(socket)
    await assert_nothing_stored(clean_redis)


async def test_sold_out_item_is_refused(menu, clean_redis):
    menu["congee"].is_available = False
    await menu["congee"].asave()
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        await socket.send_json_to(good(menu, items=[{"menu_item": menu["congee"].pk, "quantity": 1}]))
        reply = await socket.receive_json_from(timeout=5)
    assert reply["code"] == "item_unavailable"
    await assert_nothing_stored(clean_redis)


async def test_a_failure_inside_the_transaction_leaves_nothing_half_written(menu, clean_redis, monkeypatch):
    """If anything fails after the order row is written, the whole order is rolled back."""
    from orders import payments
    from pickup.errors import PickupError

    def declined(**kwargs):
        raise PickupError("payment_declined", "The payment was declined.")

    monkeypatch.setattr(payments, "charge", declined)
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        await socket.send_json_to(good(menu))
        reply = await socket.receive_json_from(timeout=5)
        assert reply["code"] == "payment_declined"
        await assert_socket_still_usable(socket)
    await assert_nothing_stored(clean_redis)


async def next_of_type(socket, kind: str) -> dict:
    """The next message of this type, past pushes about the order (order.updated)."""
    while True:
        message = await socket.receive_json_from(timeout=5)
        if message["type"] == kind:
            return message


async def test_a_flood_of_bad_acknowledgements_never_fails_another_customers(menu, caplog):
    honest_key, _ = await customer_session()
    noisy_key, _ = await customer_session()
    async with connected(honest_key) as honest, connected(noisy_key) as noisy:
        await honest.send_json_to(order_message(menu, pickup_at=pickup_in(3600)))
        accepted = await honest.receive_json_from(timeout=5)
        assert accepted["type"] == "order.accepted", accepted
        await database_sync_to_async(move_pickup)(accepted["order"]["id"], pickup_in(-1))  # due, once accepted
        alert = await next_of_type(honest, "alert")
        # The noisy socket's acknowledgements, ids no database column can hold,
        # arrive in the same instant as the honest one's.
        for n in range(50):
            await noisy.send_json_to({"type": "alert.ack", "request_id": f"bad-{n}", "alert_id": 2**63 + n})
        await honest.send_json_to({"type": "alert.ack", "request_id": "ack", "alert_id": alert["alert"]["id"]})
        replies = [await noisy.receive_json_from(timeout=5) for _ in range(50)]
        assert {reply["code"] for reply in replies} == {"invalid_alert_id"}
        assert await next_of_type(honest, "alert.acked") == {
            "type": "alert.acked", "request_id": "ack", "alert_id": alert["alert"]["id"]}
    assert (await Alert.objects.aget(pk=alert["alert"]["id"])).acknowledged_at is not None
    assert [record for record in caplog.records if record.name == "pickup.batching"] == []


async def test_repeated_bad_messages_are_logged_once_per_socket(menu, caplog):
    caplog.set_level(logging.INFO, logger="orders.sockets")
    first_key, _ = await customer_session()
    second_key, _ = await customer_session()
    async with connected(first_key) as first, connected(second_key) as second:
        for frame in ["{oops", "[1]", '{"type": "alert.ack", "alert_id": 18446744073709551616}'] * 10:
            await first.send_to(text_data=frame)
            assert (await first.receive_json_from(timeout=5))["type"] == "error"
        await second.send_to(text_data="{oops")
        assert (await second.receive_json_from(timeout=5))["code"] == "invalid_json"
        await assert_socket_still_usable(first)
    logged = [record for record in caplog.records if record.name == "orders.sockets"]
    assert len(logged) == 2  # one per socket, not one per message
    assert all(record.exc_info is None for record in logged)
