"""What an alert says: each customer's own language and the restaurant's time, however many are rendered together."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from notifications.models import Alert
from notifications.payloads import alert_messages, alert_payload
from notifications.sender import customer_group
from orders import services
from orders.models import Order
from tests.conftest import pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


def place(menu, customer_id: str, language: str) -> Order:
    return services.place_order(
        customer_id=customer_id, lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(3600), language=language
    )


def test_alerts_claimed_together_each_read_in_their_customers_language_in_claim_order(menu):
    english = place(menu, "customer-en", "en")
    chinese = place(menu, "customer-zh", "zh-hans")
    place(menu, "customer-en-2", "en")
    cancelled = place(menu, "customer-zh-2", "zh-hans")
    services.change_status(cancelled, Order.Status.CANCELLED, reason="sold_out")
    alerts = list(Alert.objects.filter(cancelled_at=None).select_related("order").order_by("pk"))
    assert [alert.order.language for alert in alerts] == ["en", "zh-hans", "en", "zh-hans"]

    messages = alert_messages(alerts)

    assert [group for group, _ in messages] == [customer_group(alert.customer_id) for alert in alerts]
    one_by_one = [{"type": "pickup.alert", "alert": alert_payload(alert)} for alert in alerts]
    assert [message for _, message in messages] == one_by_one
    by_order = {message["alert"]["order_id"]: message["alert"] for _, message in messages}
    assert by_order[english.pk]["message"] == f"Order {english.pickup_code} is ready, please collect it at the counter."
    assert by_order[chinese.pk]["message"] == f"订单 {chinese.pickup_code} 已做好，请到柜台取餐。"
    assert by_order[cancelled.pk]["message"].startswith(f"订单 {cancelled.pickup_code} 已取消：")
    restaurant_offset = alerts[0].due_at.astimezone(ZoneInfo(settings.TIME_ZONE)).isoformat()[-6:]
    assert all(message["alert"]["due_at"].endswith(restaurant_offset) for _, message in messages)
