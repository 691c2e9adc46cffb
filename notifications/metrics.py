"""What the alerts' senders count, for /metrics (pickup/metrics.py serves them).

The web timers' claims are counted as they are made (``count_timer_claims``).
Everything else is counted where each outcome is written down: the socket pushes in
``delivery.settle`` (``sender`` = ``timer`` for a web process's timers,
``run_queue`` for the worker), Web Push in ``web_pushes.settle``. A burst
settles a thousand alerts at once, so counters move once per batch and
outcome (``inc(n)``); only the lateness histogram takes one observation per
alert, a couple of microseconds each.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from notifications import selectors
from notifications.models import Alert
from notifications.transports import Outcome, Result
from pickup.metrics import LATENCY_BUCKETS

logger = logging.getLogger(__name__)

SENDERS = ("timer", "run_queue")

alert_pushes = Counter(
    "pickup_alert_pushes_total",
    "Alert pushes by transport (socket, web_push), sender (timer, run_queue) and outcome "
    "(delivered, refused, failed, gone, rejected); repeated pushes of an unacknowledged alert included.",
    ["transport", "sender", "outcome"],
)
first_pushes = Counter(
    "pickup_alert_first_pushes_total",
    "Alerts pushed to the customer's sockets for the first time, by sender (timer, run_queue).",
    ["sender"],
)
lateness = Histogram(
    "pickup_alert_lateness_seconds",
    "From an alert's due time to its first push being taken by the channel layer, by sender.",
    ["sender"],
    buckets=LATENCY_BUCKETS,
)
timer_claims = Counter(
    "pickup_timer_claims_total",
    "Alerts a web process's timers tried to claim ahead of their due time, by outcome (won, lost: "
    "another sender held or had sent it, or it was withdrawn); about one try per alert, however many web processes run.",
    ["outcome"],
)
alerts_acknowledged = Counter("pickup_alerts_acknowledged_total", "Alerts acknowledged by a tab of their customer.")

# Every series a graph or an alert rule expects, there from the start at 0.
for _sender in SENDERS:
    first_pushes.labels(_sender)
    lateness.labels(_sender)
    for _outcome in (Outcome.DELIVERED, Outcome.REFUSED):
        alert_pushes.labels("socket", _sender, _outcome.value)
for _outcome in Outcome:
    alert_pushes.labels("web_push", "run_queue", _outcome.value)
for _claimed in ("won", "lost"):
    timer_claims.labels(_claimed)


def count_socket_pushes(alerts: list[Alert], results: list[Result], sender: str, pushed_at: float) -> None:
    """Count one batch of socket pushes, written down; ``pushed_at`` is when the layer took it (epoch s)."""
    for outcome, count in Tally(result.outcome for result in results).items():
        alert_pushes.labels("socket", sender, outcome.value).inc(count)
    first = [
        alert for alert, result in zip(alerts, results, strict=True)
        if alert.send_count == 0 and result.outcome is Outcome.DELIVERED
    ]
    if first:
        first_pushes.labels(sender).inc(len(first))
        late = lateness.labels(sender)
        for alert in first:
            late.observe(max(0.0, pushed_at - alert.due_at.timestamp()))


def count_timer_claims(*, tried: int, won: int) -> None:
    """Count one claim of a web process's timers: ``tried`` alerts asked for, ``won`` of them taken."""
    if won:
        timer_claims.labels("won").inc(won)
    if tried > won:
        timer_claims.labels("lost").inc(tried - won)


def count_web_pushes(outcomes: Iterable[Outcome]) -> None:
    for outcome, count in Tally(outcomes).items():
        alert_pushes.labels("web_push", "run_queue", outcome.value).inc(count)


def count_acknowledged(count: int) -> None:
    if count:
        alerts_acknowledged.inc(count)


class AlertBacklog:
    """Read at scrape time: alerts nobody pushed, Web Pushes waiting."""

    def collect(self):
        try:
            overdue = selectors.overdue_alert_count()
            pending, due = selectors.web_push_backlog()
        except Exception as error:  # the database is away: the other figures still go out
            logger.warning("metrics: could not read the alert backlog (%s)", error.__class__.__name__)
            return
        yield GaugeMetricFamily(
            "pickup_alerts_overdue",
            f"Alerts due more than {selectors.OVERDUE.seconds} s ago that no sender has pushed (0 unless sending stopped).",
            value=overdue,
        )
        yield GaugeMetricFamily("pickup_web_pushes_pending", "Web Push rows owed and not finished.", value=pending)
        yield GaugeMetricFamily("pickup_web_pushes_due", "Web Push rows owed whose send time has come.", value=due)
