"""Web Push from run_queue's sender to a push-service stand-in that checks what a real one checks.

The stand-in (tests/push_service.py) verifies each VAPID signature and
decrypts each payload with the keys of a subscription made as a browser
makes one; these tests read what it received, and the database's record.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import services, web_pushes, webpush
from notifications.delivery import WebPushWorker
from notifications.models import Alert, PushSubscription, WebPush
from orders import services as order_services
from orders.models import Order, Restaurant
from tests.conftest import pickup_in
from tests.push_service import HANG, PushService

pytestmark = pytest.mark.django_db(transaction=True)


def subscribe(service: PushService, customer_id: str) -> tuple[object, PushSubscription]:
    browser = service.new_subscription()
    info = browser.info()
    stored = PushSubscription.objects.create(
        customer_id=customer_id, endpoint=info["endpoint"], p256dh=info["keys"]["p256dh"], auth=info["keys"]["auth"]
    )
    return browser, stored


def place(menu, customer_id: str, *, language: str = "en"):
    order = order_services.place_order(
        customer_id=customer_id, lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(60), language=language
    )
    return order, Alert.objects.get(order=order)


def fall_due(alert: Alert) -> None:
    """The alert fell due a moment ago and no page acknowledged it."""
    now = timezone.now()
    Alert.objects.filter(pk=alert.pk).update(due_at=now - web_pushes.WAIT_FOR_PAGE)
    WebPush.objects.filter(alert=alert).update(send_after=now - timedelta(milliseconds=1))


def send_due() -> int:
    return WebPushWorker().run_once()


def test_an_alert_reaches_every_subscription_of_its_customer_once_in_their_language(menu, push_service):
    phone, _ = subscribe(push_service, "web-push-a")
    laptop, _ = subscribe(push_service, "web-push-a")
    stranger, _ = subscribe(push_service, "web-push-b")
    order, alert = place(menu, "web-push-a", language="zh-hans")
    fall_due(alert)

    assert send_due() == 2
    assert send_due() == 0  # written down: not sent again

    for browser in (phone, laptop):
        [received] = push_service.received(browser)
        assert received.message["alert"]["id"] == alert.pk
        assert received.message["alert"]["message"] == f"订单 {order.pickup_code} 已做好，请到柜台取餐。"
        assert received.message["url"] == f"/orders/{order.pk}/"
        assert received.urgency == "high"
        assert received.topic == f"alert-{alert.pk}"
        assert 12 * 3600 - 120 < received.ttl <= 12 * 3600
    assert push_service.requests(stranger) == []
    assert set(WebPush.objects.values_list("outcome", flat=True)) == {"delivered"}


def test_an_alert_a_page_acknowledged_first_is_not_sent_by_web_push(menu, push_service):
    subscribe(push_service, "web-push-a")
    _order, alert = place(menu, "web-push-a")
    fall_due(alert)
    services.acknowledge_alerts([("web-push-a", alert.pk)])

    assert send_due() == 0
    assert push_service.requests() == []


def test_a_withdrawn_alert_is_not_sent(menu, push_service):
    subscribe(push_service, "web-push-a")
    order, alert = place(menu, "web-push-a")
    fall_due(alert)
    order_services.cancel_order(customer_id="web-push-a", order_id=order.pk)

    send_due()
    assert push_service.requests() == []


def test_a_rescheduled_alert_is_owed_again_at_its_new_time(menu, push_service):
    browser, _ = subscribe(push_service, "web-push-a")
    order, alert = place(menu, "web-push-a")
    later = order.pickup_at + timedelta(minutes=5)
    services.schedule_alert(order=order, kind=alert.kind, due_at=later)
    assert WebPush.objects.get(alert=alert).send_after == later + web_pushes.WAIT_FOR_PAGE


@pytest.mark.parametrize("status", [429, 500])
def test_a_busy_or_failing_push_service_is_tried_again_after_its_retry_after(menu, push_service, status):
    browser, _ = subscribe(push_service, "web-push-a")
    _order, alert = place(menu, "web-push-a")
    fall_due(alert)
    push_service.answer(status, times=1, retry_after=30)

    send_due()
    row = WebPush.objects.get(alert=alert)
    assert row.finished_at is None and row.attempts == 1
    assert row.send_after >= timezone.now() + timedelta(seconds=28)  # Retry-After honoured
    assert send_due() == 0  # not before then

    fall_due(alert)
    send_due()
    assert [request.status for request in push_service.requests(browser)] == [status, 201]
    assert WebPush.objects.get(alert=alert).outcome == "delivered"


def test_a_push_service_that_never_answers_is_a_failed_attempt(menu, push_service, monkeypatch):
    monkeypatch.setattr(webpush, "TIMEOUT_SECONDS", 0.5)
    browser, _ = subscribe(push_service, "web-push-a")
    _order, alert = place(menu, "web-push-a")
    fall_due(alert)
    push_service.answer(HANG, times=1)

    send_due()
    row = WebPush.objects.get(alert=alert)
    assert row.finished_at is None and row.attempts == 1 and row.claim_token == ""

    fall_due(alert)
    send_due()
    assert len(push_service.received(browser)) == 1


def test_a_send_slower_than_the_lease_keeps_its_claim_and_is_not_sent_twice(menu, push_service, settings, monkeypatch):
    """The push service holds the request past the lease: its sender renews the
    lease, so no other worker takes the row over and sends the attempt again."""
    settings.PICKUP_CLAIM_LEASE_SECONDS = 3
    monkeypatch.setattr(webpush, "TIMEOUT_SECONDS", 120)  # the hold ends by release(), not by timing out
    browser, _ = subscribe(push_service, "web-push-a")
    _order, alert = place(menu, "web-push-a")
    fall_due(alert)
    push_service.answer(HANG, times=1)
    sender = threading.Thread(target=send_due)
    sender.start()
    try:
        push_service.wait_for(1, browser, accepted=False, timeout=60)
        first_lease_end = WebPush.objects.get(alert=alert).claimed_until
        deadline = time.monotonic() + 60
        while timezone.now() <= first_lease_end or WebPush.objects.get(alert=alert).claimed_until <= first_lease_end:
            assert time.monotonic() < deadline, "the lease of a send in flight was not renewed"
            time.sleep(0.05)
        assert web_pushes.claim_due(10) == []  # past the first lease: another worker finds nothing to take
    finally:
        push_service.release()  # 503: a failed attempt
        sender.join(60)
    row = WebPush.objects.get(alert=alert)
    assert (row.attempts, row.claim_token, row.claimed_until) == (1, "", None)  # written down by its own sender
    assert len(push_service.requests(browser)) == 1


def test_a_subscription_the_browser_dropped_is_deleted_and_never_used_again(menu, push_service):
    browser, stored = subscribe(push_service, "web-push-a")
    push_service.unsubscribe(browser, gone=True)
    _order, alert = place(menu, "web-push-a")
    fall_due(alert)

    send_due()
    assert [request.status for request in push_service.requests(browser)] == [410]
    assert not PushSubscription.objects.filter(pk=stored.pk).exists()

    _order, second = place(menu, "web-push-a")
    fall_due(second)
    send_due()
    assert len(push_service.requests(browser)) == 1


def test_a_message_the_service_rejects_is_not_tried_again(menu, push_service):
    browser, stored = subscribe(push_service, "web-push-a")
    stored.auth = "AAAAAAAAAAAAAAAAAAAAAA"  # a browser's keys garbled: the service cannot decrypt
    stored.save()
    _order, alert = place(menu, "web-push-a")
    fall_due(alert)

    send_due()
    fall_due(alert)
    send_due()
    assert [request.status for request in push_service.requests(browser)] == [400]
    assert WebPush.objects.get(alert=alert).outcome.startswith("rejected")


def test_the_longest_alert_fits_a_push_message(menu, push_service):
    """Push services take 4,096 bytes (413 above): a cancellation with the longest
    reason and note, in Chinese (three bytes a character), under the longest
    restaurant name, must still fit."""
    browser, _ = subscribe(push_service, "web-push-a")
    order, alert = place(menu, "web-push-a", language="zh-hans")
    Restaurant.objects.update(name="餐" * Restaurant._meta.get_field("name").max_length)
    Restaurant.forget_current()
    longest_reason = max(Order.CancelReason.values, key=len)
    Order.objects.filter(pk=order.pk).update(
        cancel_reason=longest_reason, cancel_note="消" * Order._meta.get_field("cancel_note").max_length
    )
    Alert.objects.filter(pk=alert.pk).update(kind=Alert.Kind.CANCELLED)
    fall_due(alert)

    send_due()
    [received] = push_service.received(browser)
    assert "消" * 200 in received.message["alert"]["message"]
