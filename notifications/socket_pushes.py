"""The socket path's bookkeeping: which alerts are due, who sends each, what came of it.

Exactly one sender pushes an alert first: the web process's timer, run_queue
and any second run_queue all race through ``claim_alerts``, a conditional
UPDATE that only one of them wins (notifications.claims). A sender that dies
after claiming loses the claim when its lease runs out. Delivery to the
client is at-least-once (pushes are repeated until a tab acknowledges the
alert id); the client shows each alert id once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from notifications import claims
from notifications.models import Alert
from notifications.transports import Outcome, Result

# Pushing an unacknowledged alert again stops after this many tries; a tab
# that connects later still gets it from the replay.
MAX_PUSHES = 12
# A push the channel layer refused (inbox over capacity, Redis down) is tried
# again this much later: at once would only spin against the same full inbox.
RETRY_REFUSED = timedelta(seconds=1)
# A web timer's claim lasts this long past the alert's due time: its push is
# due then and written down some 50 ms later. If the web server dies holding
# it, run_queue takes the alert over when it ends, not after a worker's lease.
TIMER_CLAIM_MARGIN = timedelta(seconds=5)
# Customers who connect together (a web server's restart) have their alerts
# read in queries of at most this many, well under any database's parameter limit.
CUSTOMERS_PER_QUERY = 500


def _open_alerts():
    return Alert.objects.filter(cancelled_at=None, acknowledged_at=None)


def _claimable(now: datetime):
    return claims.unclaimed(_open_alerts(), now)


def claim_alerts(*, alert_ids: list[int] | None = None, limit: int = 500, ahead: timedelta = timedelta(0)) -> list[Alert]:
    """Take ownership of alerts that are due; returns those this caller won.

    With ``alert_ids`` (the web timers) only first sends are claimed, up to
    ``ahead`` before they are due, for ``TIMER_CLAIM_MARGIN`` past that: the
    timer pushes at the due time. Without,
    it is run_queue's sweep: due alerts nobody sent, and sent alerts no tab has
    acknowledged whose time for another push has come.
    """
    now = timezone.now()
    if alert_ids is not None:
        wanted = Q(sent_at=None, due_at__lte=now + ahead, pk__in=alert_ids)
    else:
        # The sweep leaves fresh alerts to the web timers for a moment.
        grace = timedelta(milliseconds=settings.PICKUP_RUN_QUEUE_GRACE_MS)
        push_again = Q(sent_at__isnull=False, resend_after__lte=now, send_count__lt=MAX_PUSHES)
        wanted = Q(sent_at=None, due_at__lte=now - grace) | push_again
    if alert_ids is not None:
        lease_end = now + ahead + TIMER_CLAIM_MARGIN
    else:
        lease_end = now + timedelta(seconds=settings.PICKUP_CLAIM_LEASE_SECONDS)
    if alert_ids is not None and len(alert_ids) <= limit:
        candidates = list(alert_ids)  # a timer's batch: nothing to choose
    else:
        candidates = list(_claimable(now).filter(wanted).order_by("due_at").values_list("pk", flat=True)[:limit])
    token = claims.claim(_open_alerts().filter(wanted), candidates, now=now, until=lease_end)
    if token is None:
        return []
    # Read back by primary key: the token has no index of its own.
    return list(Alert.objects.filter(pk__in=candidates, claim_token=token).select_related("order"))


def settle_pushes(alerts: list[Alert], results: list[Result]) -> None:
    """Record the outcome of a push: sent ones wait for an ack, refused ones are tried again soon.

    Only rows still held under this sender's claim are written. A sender that
    stalled past its lease may have lost the alert to another sender, whose
    claim and record must stand; its own push is then one more duplicate the
    client shows once, not a second count or a freed claim.
    """
    now = timezone.now()
    by_count: dict[tuple[str, int], list[int]] = defaultdict(list)
    refused: dict[str, list[int]] = defaultdict(list)
    for alert, result in zip(alerts, results, strict=True):
        if result.outcome is Outcome.DELIVERED:
            by_count[alert.claim_token, alert.send_count].append(alert.pk)
        else:
            refused[alert.claim_token].append(alert.pk)
    # Each UPDATE stands alone (its claim token is its guard) and commits by
    # itself: a sender frozen between two of them holds no row lock.
    for (token, send_count), ids in by_count.items():
        # Back off: 1×, 2×, 4×… the resend interval, capped at 64×; after
        # the last push only a connecting tab's replay offers it again.
        wait = claims.backoff(timedelta(seconds=settings.PICKUP_ALERT_RESEND_SECONDS), send_count)
        last = send_count + 1 >= MAX_PUSHES
        Alert.objects.filter(pk__in=ids, claim_token=token).update(
            sent_at=Coalesce(F("sent_at"), now),
            send_count=F("send_count") + 1,
            resend_after=None if last else now + wait,
            claim_token="",
            claimed_until=None,
        )
    for token, ids in refused.items():
        Alert.objects.filter(pk__in=ids, claim_token=token).update(claim_token="", claimed_until=now + RETRY_REFUSED)


def release_claims(alerts: list[Alert]) -> int:
    """Give back claims not pushed under (a web process stopping): another sender may take them at once.

    Only rows still held under the caller's claim are freed; returns how many.
    """
    by_token: dict[str, list[int]] = defaultdict(list)
    for alert in alerts:
        by_token[alert.claim_token].append(alert.pk)
    return sum(
        Alert.objects.filter(pk__in=ids, claim_token=token).update(claim_token="", claimed_until=None)
        for token, ids in by_token.items()
        if token
    )


def alerts_due_soon(horizon: timedelta, customer_ids: set[str] | None = None) -> list[tuple[int, datetime, str]]:
    """(id, due time, customer) of unsent alerts due before now + horizon, for in-memory timers.

    Alerts a sender holds right now are left out: their push is under way.
    With ``customer_ids``, only those customers' alerts (a web process's
    customers who just connected).
    """
    now = timezone.now()
    due_soon = claims.unclaimed(Alert.objects.filter(sent_at=None, cancelled_at=None, due_at__lte=now + horizon), now)
    if customer_ids is None:
        return list(due_soon.values_list("pk", "due_at", "customer_id"))
    wanted = sorted(customer_ids)
    return [
        row
        for start in range(0, len(wanted), CUSTOMERS_PER_QUERY)
        for row in due_soon.filter(customer_id__in=wanted[start : start + CUSTOMERS_PER_QUERY]).values_list(
            "pk", "due_at", "customer_id"
        )
    ]


def next_alert_due_at() -> datetime | None:
    """When run_queue's sweep next finds an alert it may claim, or None.

    Alerts another sender holds (a push under way, a refused push waiting for
    its retry, a dead sender's lease) are left out: waking for them before
    their hold ends would only spin. run_queue's interval bounds that wait.
    """
    now = timezone.now()
    claimable = _claimable(now)
    first_send = claimable.filter(sent_at=None).order_by("due_at").values_list("due_at", flat=True).first()
    push_again = (
        claimable.filter(sent_at__isnull=False, resend_after__isnull=False, send_count__lt=MAX_PUSHES)
        .order_by("resend_after")
        .values_list("resend_after", flat=True)
        .first()
    )
    return min((when for when in (first_send, push_again) if when is not None), default=None)
