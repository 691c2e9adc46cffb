"""One sender pushes an alert first, a dead or stalled sender's claim runs out,
and a refused push is tried again soon, without spinning."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from notifications import services, socket_pushes
from notifications.models import Alert
from notifications.transports import DELIVERED, REFUSED
from orders import services as order_services
from tests.conftest import pickup_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def due_alert(menu) -> Alert:
    """A pickup alert that fell due a moment ago and nobody has sent."""
    order = order_services.place_order(customer_id="claims", lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(60))
    Alert.objects.filter(order=order).update(due_at=timezone.now() - timedelta(seconds=1))
    return Alert.objects.get(order=order)


def claim_in_threads(count: int) -> list[list[int]]:
    """``count`` senders claim at the same instant, each on its own connection."""
    start = threading.Barrier(count)
    won: list[list[int]] = [[] for _ in range(count)]

    def sender(index: int) -> None:
        try:
            start.wait()
            won[index] = [alert.pk for alert in socket_pushes.claim_alerts()]
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return won


def test_of_senders_racing_for_a_due_alert_exactly_one_wins(due_alert):
    won = claim_in_threads(4)
    assert sorted(map(len, won)) == [0, 0, 0, 1]
    assert [alert_id for ids in won for alert_id in ids] == [due_alert.pk]


def test_an_alert_claimed_by_a_sender_that_died_is_taken_again_after_its_lease(due_alert, settings):
    settings.PICKUP_CLAIM_LEASE_SECONDS = 1
    assert socket_pushes.claim_alerts() == [due_alert]  # …and the sender dies here
    assert socket_pushes.claim_alerts() == []
    Alert.objects.filter(pk=due_alert.pk).update(claimed_until=timezone.now() - timedelta(milliseconds=1))
    assert socket_pushes.claim_alerts() == [due_alert]


def test_a_stalled_sender_that_lost_its_lease_does_not_overwrite_the_new_owner(due_alert):
    stalled = socket_pushes.claim_alerts()
    Alert.objects.filter(pk=due_alert.pk).update(claimed_until=timezone.now() - timedelta(milliseconds=1))
    current = socket_pushes.claim_alerts()

    socket_pushes.settle_pushes(stalled, [DELIVERED])  # too late: the alert is no longer its own
    alert = Alert.objects.get(pk=due_alert.pk)
    assert alert.sent_at is None and alert.send_count == 0
    assert alert.claim_token == current[0].claim_token  # nobody else may claim it meanwhile

    socket_pushes.settle_pushes(current, [DELIVERED])
    alert = Alert.objects.get(pk=due_alert.pk)
    assert alert.sent_at is not None and alert.send_count == 1 and alert.claim_token == ""


def test_a_refused_push_is_tried_again_after_a_moment_not_at_once(due_alert):
    claimed = socket_pushes.claim_alerts()
    socket_pushes.settle_pushes(claimed, [REFUSED])

    alert = Alert.objects.get(pk=due_alert.pk)
    assert alert.sent_at is None and alert.send_count == 0
    assert socket_pushes.claim_alerts() == []  # held back for RETRY_REFUSED
    # run_queue sleeps through the hold instead of waking for it in a loop.
    assert socket_pushes.next_alert_due_at() is None
    Alert.objects.filter(pk=due_alert.pk).update(claimed_until=timezone.now() - timedelta(milliseconds=1))
    assert socket_pushes.claim_alerts() == [due_alert]


def test_run_queue_wakes_for_the_next_push_again_of_an_unacknowledged_alert(due_alert):
    socket_pushes.settle_pushes(socket_pushes.claim_alerts(), [DELIVERED])
    alert = Alert.objects.get(pk=due_alert.pk)
    assert socket_pushes.next_alert_due_at() == alert.resend_after


def test_after_the_last_push_only_a_connecting_tab_is_offered_the_alert(due_alert):
    Alert.objects.filter(pk=due_alert.pk).update(
        sent_at=timezone.now(), send_count=socket_pushes.MAX_PUSHES - 1, resend_after=timezone.now()
    )
    socket_pushes.settle_pushes(socket_pushes.claim_alerts(), [DELIVERED])

    alert = Alert.objects.get(pk=due_alert.pk)
    assert alert.send_count == socket_pushes.MAX_PUSHES and alert.resend_after is None
    assert socket_pushes.claim_alerts() == [] and socket_pushes.next_alert_due_at() is None
    assert [payload["id"] for payload in services.alerts_to_replay(["claims"])["claims"]] == [alert.pk]
