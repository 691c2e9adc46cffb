"""Alerts as the rest of Pickup sees them: the one surface ``orders`` calls.

Schedule an alert (``schedule_new_alerts``, ``schedule_alert``), withdraw
it (``withdraw_alerts``), record a tab's acknowledgement
(``acknowledge_alerts``), replay what a connecting tab missed
(``alerts_to_replay``), and run_queue's sweep (``delivery.deliver_due``,
``delivery.WebPushWorker``). How an alert then travels, and how exactly one
sender sends it, is notifications' own business: docs/delivery.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from notifications import metrics, timers, web_pushes
from notifications.payloads import alert_payload
from notifications.models import Alert

# Only alerts this recent are replayed to a tab that connects.
REPLAY_WINDOW = timedelta(hours=12)


def schedule_new_alerts(orders, *, kind: str) -> list[Alert]:
    """Record the first alert of ``kind`` for new orders, due at their pickup times; arm timers after commit."""
    new_alerts = Alert.objects.bulk_create(
        Alert(order=order, kind=kind, customer_id=order.customer_id, due_at=order.pickup_at) for order in orders
    )
    web_pushes.owe(new_alerts)
    transaction.on_commit(lambda: _arm_timers(new_alerts))
    return new_alerts


def _arm_timers(new_alerts: list[Alert]) -> None:
    for alert in new_alerts:
        timers.alert_timers.arm(alert.pk, alert.due_at, alert.customer_id)


def schedule_alert(*, order, kind: str, due_at: datetime, reason: str = "") -> Alert:
    """Record that the customer is owed an alert, rescheduled from scratch if it
    exists, and arm its timer after commit (here, or where the customer is connected)."""
    alert, _created = Alert.objects.update_or_create(
        order=order,
        kind=kind,
        defaults={
            "customer_id": order.customer_id,
            "due_at": due_at,
            "reason": reason[:200],
            "cancelled_at": None,
            "acknowledged_at": None,
            "resend_after": None,
            "sent_at": None,
            "send_count": 0,
            "claim_token": "",
            "claimed_until": None,
        },
    )
    web_pushes.owe([alert], rescheduled=not _created)
    transaction.on_commit(lambda: timers.alert_timers.arm(alert.pk, due_at, alert.customer_id))
    return alert


def withdraw_alerts(order, *, kinds: list[str] | None = None, unsent_only: bool = False) -> int:
    """Stop alerts that no longer match the order's state from being sent."""
    alerts = Alert.objects.filter(order=order, cancelled_at=None, acknowledged_at=None)
    if kinds is not None:
        alerts = alerts.filter(kind__in=kinds)
    if unsent_only:
        alerts = alerts.filter(sent_at=None)
    alert_ids = list(alerts.values_list("pk", flat=True))
    # This process's timers may have claimed one already, to push at its due time.
    transaction.on_commit(lambda: timers.alert_timers.disarm(alert_ids))
    return Alert.objects.filter(pk__in=alert_ids, cancelled_at=None).update(cancelled_at=timezone.now())


def acknowledge_alerts(pairs: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Many acknowledgements at once; returns the (customer, alert) pairs that were theirs."""
    owners = dict(Alert.objects.filter(pk__in={alert_id for _, alert_id in pairs}).values_list("pk", "customer_id"))
    theirs = {(customer_id, alert_id) for customer_id, alert_id in pairs if owners.get(alert_id) == customer_id}
    if theirs:
        acknowledged = Alert.objects.filter(pk__in={alert_id for _, alert_id in theirs}, acknowledged_at=None).update(
            acknowledged_at=timezone.now()
        )
        metrics.count_acknowledged(acknowledged)
    return theirs


def alerts_to_replay(customer_ids: list[str]) -> dict[str, list[dict]]:
    """Per customer, the due alerts they have not acknowledged, for tabs that just connected."""
    now = timezone.now()
    alerts = Alert.objects.filter(
        customer_id__in=customer_ids,
        due_at__lte=now,
        due_at__gte=now - REPLAY_WINDOW,
        acknowledged_at=None,
        cancelled_at=None,
    ).select_related("order")
    missed: dict[str, list[dict]] = {customer_id: [] for customer_id in customer_ids}
    for alert in alerts:
        missed[alert.customer_id].append(alert_payload(alert))
    return missed


