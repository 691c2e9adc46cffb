"""run_queue: the kitchen queue's worker loop.

Each pass (1) rebuilds the kitchen queue from the database if Redis lost it,
(2) starts the preparation of orders whose lead time has come, (3) claims the
orders whose pickup time has come, atomically, and marks each ready once,
(4) reminds and closes ready orders nobody collected, (5) pushes every alert
that is due and not yet sent, or sent but never acknowledged. Then it sleeps
until the next pickup time or the interval, whichever comes first. Safe to
run as several copies.
"""

from __future__ import annotations

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, transaction
from redis.exceptions import RedisError

from notifications import delivery
from notifications import services as alert_services
from orders import kitchen_queue, selectors, timeline
from orders.services import announce_to_staff
from pickup.gc_tuning import tune_for_latency

logger = logging.getLogger("pickup.run_queue")

# A failing order is tried again this much later instead of blocking the loop.
RETRY_DELAY_MS = 10_000
# Sleep in slices this long so SIGTERM is honoured quickly.
SLEEP_SLICE = 0.25
# Orders claimed and made ready per transaction, between two alert sweeps:
# a customer's alert never waits behind more than one slice of kitchen work.
KITCHEN_SLICE = 100


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
        logger.info("run_queue started (interval %.3fs, batch %d)", interval, self.batch)
        while not self.stopping:
            try:
                orders, alerts = self.run_pass()
                # An idle pass says nothing worth a line at INFO, once a second.
                level = logging.INFO if orders or alerts else logging.DEBUG
                logger.log(level, "pass: %d order(s) processed, %d alert push(es)", orders, alerts)
            except RedisError as error:
                logger.warning("Redis unavailable (%s); retrying", error)
                self.last_rebuild = 0.0  # whatever Redis comes back with, check it
            except Exception:
                logger.exception("pass failed; retrying")
            finally:
                close_old_connections()
            if once:
                break
            self.sleep_until(self.next_wake(interval))
        logger.info("run_queue stopped")

    def on_signal(self, signum, frame):
        logger.info("received %s; finishing the current item", signal.Signals(signum).name)
        self.stopping = True

    # -------------------------------------------------------------- one pass

    def run_pass(self) -> tuple[int, int]:
        self.rebuild_if_needed()
        # Alerts first: they are what the customer is waiting for.
        alerts = self.push_due_alerts()
        with transaction.atomic():
            timeline.start_preparations(limit=self.batch)
        processed = 0
        while not self.stopping:
            claimed = self.claim_batch()
            processed += len(claimed)
            # Alerts that fell due during that batch go out before the next one.
            alerts += self.push_due_alerts()
            if len(claimed) < self.kitchen_batch:
                break
        with transaction.atomic():
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
        done, ready, lines = [], [], []
        # One commit per batch: the orders still waiting are made ready by
        # one statement, the rest each in a savepoint, so one failing order
        # is pushed back without undoing the others. The log lines follow
        # the commit, so they only ever tell what was stored.
        with transaction.atomic():
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
                if what == "ready":
                    ready.append(order_id)
        for line in lines:
            logger.info("order %s (id %s): %s, %d ms after its pickup time", *line)
        kitchen_queue.finish(done, lease_end_ms=now_ms + lease_ms)
        if ready:
            announce_to_staff(ready, "order.ready")
        return [order_id for order_id, _ in claimed]

    def make_ready(self, order_ids: list[int]) -> dict[int, str]:
        try:
            with transaction.atomic():
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
            logger.exception("order id %s failed; trying again in %d s", order_id, RETRY_DELAY_MS // 1000)
            kitchen_queue.postpone(order_id, now_ms + RETRY_DELAY_MS)
            return None

    # -------------------------------------------------------------- waiting

    def next_wake(self, interval: float) -> float:
        """Wake at the next pickup time or alert sweep if one comes before the interval ends."""
        wake = time.time() + interval
        next_alert = alert_services.next_alert_due_at()
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
