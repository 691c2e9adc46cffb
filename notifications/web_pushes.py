"""Which alerts each Web Push subscription is owed, and their sending under a claim.

An alert owed by Web Push is a ``WebPush`` row per subscription of the
customer, written when the alert is scheduled (or rescheduled) and when the
customer subscribes while an alert is pending. run_queue sends them
(``notifications.delivery.WebPushWorker``): claim the due rows, send, write
down each answer; several workers never send the same attempt: a worker
renews the lease of what it has in flight (``renew``), however long the push
service takes to answer, and one that dies (or stalls for a whole lease)
mid-send loses its claim, so the attempt is made again (the push service
replaces it by its Topic, the browser by its tag).

Web Push waits ``WAIT_FOR_PAGE`` past the due time: an open page shows the
alert and acknowledges it within milliseconds, and an acknowledged alert is
not sent this way at all. A phone in a pocket has no open page, and gets it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Min, Q
from django.urls import reverse
from django.utils import timezone

from notifications import claims, metrics
from notifications.models import Alert, PushSubscription, WebPush
from notifications.payloads import alert_payload
from notifications.transports import Outcome, Result
from notifications.webpush import Message

logger = logging.getLogger(__name__)

WAIT_FOR_PAGE = timedelta(seconds=1)
# Attempts at one message before giving up (a push service down for ~10 minutes).
MAX_ATTEMPTS = 8
# Wait after a failed attempt: 2, 4, 8… seconds, at most 128, or longer if the service asks.
RETRY_BASE = timedelta(seconds=2)
# Alerts older than this are not worth a notification any more (the socket's replay window).
WORTH_SENDING = timedelta(hours=12)


def owe(alerts: list[Alert], *, rescheduled: bool = False) -> None:
    """The customers' subscriptions are owed these alerts, due at their due times.

    A rescheduled alert starts over: its earlier attempts no longer count.
    """
    customers = {alert.customer_id for alert in alerts}
    subscriptions = defaultdict(list)
    for pk, customer_id in PushSubscription.objects.filter(customer_id__in=customers).values_list("pk", "customer_id"):
        subscriptions[customer_id].append(pk)
    if not subscriptions:
        return
    if rescheduled:
        for alert in alerts:
            WebPush.objects.filter(alert=alert).update(
                send_after=alert.due_at + WAIT_FOR_PAGE, attempts=0, finished_at=None, outcome="",
                claim_token="", claimed_until=None,
            )
    WebPush.objects.bulk_create(
        [_owed(alert.pk, alert.due_at, pk) for alert in alerts for pk in subscriptions.get(alert.customer_id, ())],
        ignore_conflicts=True,
    )


def owe_pending(subscription: PushSubscription) -> int:
    """Owe a new subscription every alert of its customer still pending; returns how many alerts that is.

    Pending: not acknowledged by a page, not withdrawn, and due in the future
    or within ``WORTH_SENDING``. An alert already owed to this subscription
    is left as it is.
    """
    alerts = Alert.objects.filter(
        customer_id=subscription.customer_id, acknowledged_at=None, cancelled_at=None,
        due_at__gte=timezone.now() - WORTH_SENDING,
    ).values_list("pk", "due_at")
    owed = [_owed(alert_id, due_at, subscription.pk) for alert_id, due_at in alerts]
    WebPush.objects.bulk_create(owed, ignore_conflicts=True)
    return len(owed)


def _owed(alert_id: int, due_at: datetime, subscription_id: int) -> WebPush:
    """A subscription's copy of an alert: sent from its due time, plus the moment an open page has to acknowledge it."""
    return WebPush(alert_id=alert_id, subscription_id=subscription_id, send_after=due_at + WAIT_FOR_PAGE)


def _pending(now: datetime):
    return WebPush.objects.filter(
        finished_at=None, send_after__lte=now, alert__acknowledged_at=None, alert__cancelled_at=None,
        alert__due_at__gte=now - WORTH_SENDING,
    )


def finish_unneeded() -> int:
    """Close the rows whose alert a page acknowledged, staff withdrew, or that grew too old."""
    now = timezone.now()
    unneeded = Q(alert__acknowledged_at__isnull=False) | Q(alert__cancelled_at__isnull=False)
    unneeded |= Q(alert__due_at__lt=now - WORTH_SENDING)
    return WebPush.objects.filter(unneeded, finished_at=None, send_after__lte=now).update(
        finished_at=now, outcome="not needed"
    )


def claim_due(limit: int) -> list[tuple[WebPush, Message]]:
    """Take up to ``limit`` due Web Pushes nobody holds, each with the message to send."""
    if limit <= 0:
        return []
    now = timezone.now()
    candidates = list(
        claims.unclaimed(_pending(now), now).order_by("send_after").values_list("pk", flat=True)[:limit]
    )
    if not candidates:
        return []
    lease_end = now + timedelta(seconds=settings.PICKUP_CLAIM_LEASE_SECONDS)
    token = claims.claim(_pending(now), candidates, now=now, until=lease_end)
    if token is None:
        return []
    rows = WebPush.objects.filter(pk__in=candidates, claim_token=token).select_related("alert__order", "subscription")
    title = _restaurant_name()  # once per claim, not per message
    return [(row, message(row.alert, row.subscription, now, title=title)) for row in rows]


def renew(tokens: list[str]) -> datetime:
    """Extend the lease of the rows still held under these claims; their new lease end.

    A row whose token is still its own was taken by nobody else, even if its
    lease ran out: it is held again. One taken over meanwhile is left alone.
    """
    until = timezone.now() + timedelta(seconds=settings.PICKUP_CLAIM_LEASE_SECONDS)
    WebPush.objects.filter(claim_token__in=[token for token in tokens if token], finished_at=None).update(
        claimed_until=until
    )
    return until


def _restaurant_name() -> str:
    from orders.models import Restaurant

    return Restaurant.current().name


def message(alert: Alert, subscription: PushSubscription, now: datetime, *, title: str | None = None) -> Message:
    """What the service worker shows: the alert as the page gets it, the restaurant
    (``title``, read here when not given), the order's page."""
    return Message(
        subscription=subscription.info(),
        payload={
            "alert": alert_payload(alert),
            "title": _restaurant_name() if title is None else title,
            "url": reverse("orders:order_detail", args=[alert.order_id]),
        },
        topic=f"alert-{alert.pk}",
        ttl_seconds=max(0, int((alert.due_at + WORTH_SENDING - now).total_seconds())),
    )


def settle(answers: list[tuple[WebPush, Result]]) -> None:
    """Write down the push services' answers, for rows still held under this sender's claim."""
    now = timezone.now()
    done: dict[tuple[str, str], list[int]] = defaultdict(list)
    again: dict[tuple[str, datetime], list[int]] = defaultdict(list)
    gone: set[int] = set()
    for row, result in answers:
        if result.outcome is Outcome.GONE:
            gone.add(row.subscription_id)
        elif result.outcome is Outcome.DELIVERED:
            done[row.claim_token, "delivered"].append(row.pk)
        elif result.outcome is Outcome.REJECTED:
            logger.error("push service rejected alert %s for subscription %s: %s", row.alert_id, row.subscription_id, result.detail)
            done[row.claim_token, f"rejected: {result.detail}"[:32]].append(row.pk)
        elif row.attempts + 1 >= MAX_ATTEMPTS:
            logger.warning("gave up on alert %s for subscription %s after %d attempts: %s",
                           row.alert_id, row.subscription_id, MAX_ATTEMPTS, result.detail)
            done[row.claim_token, "gave up"].append(row.pk)
        else:
            wait = max(claims.backoff(RETRY_BASE, row.attempts), timedelta(seconds=result.retry_after or 0))
            again[row.claim_token, now + wait].append(row.pk)
    for (token, outcome), ids in done.items():
        WebPush.objects.filter(pk__in=ids, claim_token=token).update(
            finished_at=now, outcome=outcome, attempts=F("attempts") + 1, claim_token="", claimed_until=None
        )
    for (token, send_after), ids in again.items():
        WebPush.objects.filter(pk__in=ids, claim_token=token).update(
            send_after=send_after, attempts=F("attempts") + 1, claim_token="", claimed_until=None
        )
    if gone:
        # The browser dropped them (404/410): never used again, their rows go with them.
        PushSubscription.objects.filter(pk__in=gone).delete()
    metrics.count_web_pushes(result.outcome for _row, result in answers)


def next_due_at() -> datetime | None:
    """When a Web Push next falls due that nobody holds, or None."""
    now = timezone.now()
    pending = claims.unclaimed(WebPush.objects.filter(finished_at=None), now)
    return pending.aggregate(first=Min("send_after"))["first"]
