"""One-shot in-memory timers that push each alert at its due time.

This is the fast path, the asyncio counterpart of the original demo's
millisecond timers, living on the web server's event loop. It is never the
only path: the alert is a database row, run_queue sends whatever a timer did
not (web server down, timer lost), and on start the timers of pending alerts
are armed again from the database.

Each alert goes through three steps, each batched with whatever else reached
it meanwhile, one run of each step at a time:

1. claim, ``PICKUP_TIMER_LOOKAHEAD_MS`` before the due time, rounded down
   to a 50 ms step: one conditional UPDATE for every alert of the step (the
   claim that makes exactly one sender push first), and their messages
   built, all on the database thread;
2. push, at the due time: only the channel layer, no database;
3. settle: the pushes of the last 50 ms written down together.

So the database's time is spent before the due instant instead of on the
customer's wait, and in a few large pieces: a database thread busy with many
small ones holds the GIL, and every socket write of the event loop then
waits to get it back (measured: 90 µs per send, and a spread p99 twice as high). An alert moved while claimed (``arm`` with another time)
or withdrawn in this process (``disarm``) drops the prepared push; a move
also resets the claim in the database. A withdrawal by another process in the
last ``PICKUP_TIMER_LOOKAHEAD_MS`` before the due time does not stop the push
(docs/delivery.md).

Each alert's timer lives in the web process(es) holding its customer's
sockets, so claims per alert stay about one however many web processes run
(docs/delivery.md). A process arms a customer's alerts when their first
socket connects here (``customer_arrived``), when it schedules one for a
customer connected here (``arm``), when another process schedules one and
tells the customer's group (``arm_here``), and at each refill. An alert
scheduled here for a customer connected elsewhere goes to that customer's
group instead, and the processes holding their sockets arm it. A timer whose
customer has left by its claim time is dropped unclaimed (a page reload
keeps it); run_queue sends what no process armed.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from notifications.memberships import memberships
from notifications.sender import customer_group, send_to_groups

if TYPE_CHECKING:
    from notifications.delivery import Pushes
    from notifications.models import Alert

logger = logging.getLogger(__name__)

# Claims are made on a grid of this step, so alerts due within it share one.
CLAIM_STEP_MS = 50
# Seconds pushes wait for others before their outcome is written down together.
SETTLE_WINDOW = 0.05
# A stopping web process still pushes the alerts it claimed that fall due this
# soon: a release would leave them to run_queue's next pass, up to a second later.
PUSH_WHILE_STOPPING = timedelta(seconds=1)


class AlertTimers:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        # Per alert id, the timer running for it (its claim's, then its push's) and its due time.
        self._handles: dict[int, tuple[asyncio.TimerHandle, datetime]] = {}
        self._customer_of: dict[int, str] = {}  # alert id -> its customer, while its claim is ahead
        self._pushed: dict[int, datetime] = {}  # alert id -> due time, pushed here: a late refill must not re-arm it
        self._present: set[str] = set()  # customers connected here whose alerts are armed
        self._arriving: set[str] = set()  # customers just connected, their alerts not read yet
        self._to_tell: list[tuple[str, dict]] = []  # alerts scheduled here for customers connected elsewhere
        self._to_claim: dict[int, datetime] = {}
        self._claiming: dict[int, datetime] = {}
        self._to_push: list[tuple[Alert, tuple[str, dict]]] = []
        self._unsettled: list[Pushes] = []
        self._runs: dict[str, asyncio.Task] = {}
        self._refill_task: asyncio.Task | None = None
        # Alerts claimed ahead whose push waits for the due time: handed back on a graceful stop.
        self._claimed: dict[int, Alert] = {}
        self._handing_back = False

    @property
    def lookahead(self) -> timedelta:
        return timedelta(milliseconds=settings.PICKUP_TIMER_LOOKAHEAD_MS)

    @property
    def horizon(self) -> timedelta:
        return timedelta(seconds=settings.PICKUP_TIMER_HORIZON_SECONDS)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to the server's event loop and re-arm pending alerts from the database."""
        if not settings.PICKUP_WEB_TIMERS:
            return
        loop = loop or asyncio.get_running_loop()
        if self.loop is loop and not loop.is_closed():
            return
        self._forget()
        self.loop = loop
        self._refill_task = loop.create_task(self._refill_forever())

    def stop(self) -> None:
        """Forget every timer (tests; a loop that is going away).

        Alerts claimed but not pushed stay claimed until their lease runs
        out; run_queue sends them then, as after a crash. A graceful stop
        calls ``hand_back`` instead.
        """
        for handle, _due_at in self._handles.values():
            handle.cancel()
        if self.loop is not None and not self.loop.is_closed():
            for task in [self._refill_task, *self._runs.values()]:
                if task is not None:
                    task.cancel()
        self._forget()
        self._refill_task = None
        self.loop = None

    def _forget(self) -> None:
        for state in (
            self._handles, self._customer_of, self._pushed, self._present, self._arriving, self._to_tell,
            self._to_claim, self._claiming, self._to_push, self._unsettled, self._runs, self._claimed,
        ):
            state.clear()
        self._handing_back = False

    async def hand_back(self) -> None:
        """A graceful stop (SIGTERM): leave nothing for a lease to wait out, then forget every timer.

        No new claim is made; a claim under way finishes. Alerts claimed
        that fall due within ``PUSH_WHILE_STOPPING`` are pushed at their time
        (sooner than run_queue would, after a release); every push made is
        written down (one not written down would be pushed again when its
        lease ends); alerts claimed further ahead are released, so run_queue
        sends them at their time, not when the lease runs out.
        """
        from notifications import delivery, socket_pushes

        if self.loop is None:
            return
        self._handing_back = True
        try:
            if self._refill_task is not None:
                self._refill_task.cancel()
            self._cancel_timers(keep_pushes=True)
            await self._finish("claim")  # what it wins becomes a push due now, or a push timer
            await self._push_those_due_soon()
            self._cancel_timers(keep_pushes=False)  # those claims are released below
            await self._finish("push")
            await self._finish("settle")
            if self._unsettled:  # the settle step failed: once more; if that fails, the lease decides
                await database_sync_to_async(delivery.settle)(self._unsettled, "timer")
            released = list(self._claimed.values())
            if released:
                await database_sync_to_async(socket_pushes.release_claims)(released)
                logger.info("handed back %d alert claim(s) taken ahead of their due time", len(released))
        finally:
            self.stop()

    async def _push_those_due_soon(self) -> None:
        """Let the push timers due within ``PUSH_WHILE_STOPPING`` fire; cancel the others."""
        soon = timezone.now() + PUSH_WHILE_STOPPING
        for alert_id in list(self._handles):
            if self._handles[alert_id][1] > soon:
                self._handles.pop(alert_id)[0].cancel()
        # The loop's clock and the wall clock may disagree by a hair: a timer can fire a moment late.
        while self._handles and timezone.now() < soon + PUSH_WHILE_STOPPING:
            await asyncio.sleep(0.01)

    def _cancel_timers(self, *, keep_pushes: bool) -> None:
        """Cancel the claim timers, and with them the push timers unless ``keep_pushes``."""
        for alert_id in list(self._handles):
            if not (keep_pushes and alert_id in self._claimed):
                self._handles.pop(alert_id)[0].cancel()
        self._to_claim.clear()

    async def _finish(self, step: str) -> None:
        running = self._runs.get(step)
        if running is not None and not running.done():
            await asyncio.shield(running)

    def arm(self, alert_id: int, due_at: datetime, customer_id: str) -> None:
        """Arm (or move) the timer of an alert scheduled in this process; safe to call from any thread.

        Armed here if its customer has a socket here, else handed to the
        processes that hold the customer's sockets.
        """
        loop = self.loop
        if loop is None or loop.is_closed():
            return  # no web server loop in this process: run_queue will send it
        # A fresh context: the caller may be inside sync_to_async (an on_commit
        # hook), and its context must not leak into the delivery task.
        loop.call_soon_threadsafe(self._arm_scheduled, alert_id, due_at, customer_id, context=contextvars.Context())

    def arm_here(self, alert_id: int, due_at: datetime, customer_id: str) -> None:
        """Another process scheduled an alert of a customer connected here (on the loop)."""
        if self.loop is not None and is_here(customer_id):
            self._arm(alert_id, due_at, customer_id)

    def customer_arrived(self, customer_id: str) -> None:
        """A socket of the customer joined their group here (on the loop): the first one arms their alerts."""
        if self.loop is None or customer_id in self._present:
            return
        self._present.add(customer_id)
        self._arriving.add(customer_id)
        self._run("arrivals", self._arm_arrivals)

    def customer_left(self, customer_id: str) -> None:
        """A socket of the customer left their group here (on the loop).

        Their timers stay until their claim time, which drops them if the
        customer is still away: a page that reloads keeps its timers.
        """
        if not is_here(customer_id):
            self._present.discard(customer_id)

    def _arm_scheduled(self, alert_id: int, due_at: datetime, customer_id: str) -> None:
        if is_here(customer_id):
            self._arm(alert_id, due_at, customer_id)
            return
        # Redis knows which processes hold the customer's sockets: their
        # sockets hear this and arm it there (none anywhere: run_queue's).
        message = {"type": "alert.scheduled", "alert_id": alert_id, "due_at": due_at.isoformat()}
        self._to_tell.append((customer_group(customer_id), message))
        self._run("tell", self._tell_while_waiting)

    async def _tell_while_waiting(self) -> None:
        while self._to_tell:
            batch, self._to_tell = self._to_tell, []
            await send_to_groups(batch)  # refused or lost: run_queue sends the alert

    async def _arm_arrivals(self) -> None:
        from notifications.socket_pushes import alerts_due_soon

        while self._arriving:
            customers, self._arriving = self._arriving, set()
            try:
                due_soon = await database_sync_to_async(alerts_due_soon)(self.horizon, customers)
            except Exception:
                logger.exception("could not load the alerts of %d customers; the next refill arms them", len(customers))
                continue
            self._arm_customers_here(due_soon)

    def _arm_customers_here(self, due_soon: list[tuple[int, datetime, str]]) -> None:
        for alert_id, due_at, customer_id in due_soon:
            if is_here(customer_id):
                self._arm(alert_id, due_at, customer_id)

    def disarm(self, alert_ids: list[int]) -> None:
        """Drop the timers of withdrawn alerts, a push already prepared included; any thread."""
        loop = self.loop
        if alert_ids and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._disarm, alert_ids, context=contextvars.Context())

    def _disarm(self, alert_ids: list[int]) -> None:
        for alert_id in alert_ids:
            current = self._handles.pop(alert_id, None)
            if current is not None:
                current[0].cancel()
            self._to_claim.pop(alert_id, None)
            self._claiming.pop(alert_id, None)
            self._customer_of.pop(alert_id, None)
            self._claimed.pop(alert_id, None)

    def _arm(self, alert_id: int, due_at: datetime, customer_id: str) -> None:
        if self._handing_back:
            return  # run_queue, or the process the customer reconnects to, sends it
        current = self._handles.get(alert_id)
        known = current[1] if current else self._to_claim.get(alert_id, self._claiming.get(alert_id))
        if known == due_at or self._pushed.get(alert_id) == due_at:
            return  # armed twice (a refill, a second tab's arrival) or pushed already: one timer
        self._customer_of[alert_id] = customer_id
        if current is not None:
            current[0].cancel()  # moved: a push prepared for the old time is dropped too
        self._claimed.pop(alert_id, None)
        self._to_claim.pop(alert_id, None)
        self._claiming.pop(alert_id, None)
        self._call_at(self._claim_time(due_at), alert_id, due_at, self._claim_soon, alert_id, due_at)

    def _claim_time(self, due_at: datetime) -> datetime:
        """The lookahead before the due time, rounded down to a step: alerts due
        close together are claimed together, a few claims a second at most."""
        claim_at = due_at - self.lookahead
        return claim_at - timedelta(microseconds=claim_at.timestamp() * 1_000_000 % (CLAIM_STEP_MS * 1000))

    def _call_at(self, when: datetime, alert_id: int, due_at: datetime, callback: Callable, *args) -> None:
        delay = max(0.0, (when - timezone.now()).total_seconds())
        self._handles[alert_id] = (self.loop.call_later(delay, callback, *args), due_at)

    def _claim_soon(self, alert_id: int, due_at: datetime) -> None:
        # The loop's monotonic clock and the wall clock can disagree by a hair.
        claim_at = self._claim_time(due_at)
        if claim_at > timezone.now():
            self._call_at(claim_at, alert_id, due_at, self._claim_soon, alert_id, due_at)
            return
        self._handles.pop(alert_id, None)
        if not is_here(self._customer_of.pop(alert_id, "")):
            return  # the customer left this process: another that holds them, or run_queue, sends it
        self._to_claim[alert_id] = due_at
        self._run("claim", self._claim_while_wanted)

    async def _claim_while_wanted(self) -> None:
        from notifications import delivery, metrics

        while self._to_claim:
            self._claiming, self._to_claim = self._to_claim, {}
            try:
                claimed = await database_sync_to_async(delivery.claim_ahead)(
                    list(self._claiming), self.lookahead + timedelta(milliseconds=CLAIM_STEP_MS)
                )
            except Exception:
                logger.exception("claiming alerts %s failed; run_queue will send them", list(self._claiming))
                claimed = []
            metrics.count_timer_claims(tried=len(self._claiming), won=len(claimed))
            for alert, message in claimed:
                if self._claiming.get(alert.pk) == alert.due_at:  # else moved meanwhile: its new timer decides
                    self._push_at_due(alert, message)
            self._claiming = {}

    def _push_at_due(self, alert: Alert, message: tuple[str, dict]) -> None:
        if alert.due_at > timezone.now():  # never before the due time
            self._claimed[alert.pk] = alert
            self._call_at(alert.due_at, alert.pk, alert.due_at, self._push_at_due, alert, message)
            return
        self._claimed.pop(alert.pk, None)
        self._handles.pop(alert.pk, None)
        self._pushed[alert.pk] = alert.due_at
        self._to_push.append((alert, message))
        self._run("push", self._push_while_due)

    async def _push_while_due(self) -> None:
        from notifications import delivery

        while self._to_push:
            batch, self._to_push = self._to_push, []
            try:
                pushes = await delivery.push_async(batch)
            except Exception:
                logger.exception("pushing alerts %s failed; run_queue will send them", [alert.pk for alert, _ in batch])
                continue
            # Only now: a settle during the push swaps the list, and one read
            # before the await would hand the push to a batch already written.
            self._unsettled.append(pushes)
            self._run("settle", self._settle_while_unsettled)

    async def _settle_while_unsettled(self) -> None:
        from notifications import delivery

        while self._unsettled:
            # Settling is bookkeeping (the claim holds meanwhile): wait for more
            # pushes to join rather than take the database thread for each one.
            await asyncio.sleep(SETTLE_WINDOW)
            batch, self._unsettled = self._unsettled, []
            try:
                await database_sync_to_async(delivery.settle)(batch, "timer")
            except Exception:
                # They stay claimed; once the lease runs out run_queue pushes
                # them again, and the client shows each alert once.
                logger.exception("could not record the timers' pushes; run_queue will push them again")

    def _run(self, step: str, body: Callable) -> None:
        """Start a step's run unless one is going: that run takes the new work too."""
        running = self._runs.get(step)
        if running is None or running.done():
            self._runs[step] = self.loop.create_task(body())

    async def _refill_forever(self) -> None:
        """Arm what this process's customers are owed and nobody told it of (alerts moved in the database)."""
        from notifications.socket_pushes import alerts_due_soon

        while True:
            try:
                due_soon = await database_sync_to_async(alerts_due_soon)(self.horizon)
                self._forget_pushed_before(timezone.now() - self.horizon)
                self._arm_customers_here(due_soon)
            except Exception:
                logger.exception("could not load pending alerts; retrying")
            await asyncio.sleep(self.horizon.total_seconds() / 4)

    def _forget_pushed_before(self, moment: datetime) -> None:
        for alert_id in [alert_id for alert_id, due_at in self._pushed.items() if due_at < moment]:
            del self._pushed[alert_id]


def is_here(customer_id: str) -> bool:
    """Whether a socket of the customer is open in this process."""
    return bool(customer_id) and bool(memberships.sockets_in(customer_group(customer_id)))


alert_timers = AlertTimers()
