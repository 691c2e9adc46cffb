"""Acknowledgements from every socket of a web process, written together.

A burst of alerts comes back as a burst of acknowledgements. Written one by
one they would queue, one UPDATE each, on the database thread that claims
the next alerts; gathered for a few milliseconds they cost two queries per
batch. Each socket still gets its own answer: acknowledged, or not its alert.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.utils.translation import gettext_lazy as _

from notifications import services
from pickup.batching import Batcher
from pickup.errors import PickupError

WINDOW = 0.02  # seconds an acknowledgement waits for others to join it


def _acknowledge_many(pairs: list[tuple[str, int]]) -> list[bool]:
    acknowledged = services.acknowledge_alerts(pairs)
    return [pair in acknowledged for pair in pairs]


_batcher = Batcher(database_sync_to_async(_acknowledge_many), window=WINDOW, max_batch=1000)


async def acknowledge(*, customer_id: str, alert_id: int) -> None:
    """Mark the customer's alert acknowledged; PickupError if it is not theirs.

    ``alert_id`` must come range-checked (``orders.parsing.parse_alert_id``):
    one id the database cannot take would fail the whole batch, everybody's
    acknowledgements with it.
    """
    if not await _batcher.submit((customer_id, alert_id)):
        raise PickupError("alert_not_found", _("There is no such alert for you."), field="alert_id")
