"""Reads about alerts for the operator's figures (notifications/metrics.py), not for sending."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from notifications.models import Alert, WebPush

# An alert due this long ago that nobody has pushed means nobody is sending:
# the web timers push at the due time, run_queue within TIMER_CLAIM_MARGIN
# (5 s) plus a pass even when the web server holding the timer died.
OVERDUE = timedelta(seconds=10)


def overdue_alert_count() -> int:
    """Alerts due more than ``OVERDUE`` ago, not withdrawn or acknowledged, never pushed."""
    due_before = timezone.now() - OVERDUE
    return Alert.objects.filter(sent_at=None, cancelled_at=None, acknowledged_at=None, due_at__lt=due_before).count()


def web_push_backlog() -> tuple[int, int]:
    """(rows owed and not finished, of which due now): what run_queue's Web Push sender has ahead of it."""
    pending = WebPush.objects.filter(finished_at=None)
    return pending.count(), pending.filter(send_after__lte=timezone.now()).count()
