"""Claim → push → settle, the one sequence by which an alert leaves Pickup.

The web process's timers call the async form, run_queue the sync form; both
go through the same claim, so an alert is pushed first by exactly one of them.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async

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


async def deliver_async(*, alert_ids: list[int]) -> int:
    # The whole batch: the timers have let go of these ids, so any left
    # unclaimed here would wait for run_queue's sweep.
    alerts = await database_sync_to_async(services.claim_alerts)(alert_ids=alert_ids, limit=len(alert_ids))
    if not alerts:
        return 0
    pushed = await send_to_groups([services.alert_message(alert) for alert in alerts])
    await database_sync_to_async(services.settle_pushes)(alerts, pushed)
    _log(alerts, pushed, "timer")
    return sum(pushed)


def deliver_due(*, limit: int = 500) -> int:
    """run_queue's sweep: push every alert whose (re)send time has come."""
    alerts = services.claim_alerts(limit=limit)
    if not alerts:
        return 0
    pushed = send_to_groups_sync([services.alert_message(alert) for alert in alerts])
    services.settle_pushes(alerts, pushed)
    _log(alerts, pushed, "run_queue")
    return len(alerts)
