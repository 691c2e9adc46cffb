"""Dates, labels and the order's state read naturally in each language, straight from the server."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation

from orders import dates, services
from orders.customers import SESSION_KEY
from orders.models import Order
from tests.conftest import pickup_in

SUNDAY_MORNING = datetime(2026, 11, 29, 10, 45, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "Sun 29 Nov 10:45"), ("zh-hans", "11月29日 周日 10:45")],
)
def test_a_pickup_time_reads_as_people_write_it(language, expected):
    with translation.override(language):
        assert dates.pickup_label(SUNDAY_MORNING) == expected


@pytest.mark.django_db
def test_a_ready_order_page_shows_the_lasting_ready_state_in_chinese(client, menu):
    session = client.session
    session[SESSION_KEY] = "customer-zh"
    session.save()
    order = services.place_order(
        customer_id="customer-zh", lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(3600), language="zh-hans"
    )
    services.change_status(order, Order.Status.READY)

    page = client.get(f"/orders/{order.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert f"已做好 — 请在取餐台出示 {order.pickup_code}。" in page
    assert 'data-status="ready"' in page
    assert "取餐时间：" in page and "状态：" in page
    assert menu["set"].name_zh_hans in page


@pytest.mark.django_db
def test_switching_the_page_language_moves_the_customers_open_orders_to_it(client, menu):
    session = client.session
    session[SESSION_KEY] = "customer-switching"
    session.save()
    waiting = services.place_order(customer_id="customer-switching", lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(3600))
    closed = services.place_order(customer_id="customer-switching", lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(3600))
    services.change_status(closed, Order.Status.CANCELLED)

    client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert Order.objects.get(pk=waiting.pk).language == "zh-hans"  # its alert and updates now read in Chinese
    assert Order.objects.get(pk=closed.pk).language == "en"  # history stays as it was
