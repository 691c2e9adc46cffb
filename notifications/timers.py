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
        for state in (self._handles, self._to_claim, self._claiming, self._to_push, self._unsettled, self._runs, self._claimed):
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
        from notifications import delivery

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
                await database_sync_to_async(delivery.release)(released)
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

    def arm(self, alert_id: int, due_at: datetime) -> None:
        """Arm (or move) the timer of one alert; safe to call from any thread."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return  # no web server loop in this process: run_queue will send it
        # A fresh context: the caller may be inside sync_to_async (an on_commit
        # hook), and its context must not leak into the delivery task.
        loop.call_soon_threadsafe(self._arm, alert_id, due_at, context=contextvars.Context())

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
            self._claimed.pop(alert_id, None)

    def _arm(self, alert_id: int, due_at: datetime) -> None:
        if self._handing_back:
            return  # run_queue, or another web process, sends it
        current = self._handles.get(alert_id)
        known = current[1] if current else self._to_claim.get(alert_id, self._claiming.get(alert_id))
        if known == due_at:
            return  # armed twice (a refill, a second web process's arm): one timer
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
        self._to_claim[alert_id] = due_at
        self._run("claim", self._claim_while_wanted)

    async def _claim_while_wanted(self) -> None:
        from notifications import delivery

        while self._to_claim:
            self._claiming, self._to_claim = self._to_claim, {}
            try:
                claimed = await database_sync_to_async(delivery.claim_ahead)(
                    list(self._claiming), self.lookahead + timedelta(milliseconds=CLAIM_STEP_MS)
                )
            except Exception:
                logger.exception("claiming alerts %s failed; run_queue will send them", list(self._claiming))
                claimed = []
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
        from notifications.socket_pushes import alerts_due_soon

        horizon = timedelta(seconds=settings.PICKUP_TIMER_HORIZON_SECONDS)
        while True:
            try:
                for alert_id, due_at in await database_sync_to_async(alerts_due_soon)(horizon):
                    self._arm(alert_id, due_at)
            except Exception:
                logger.exception("could not load pending alerts; retrying")
            await asyncio.sleep(horizon.total_seconds() / 4)


alert_timers = AlertTimers()
