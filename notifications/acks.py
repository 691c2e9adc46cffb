"""Acknowledgements from every socket of a web process, written together.

A burst of alerts comes back as a burst of acknowledgements. Written one by
one they would queue, one UPDATE each, on the database thread that claims
the next alerts; gathered for a few milliseconds they cost two queries per
batch. Each socket still gets its own answer: acknowledged, or not its alert.
"""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from django.utils.translation import gettext_lazy as _

from notifications import services
from pickup.errors import PickupError

WINDOW = 0.02  # seconds an acknowledgement waits for others to join it


class AckBatcher:
    def __init__(self) -> None:
        self._pending: list[tuple[str, int, asyncio.Future]] = []
        self._scheduled = False

    async def acknowledge(self, *, customer_id: str, alert_id: object) -> None:
        if not isinstance(alert_id, int) or isinstance(alert_id, bool):
            raise PickupError("invalid_alert_id", _("alert_id must be an integer."), field="alert_id")
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._pending.append((customer_id, alert_id, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_later(WINDOW, lambda: loop.create_task(self._write()))
        if not await done:
            raise PickupError("alert_not_found", _("There is no such alert for you."), field="alert_id")

    async def _write(self) -> None:
        batch, self._pending, self._scheduled = self._pending, [], False
        try:
            acknowledged = await database_sync_to_async(services.acknowledge_alerts)(
                [(customer_id, alert_id) for customer_id, alert_id, _ in batch]
            )
        except Exception as error:
            for *_, done in batch:
                if not done.done():
                    done.set_exception(error)
            return
        for customer_id, alert_id, done in batch:
            if not done.done():
                done.set_result((customer_id, alert_id) in acknowledged)


ack_batcher = AckBatcher()
