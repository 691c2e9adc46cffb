"""run_queue: the kitchen queue's worker loop.

Each pass (1) rebuilds the kitchen queue from the database if Redis lost it,
(2) starts the preparation of orders whose lead time has come, (3) claims the
orders whose pickup time has come, atomically, and marks each ready once,
(4) reminds and closes ready orders nobody collected, (5) pushes every alert
that is due and not yet sent, or sent but never acknowledged. Then it sleeps
until the next pickup time or the interval, whichever comes first; while
Redis is down, a pass per interval, quietly. Safe to run as several copies,
and no transaction spans a wait, so one copy's stall holds up the others only
as long as one statement (PostgreSQL also ends a frozen copy's transaction).

Beside the passes, on a thread of its own, it sends the alerts owed by Web
Push (notifications.delivery.WebPushWorker), when VAPID keys are set.
"""

from __future__ import annotations

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection, transaction
from django.db.backends.signals import connection_created
from redis.exceptions import RedisError

from notifications import delivery
from notifications import socket_pushes, vapid
from orders import kitchen_queue, selectors, timeline
from orders.metrics import run_queue_pass
from pickup.gc_tuning import tune_for_latency

logger = logging.getLogger("pickup.run_queue")

# A failing order is tried again this much later instead of blocking the loop.
RETRY_DELAY_MS = 10_000
# Sleep in slices this long so SIGTERM is honoured quickly.
SLEEP_SLICE = 0.25
# Orders claimed and made ready per statement, between two alert sweeps:
# a customer's alert never waits behind more than one slice of kitchen work.
KITCHEN_SLICE = 100
# On PostgreSQL the server ends a worker's session that sits this long inside
# a transaction without a word (frozen: a long pause, a stopped VM), so its
# locks go and the other workers carry on. Its transactions are a few short
# statements: only a stalled worker ever comes near this.
FROZEN_TRANSACTION_LIMIT_MS = 5000


class Command(BaseCommand):
    help = "Process due orders from the kitchen queue and send due pickup alerts."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="Longest sleep between passes, in seconds (default 1).")
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")
        parser.add_argument("--batch", type=int, default=500, help="Entries claimed per Redis call (default 500).")
        parser.add_argument(
            "--rebuild-every", type=float, default=60.0,
            help="Re-check the kitchen queue against the database this often, in seconds (default 60).",
        )

    def handle(self, *args, interval: float, once: bool, batch: int, rebuild_every: float, **options):
        self.stopping = False
        self.batch = max(1, batch)
        # Kitchen work comes in slices, with the due alerts pushed in between.
        self.kitchen_batch = min(self.batch, KITCHEN_SLICE)
        self.rebuild_every = rebuild_every
        self.last_rebuild = 0.0
        if not once:
            signal.signal(signal.SIGTERM, self.on_signal)
            signal.signal(signal.SIGINT, self.on_signal)
            tune_for_latency()
            connection_created.connect(limit_frozen_transactions)
            if connection.connection is not None:
                limit_frozen_transactions(sender=None, connection=connection)
        self.redis_down = False
        web_push = delivery.WebPushWorker(interval=interval) if vapid.configured() else None
        if web_push is None:
            logger.info("Web Push off: no VAPID keys (README, Web Push)")
        elif not once:
            web_push.start()
        logger.info("run_queue started (interval %.3fs, batch %d)", interval, self.batch)
        while not self.stopping:
            try:
                started = time.perf_counter()
                orders, alerts = self.run_pass()
                run_queue_pass.observe(time.perf_counter() - started)  # passes that finished
                self.on_redis_back()
                # An idle pass says nothing worth a line at INFO, once a second.
                level = logging.INFO if orders or alerts else logging.DEBUG
                logger.log(level, "pass: %d order(s) processed, %d alert push(es)", orders, alerts)
            except RedisError as error:
                self.on_redis_down(error, interval)
            except kitchen_queue.NamespaceTaken as error:
                # Going on would process another installation's orders.
                raise CommandError(str(error)) from None
            except Exception:
                logger.exception("pass failed; retrying")
            finally:
                close_old_connections()
            if once:
                if web_push is not None:
                    web_push.run_once()
                break
            # Without Redis no alert can be pushed and no order claimed: a
            # pass per interval finds out when it is back, without spinning.
            self.sleep_until(time.time() + interval if self.redis_down else self.next_wake(interval))
        if web_push is not None and not once:
            web_push.stop()  # the sends under way are answered and written down first
        logger.info("run_queue stopped")

    def on_redis_down(self, error: RedisError, interval: float) -> None:
        """Say it once per outage; the passes that keep failing meanwhile stay quiet."""
        if not self.redis_down:
            logger.warning("Redis unavailable (%s); trying again every %.3fs until it is back", error, interval)
        self.redis_down = True
        self.last_rebuild = 0.0  # whatever Redis comes back with, check it

    def on_redis_back(self) -> None:
        if self.redis_down:
            logger.warning("Redis is back")
        self.redis_down = False

    def on_signal(self, signum, frame):
        logger.info("received %s; finishing the current item", signal.Signals(signum).name)
        self.stopping = True

    # -------------------------------------------------------------- one pass

    def run_pass(self) -> tuple[int, int]:
        self.rebuild_if_needed()
        # Alerts first: they are what the customer is waiting for.
        alerts = self.push_due_alerts()
        timeline.start_preparations(limit=self.batch)
        processed = 0
        while not self.stopping:
            claimed = self.claim_batch()
            processed += len(claimed)
            # Alerts that fell due during that batch go out before the next one.
            alerts += self.push_due_alerts()
            if len(claimed) < self.kitchen_batch:
                break
        timeline.handle_no_shows(limit=self.batch)
        return processed, alerts + self.push_due_alerts()

    def push_due_alerts(self) -> int:
        pushed = 0
        while not self.stopping:
            claimed = delivery.deliver_due(limit=self.batch)
            pushed += claimed
            if claimed < self.batch:
                break
        return pushed

    def rebuild_if_needed(self) -> None:
        stale = time.monotonic() - self.last_rebuild >= self.rebuild_every
        if not stale and kitchen_queue.is_built():
            return
        # At start, after Redis lost its memory, and once a rebuild interval:
        # the key prefix must still be this database's.
        kitchen_queue.claim_namespace()
        added = kitchen_queue.rebuild(selectors.orders_waiting_for_kitchen_queue())
        self.last_rebuild = time.monotonic()
        if added:
            logger.warning("kitchen queue rebuilt from the database: %d order(s) restored", added)

    def claim_batch(self) -> list[int]:
        # While web timers push the alerts, the kitchen work waits until they
        # are out: its write transaction would hold up their claims otherwise.
        now_ms = int(time.time() * 1000) - settings.PICKUP_KITCHEN_DELAY_MS
        lease_ms = settings.PICKUP_CLAIM_LEASE_SECONDS * 1000
        claimed = kitchen_queue.claim_due(now_ms=now_ms, lease_ms=lease_ms, limit=self.kitchen_batch)
        done, lines = [], []
        # The orders still waiting are made ready by one statement that
        # commits by itself, the rest each in a short transaction of their
        # own: no transaction spans the batch, so a worker that stalls (or is
        # frozen) between two of them holds no lock another worker waits for.
        # The log lines follow the commits, so they only ever tell what was stored.
        made_ready = self.make_ready([order_id for order_id, _ in claimed])
        for order_id, pickup_ms in claimed:
            if order_id in made_ready:
                outcome = (made_ready[order_id], "ready")
            else:
                outcome = self.handle_one(order_id, pickup_ms, now_ms)
            if outcome is None:
                continue
            code, what = outcome
            done.append(order_id)
            lines.append((code, order_id, what, now_ms - pickup_ms))
        for line in lines:
            logger.info("order %s (id %s): %s, %d ms after its pickup time", *line)
        # Customers and the kitchen screen hear of each order made ready from
        # orders.timeline, once each change is committed.
        kitchen_queue.finish(done, lease_end_ms=now_ms + lease_ms)
        return [order_id for order_id, _ in claimed]

    def make_ready(self, order_ids: list[int]) -> dict[int, str]:
        try:
            return timeline.make_ready(order_ids)
        except Exception:
            logger.exception("making %d order(s) ready in one statement failed; one by one instead", len(order_ids))
            return {}

    def handle_one(self, order_id: int, pickup_ms: int, now_ms: int) -> tuple[str, str] | None:
        """Process one due order: (pickup code, outcome), or None when it failed and was pushed back."""
        try:
            with transaction.atomic():
                return timeline.process_due_order(order_id)
        except Exception:
            # After the rollback: Redis is never waited for inside a transaction.
            logger.exception("order id %s failed; trying again in %d s", order_id, RETRY_DELAY_MS // 1000)
            kitchen_queue.postpone(order_id, now_ms + RETRY_DELAY_MS)
            return None

    # -------------------------------------------------------------- waiting

    def next_wake(self, interval: float) -> float:
        """Wake at the next pickup time or alert sweep if one comes before the interval ends."""
        wake = time.time() + interval
        next_alert = socket_pushes.next_alert_due_at()
        if next_alert is not None:
            wake = min(wake, next_alert.timestamp() + settings.PICKUP_RUN_QUEUE_GRACE_MS / 1000)
        try:
            next_ms = kitchen_queue.next_due_ms()
        except RedisError:
            return wake
        if next_ms is not None:
            wake = min(wake, (next_ms + settings.PICKUP_KITCHEN_DELAY_MS) / 1000)
        return wake

    def sleep_until(self, wake_at: float) -> None:
        while not self.stopping:
            left = wake_at - time.time()
            if left <= 0:
                return
            time.sleep(min(SLEEP_SLICE, left))


def limit_frozen_transactions(sender, connection, **kwargs) -> None:
    """Bound, on the server, how long this worker's stall can hold up another's work."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {FROZEN_TRANSACTION_LIMIT_MS}")
