"""One-shot in-memory timers that push each alert at its due time.

This is the fast path, the asyncio counterpart of the original demo's
millisecond timers, living on the web server's event loop. It is never the
only path: the alert is a database row, run_queue sends whatever a timer did
not (web server down, timer lost), and on start the timers of pending alerts
are armed again from the database.

Timers that fall due together are delivered as one batch: one claim in the
database, concurrent pushes, one settling write.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from datetime import datetime, timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


class AlertTimers:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._handles: dict[int, tuple[asyncio.TimerHandle, datetime]] = {}
        self._due: set[int] = set()
        self._flush_scheduled = False
        self._refill_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def armed(self) -> int:
        return len(self._handles)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to the server's event loop and re-arm pending alerts from the database."""
        if not settings.PICKUP_WEB_TIMERS:
            return
        loop = loop or asyncio.get_running_loop()
        if self.loop is loop and not loop.is_closed():
            return
        self.loop = loop
        self._handles.clear()
        self._due.clear()
        self._flush_scheduled = False
        self._refill_task = loop.create_task(self._refill_forever())

    def stop(self) -> None:
        """Forget every timer (tests; a loop that is going away)."""
        for handle, _due_at in self._handles.values():
            handle.cancel()
        self._handles.clear()
        if self.loop is not None and not self.loop.is_closed():
            for task in [self._refill_task, *self._tasks]:
                if task is not None:
                    task.cancel()
        self._tasks.clear()
        self._refill_task = None
        self.loop = None

    def arm(self, alert_id: int, due_at: datetime) -> None:
        """Arm (or move) the timer of one alert; safe to call from any thread."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return  # no web server loop in this process: run_queue will send it
        # A fresh context: the caller may be inside sync_to_async (an on_commit
        # hook), and its context must not leak into the delivery task.
        loop.call_soon_threadsafe(self._arm, alert_id, due_at, context=contextvars.Context())

    def _arm(self, alert_id: int, due_at: datetime) -> None:
        current = self._handles.get(alert_id)
        if current is not None:
            if current[1] == due_at:
                return
            current[0].cancel()
        delay = max(0.0, (due_at - timezone.now()).total_seconds())
        handle = self.loop.call_later(delay, self._fire, alert_id, due_at)
        self._handles[alert_id] = (handle, due_at)

    def _fire(self, alert_id: int, due_at: datetime) -> None:
        # The loop's monotonic clock and the wall clock can disagree by a
        # hair; never push before the due time.
        early = (due_at - timezone.now()).total_seconds()
        if early > 0:
            self._handles[alert_id] = (self.loop.call_later(early, self._fire, alert_id, due_at), due_at)
            return
        self._handles.pop(alert_id, None)
        self._due.add(alert_id)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._spawn(self._deliver_while_due())

    async def _deliver_while_due(self) -> None:
        """One delivery at a time: alerts falling due while a batch is being
        claimed and pushed wait for the next batch instead of each starting
        its own database round trip, so a burst becomes a few large batches."""
        try:
            while self._due:
                alert_ids, self._due = list(self._due), set()
                await self._deliver(alert_ids)
        finally:
            self._flush_scheduled = False
            if self._due:  # fell due during the last await of a cancelled run
                self._flush_scheduled = True
                self._spawn(self._deliver_while_due())

    def _spawn(self, coroutine) -> None:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, alert_ids: list[int]) -> None:
        from notifications import delivery

        try:
            await delivery.deliver_async(alert_ids=alert_ids)
        except Exception:
            logger.exception("timer delivery of alerts %s failed; run_queue will send them", alert_ids)

    async def _refill_forever(self) -> None:
        from notifications.services import alerts_due_soon

        horizon = timedelta(seconds=settings.PICKUP_TIMER_HORIZON_SECONDS)
        while True:
            try:
                for alert_id, due_at in await database_sync_to_async(alerts_due_soon)(horizon):
                    self._arm(alert_id, due_at)
            except Exception:
                logger.exception("could not load pending alerts; retrying")
            await asyncio.sleep(horizon.total_seconds() / 4)


alert_timers = AlertTimers()
