"""Claim → push → settle, the one sequence by which an alert leaves Pickup.

The web process's timers claim shortly before the due time and push at it
(notifications/timers.py), run_queue claims and pushes what is due; both go
through the same claim, so an alert is pushed first by exactly one of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from notifications import services
from notifications.models import Alert
from notifications.sender import send_to_groups, send_to_groups_sync

logger = logging.getLogger(__name__)


def _log(alerts: list[Alert], pushed: list[bool], via: str) -> None:
    for alert, ok in zip(alerts, pushed, strict=True):
        logger.info(
            "alert %s (%s, order %s, push %d) %s via %s",
            alert.pk, alert.kind, alert.order.pickup_code, alert.send_count + 1,
            "pushed" if ok else "push FAILED, will retry", via,
        )


@dataclass
class Pushes:
    """Alerts pushed under a claim whose outcome is not yet written down."""

    alerts: list[Alert]
    pushed: list[bool]


def claim_ahead(alert_ids: list[int], ahead: timedelta) -> list[tuple[Alert, tuple[str, dict]]]:
    """The web timers' claim, shortly before the due time: each alert won with its message."""
    alerts = services.claim_alerts(alert_ids=alert_ids, limit=len(alert_ids), ahead=ahead)
    return [(alert, services.alert_message(alert)) for alert in alerts]


async def push_async(claimed: list[tuple[Alert, tuple[str, dict]]]) -> Pushes:
    return Pushes([alert for alert, _ in claimed], await send_to_groups([message for _, message in claimed]))


def settle(batches: list[Pushes], via: str) -> None:
    """Write down the outcome of pushes; the log line follows the record."""
    services.settle_pushes(
        [alert for pushes in batches for alert in pushes.alerts], [ok for pushes in batches for ok in pushes.pushed]
    )
    for pushes in batches:
        _log(pushes.alerts, pushes.pushed, via)


def deliver_due(*, limit: int = 500) -> int:
    """run_queue's sweep: push every alert whose (re)send time has come."""
    alerts = services.claim_alerts(limit=limit)
    if not alerts:
        return 0
    settle([Pushes(alerts, send_to_groups_sync([services.alert_message(alert) for alert in alerts]))], "run_queue")
    return len(alerts)
