"""Claim → push → settle, the one sequence by which an alert leaves Pickup.

To the customer's sockets: the web process's timers claim shortly before the
due time and push at it (notifications/timers.py), run_queue claims and
pushes what is due; both go through the same claim, so an alert is pushed
first by exactly one of them. By Web Push: run_queue's ``WebPushWorker``
claims, sends and settles each subscription's copy (notifications/web_pushes.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from notifications import metrics, socket_pushes, web_pushes, webpush
from notifications.payloads import alert_messages
from notifications.models import Alert
from notifications.sender import push_alerts, push_alerts_sync
from notifications.transports import Outcome, Result

logger = logging.getLogger(__name__)


def _log(alerts: list[Alert], results: list[Result], via: str) -> None:
    for alert, result in zip(alerts, results, strict=True):
        logger.info(
            "alert %s (%s, order %s, push %d) %s via %s",
            alert.pk, alert.kind, alert.order.pickup_code, alert.send_count + 1,
            "pushed" if result.outcome is Outcome.DELIVERED else "push FAILED, will retry", via,
        )


@dataclass
class Pushes:
    """Alerts pushed under a claim whose outcome is not yet written down."""

    alerts: list[Alert]
    results: list[Result]
    # When the channel layer took them (epoch seconds): made right after the push.
    pushed_at: float = field(default_factory=time.time)


def claim_ahead(alert_ids: list[int], ahead: timedelta) -> list[tuple[Alert, tuple[str, dict]]]:
    """The web timers' claim, shortly before the due time: each alert won with its message."""
    alerts = socket_pushes.claim_alerts(alert_ids=alert_ids, limit=len(alert_ids), ahead=ahead)
    return list(zip(alerts, alert_messages(alerts), strict=True))


async def push_async(claimed: list[tuple[Alert, tuple[str, dict]]]) -> Pushes:
    return Pushes([alert for alert, _ in claimed], await push_alerts([message for _, message in claimed]))


def settle(batches: list[Pushes], via: str) -> None:
    """Write down the outcome of pushes; the counts and the log line follow the record."""
    socket_pushes.settle_pushes(
        [alert for pushes in batches for alert in pushes.alerts], [result for pushes in batches for result in pushes.results]
    )
    for pushes in batches:
        metrics.count_socket_pushes(pushes.alerts, pushes.results, via, pushes.pushed_at)
        _log(pushes.alerts, pushes.results, via)


def deliver_due(*, limit: int = 500) -> int:
    """run_queue's sweep: push every alert whose (re)send time has come."""
    alerts = socket_pushes.claim_alerts(limit=limit)
    if not alerts:
        return 0
    settle([Pushes(alerts, push_alerts_sync(alert_messages(alerts)))], "run_queue")
    return len(alerts)


class WebPushWorker:
    """run_queue's Web Push sender, on a thread and an event loop of its own.

    A push service that answers slowly or not at all holds up only this
    thread: the alerts to sockets and the kitchen work go on. Due messages
    are claimed as room frees up, sent many at once, and each answer is
    written down within ``SETTLE_EVERY`` of arriving. The lease of what is in
    flight is renewed once a third of it has passed: a push service slower
    than the lease (or a busy machine) must not let another worker send the
    same attempt again while this one still waits for its answer.
    """

    IN_FLIGHT = 4 * webpush.CONCURRENCY
    CLAIM_AT_LEAST = webpush.CONCURRENCY
    SETTLE_EVERY = 0.05

    def __init__(self, *, interval: float = 1.0) -> None:
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Django's database calls are sync: they run on one thread of their own.
        self._database = ThreadPoolExecutor(1, thread_name_prefix="pickup-web-push-db")

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="pickup-web-push", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = webpush.TIMEOUT_SECONDS + 5) -> None:
        """Finish the sends under way (their answers are written down), then stop."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> int:
        """Send what is due now and wait for every answer (run_queue --once, tests)."""
        self._stopping.set()
        try:
            return asyncio.run(self._serve())
        finally:
            self._database.shutdown(wait=False)

    async def _db(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._database, _with_fresh_connection, function, *args)

    async def _serve(self) -> int:
        sender = webpush.Sender()
        in_flight: dict[asyncio.Task, web_pushes.WebPush] = {}
        leases: dict[str, datetime] = {}  # claim token → when its lease ends
        sent = 0
        try:
            while True:
                try:
                    sent += await self._step(sender, in_flight, leases)
                except Exception:
                    # The database or a bug: the claims stay, the leases run
                    # out, and the next step (or another worker) sends again.
                    logger.exception("Web Push step failed; trying again")
                    await asyncio.sleep(self.interval)
                if self._stopping.is_set() and not in_flight:
                    break
        finally:
            await sender.close()
            # The database thread's connection goes back (to the pool, on
            # PostgreSQL): one per worker, not one leaked per --once run.
            await asyncio.get_running_loop().run_in_executor(self._database, connections.close_all)
        return sent

    async def _step(self, sender: webpush.Sender, in_flight: dict, leases: dict) -> int:
        """Claim what is due as room allows, keep the claims in flight, then write down the answers that came in."""
        room = self.IN_FLIGHT - len(in_flight)
        # Claims are made for a good share of the room at once: a claim costs
        # three queries whatever its size, and a few answers free little room.
        claiming = not in_flight or (room >= self.CLAIM_AT_LEAST and not self._stopping.is_set())
        claimed = await self._db(web_pushes.claim_due, room) if claiming else []
        for row, message in claimed:
            in_flight[asyncio.ensure_future(sender.send_one(message))] = row
            leases[row.claim_token] = row.claimed_until
        await self._renew(in_flight, leases)
        if not in_flight:
            if not self._stopping.is_set():
                await self._sleep_until_due()
            return 0
        finished, _ = await asyncio.wait(in_flight, timeout=self.SETTLE_EVERY)
        answers = [(in_flight.pop(task), task.result()) for task in finished]
        if answers:
            await self._db(web_pushes.settle, answers)
        return len(claimed)

    async def _renew(self, in_flight: dict, leases: dict) -> None:
        held = {row.claim_token for row in in_flight.values()}
        for token in leases.keys() - held:
            del leases[token]
        lease = timedelta(seconds=settings.PICKUP_CLAIM_LEASE_SECONDS)
        # Renewed with two thirds of the lease left: a step (a claim, a settle)
        # slowed by a loaded machine still comes well before it runs out.
        renew_by = timezone.now() + lease * 2 / 3
        due = [token for token, until in leases.items() if until <= renew_by]
        if due:
            until = await self._db(web_pushes.renew, due)
            for token in due:
                leases[token] = until

    async def _sleep_until_due(self) -> None:
        next_due = await self._db(web_pushes.next_due_at)
        wait = self.interval
        if next_due is not None:
            wait = min(wait, max(0.0, (next_due - timezone.now()).total_seconds()))
            if wait == 0:
                # Due but not claimable: acknowledged or withdrawn meanwhile. Close
                # them, or this would spin (no write at all while nothing is due).
                await self._db(web_pushes.finish_unneeded)
                wait = self.SETTLE_EVERY
        waited = 0.0
        while waited < wait and not self._stopping.is_set():
            await asyncio.sleep(min(0.25, wait - waited))
            waited += 0.25


def _with_fresh_connection(function, *args):
    close_old_connections()
    return function(*args)
