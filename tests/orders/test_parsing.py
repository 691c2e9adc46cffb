"""One parser for client messages: every type has one, and it hands over typed values."""

from __future__ import annotations

from datetime import datetime

import pytest

from orders import parsing
from orders.consumers import CustomerConsumer, KitchenConsumer
from orders.parsing import BadMessage, parse_request


def test_every_client_message_type_has_one_parser_and_one_customer_handler():
    assert set(CustomerConsumer.handlers) == set(parsing.REQUESTS) == {
        "order.place", "order.cancel", "order.reschedule", "alert.ack", "ping"}
    assert set(KitchenConsumer.handlers) == {"ping"}


def test_a_reschedule_arrives_as_an_integer_id_and_an_aware_time_in_the_restaurants_zone():
    request = parse_request(
        {"type": "order.reschedule", "order_id": 17, "pickup_at": "2030-01-07T08:30:00"}, CustomerConsumer.handlers
    )
    assert request == parsing.RescheduleOrder(order_id=17, pickup_at=request.pickup_at)
    assert isinstance(request.pickup_at, datetime) and request.pickup_at.utcoffset().total_seconds() == 8 * 3600


def test_a_type_the_socket_does_not_handle_is_unknown_before_its_fields_are_read():
    # The kitchen handles only ping: an order.place without items is an unknown type there, not "no items".
    with pytest.raises(BadMessage) as refused:
        parse_request({"type": "order.place"}, KitchenConsumer.handlers)
    assert refused.value.code == "unknown_type"
