"""What the senders count for the operator: pushes by sender and outcome, first pushes, lateness, acknowledgements.

The counts are read from the process's own registry (no PROMETHEUS_MULTIPROC_DIR
in the test process), as differences, since other tests count too.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from notifications import delivery, services
from notifications.delivery import Pushes, WebPushWorker
from notifications.models import Alert, WebPush
from notifications.transports import DELIVERED, REFUSED
from orders import services as order_services
from tests.conftest import pickup_in
from tests.notifications.test_web_push import fall_due as web_push_fall_due
from tests.notifications.test_web_push import place, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Difference:
    """What a block of code added to some samples."""

    def __init__(self, *samples: tuple) -> None:
        self.samples = samples

    def __enter__(self):
        self.before = [counted(name, **labels) for name, labels in self.samples]
        return self

    def __exit__(self, *exc) -> None:
        self.added = [counted(name, **labels) - before for (name, labels), before in zip(self.samples, self.before)]


def due_alerts(menu, count: int, *, ago: timedelta) -> list[Alert]:
    orders = [
        order_services.place_order(customer_id=f"metrics{n}", lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(60))
        for n in range(count)
    ]
    Alert.objects.filter(order__in=orders).update(due_at=timezone.now() - ago)
    return list(Alert.objects.filter(order__in=orders))


def test_run_queues_first_pushes_are_counted_with_their_lateness(menu):
    due_alerts(menu, 3, ago=timedelta(seconds=2))
    watched = (
        ("pickup_alert_pushes_total", {"transport": "socket", "sender": "run_queue", "outcome": "delivered"}),
        ("pickup_alert_first_pushes_total", {"sender": "run_queue"}),
        ("pickup_alert_lateness_seconds_count", {"sender": "run_queue"}),
        ("pickup_alert_lateness_seconds_bucket", {"sender": "run_queue", "le": "1.0"}),
        ("pickup_alert_first_pushes_total", {"sender": "timer"}),
    )
    with Difference(*watched) as first_round:
        assert delivery.deliver_due() == 3
    assert first_round.added == [3, 3, 3, 0, 0]  # due 2 s before: none within 1 s

    Alert.objects.update(resend_after=timezone.now() - timedelta(seconds=1))  # nobody acknowledged them
    with Difference(*watched) as again:
        assert delivery.deliver_due() == 3
    assert again.added == [3, 0, 0, 0, 0]  # pushed again: not a first push


def test_a_timers_push_is_counted_for_the_timer_and_a_refusal_as_refused(menu):
    [alert] = due_alerts(menu, 1, ago=timedelta(milliseconds=1))
    watched = (
        ("pickup_alert_pushes_total", {"transport": "socket", "sender": "timer", "outcome": "refused"}),
        ("pickup_alert_pushes_total", {"transport": "socket", "sender": "timer", "outcome": "delivered"}),
        ("pickup_alert_first_pushes_total", {"sender": "timer"}),
        ("pickup_alert_lateness_seconds_count", {"sender": "timer"}),
    )
    with Difference(*watched) as refused:
        [(claimed, _message)] = delivery.claim_ahead([alert.pk], timedelta(milliseconds=250))
        delivery.settle([Pushes([claimed], [REFUSED])], "timer")
    assert refused.added == [1, 0, 0, 0]

    Alert.objects.filter(pk=alert.pk).update(claimed_until=None)  # its retry is due
    with Difference(*watched) as delivered:
        [(claimed, _message)] = delivery.claim_ahead([alert.pk], timedelta(milliseconds=250))
        delivery.settle([Pushes([claimed], [DELIVERED])], "timer")
    assert delivered.added == [0, 1, 1, 1]


def test_acknowledgements_are_counted_once_each(menu):
    alerts = due_alerts(menu, 2, ago=timedelta(seconds=1))
    pairs = [(alert.customer_id, alert.pk) for alert in alerts]
    with Difference(("pickup_alerts_acknowledged_total", {})) as acknowledged:
        services.acknowledge_alerts(pairs)
        services.acknowledge_alerts(pairs)  # a second tab's acknowledgement
        services.acknowledge_alerts([("someone-else", alerts[0].pk)])
    assert acknowledged.added == [2]


def test_web_pushes_are_counted_by_outcome(menu, push_service):
    phone, _ = subscribe(push_service, "web-push-metrics")
    laptop, _ = subscribe(push_service, "web-push-metrics")
    push_service.unsubscribe(laptop, gone=True)
    _order, alert = place(menu, "web-push-metrics")
    web_push_fall_due(alert)
    watched = (
        ("pickup_alert_pushes_total", {"transport": "web_push", "sender": "run_queue", "outcome": "delivered"}),
        ("pickup_alert_pushes_total", {"transport": "web_push", "sender": "run_queue", "outcome": "gone"}),
    )
    with Difference(*watched) as sent:
        assert WebPushWorker().run_once() == 2
    assert sent.added == [1, 1]
    assert WebPush.objects.count() == 1  # the gone subscription's row went with it


def test_the_operator_sees_alerts_nobody_pushed_and_web_pushes_waiting(client, settings, menu, push_service):
    settings.METRICS_TOKEN = "a-scraper-token-of-at-least-32-characters"
    subscribe(push_service, "metrics0")
    due_alerts(menu, 2, ago=timedelta(minutes=1))
    WebPush.objects.update(send_after=timezone.now() - timedelta(seconds=1))

    page = client.get("/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}).content.decode()

    assert "\npickup_alerts_overdue 2.0\n" in page
    assert "\npickup_web_pushes_pending 1.0\n" in page
    assert "\npickup_web_pushes_due 1.0\n" in page
