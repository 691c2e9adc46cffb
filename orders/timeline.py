"""What happens to orders as time passes; run_queue calls these each pass.

Preparation starts at ``preparation_at``; at the pickup time the order is
ready; a ready order nobody collects gets one reminder and is then marked not
collected. Every move is a compare-and-set, so several run_queue workers (and
staff clicking at the same moment) never apply one twice, and every move is
announced (after commit) to the customer's open tabs and the kitchen screen.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from notifications import services as alert_services
from notifications.models import Alert
from orders.models import Order, Restaurant
from orders.announcements import announce
from orders.services import change_status, may_reach
from pickup.errors import PickupError

logger = logging.getLogger("pickup.run_queue")


def process_due_order(order_id: int) -> tuple[str, str]:
    """What run_queue does when an order's pickup time comes: the order is ready.

    A compare-and-set on ``processed_at`` and the status just read makes it
    happen once, whichever worker gets there; if staff changed the order in
    between, it reads again. Returns (pickup code, what happened) for the log.
    """
    for _attempt in range(3):
        row = Order.objects.filter(pk=order_id).values_list("pickup_code", "status", "processed_at").first()
        if row is None:
            return "-", "skipped (no such order)"
        code, status, processed_at = row
        if processed_at is not None:
            return code, "skipped (already processed)"
        now = timezone.now()
        pending = Order.objects.filter(pk=order_id, status=status, processed_at=None)
        if status in may_reach(Order.Status.READY):
            if pending.update(status=Order.Status.READY, ready_at=now, processed_at=now):
                announce([order_id], "order.ready")
                return code, "ready"
        # Cancelled or marked ready early: nothing to do, but record that it was seen.
        elif pending.update(processed_at=now):
            return code, f"skipped ({status})"
    raise RuntimeError(f"order {order_id} kept changing while being processed")


def make_ready(order_ids: list[int]) -> dict[int, str]:
    """``process_due_order`` for a whole claimed batch at once, for the usual case.

    One UPDATE … RETURNING (SQLite ≥ 3.35 and PostgreSQL) with the same
    compare-and-set: only orders not yet processed, in a status that may
    become ready, change. Returns {order id: pickup code} of those; the
    others (cancelled, ready early, changing right now) go one by one
    through ``process_due_order``.
    """
    if not order_ids:
        return {}
    sources = may_reach(Order.Status.READY)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    sql = (
        f"UPDATE {Order._meta.db_table} SET status = %s, ready_at = %s, processed_at = %s "
        f"WHERE id IN ({', '.join(['%s'] * len(order_ids))}) AND processed_at IS NULL "
        f"AND status IN ({', '.join(['%s'] * len(sources))}) RETURNING id, pickup_code"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Order.Status.READY, now, now, *order_ids, *sources])
        made_ready = dict(cursor.fetchall())
    announce(made_ready, "order.ready")
    return made_ready


def start_preparations(*, limit: int = 500) -> int:
    """Move queued orders whose preparation time has come to preparing."""
    now = timezone.now()
    due = list(
        Order.objects.filter(status__in=may_reach(Order.Status.PREPARING), preparation_at__lte=now, pickup_at__gt=now)
        .values_list("pk", "pickup_code", "status")[:limit]
    )
    started = []
    for order_id, code, status in due:
        if Order.objects.filter(pk=order_id, status=status).update(status=Order.Status.PREPARING):
            started.append(order_id)
            logger.info("order %s (id %s): preparing", code, order_id)
    announce(started, "order.preparing")
    return len(started)


def handle_no_shows(*, limit: int = 500) -> int:
    """Remind customers whose ready order waits, then mark it not collected after the grace period."""
    restaurant = Restaurant.current()
    now = timezone.now()
    grace = timedelta(minutes=restaurant.no_show_grace_minutes)
    remind_at = grace - timedelta(minutes=min(restaurant.reminder_minutes, restaurant.no_show_grace_minutes))
    handled = 0
    to_remind = (
        Order.objects.filter(status=Order.Status.READY, pickup_at__lte=now - remind_at, pickup_at__gt=now - grace)
        .exclude(alerts__kind=Alert.Kind.REMINDER)[:limit]
    )
    for order in to_remind:
        alert_services.schedule_alert(order=order, kind=Alert.Kind.REMINDER, due_at=now)
        announce([order.pk], "order.reminded")
        logger.info("order %s (id %s): collection reminder scheduled", order.pickup_code, order.pk)
        handled += 1
    for order in Order.objects.filter(status=Order.Status.READY, pickup_at__lte=now - grace)[:limit]:
        try:
            change_status(order, Order.Status.NOT_COLLECTED)
        except PickupError as error:  # picked up at this very moment
            logger.info("order %s (id %s): %s", order.pickup_code, order.pk, error.code)
            continue
        logger.info("order %s (id %s): not collected", order.pickup_code, order.pk)
        handled += 1
    return handled
