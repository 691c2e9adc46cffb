"""A web process that stops gracefully hands its timers' work back: nothing waits for a lease.

Pushes already made are written down; claims taken ahead of the due time are
released, so another sender may push those alerts at their time.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from notifications import delivery
from notifications.models import Alert
from notifications.timers import alert_timers
from tests.conftest import connected, customer_session
from tests.notifications.test_alert_delivery import place_and_see_it_claimed

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_claim_taken_ahead_of_the_due_time_is_released_for_another_sender(menu, settings):
    settings.PICKUP_TIMER_LOOKAHEAD_MS = 3000  # claimed seconds before it is due
    settings.PICKUP_RUN_QUEUE_GRACE_MS = 0
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        _order, alert, _due, claimed = await place_and_see_it_claimed(socket, menu, 4.0)
        assert claimed is not None

        await alert_timers.hand_back()

        stored = await Alert.objects.aget(pk=alert.pk)
        assert (stored.claim_token, stored.claimed_until, stored.sent_at) == ("", None, None)
        # Handed back, not pushed: this process's timer is gone, and run_queue's sweep takes it when due.
        assert await socket.receive_nothing(timeout=0.2)
        assert await _sweep_when_due(alert.pk) == 1
        message = await socket.receive_json_from(timeout=5)
    assert message["alert"]["id"] == alert.pk


async def test_a_push_already_made_is_written_down_before_the_process_goes(menu, settings):
    settings.PICKUP_TIMER_LOOKAHEAD_MS = 3000
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        _order, alert, _due, claimed = await place_and_see_it_claimed(socket, menu, 0.5)
        assert claimed is not None
        message = await socket.receive_json_from(timeout=5)
        assert message["alert"]["id"] == alert.pk

        await alert_timers.hand_back()  # as soon as the push arrived: its settle may not have run yet

    stored = await Alert.objects.aget(pk=alert.pk)
    assert (stored.sent_at is not None, stored.send_count, stored.claim_token) == (True, 1, "")


async def test_an_alert_claimed_and_due_within_a_second_is_still_pushed_by_the_stopping_process(menu, settings):
    settings.PICKUP_TIMER_LOOKAHEAD_MS = 3000
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        _order, alert, due, claimed = await place_and_see_it_claimed(socket, menu, 0.8)
        assert claimed is not None

        await alert_timers.hand_back()

        stored = await Alert.objects.aget(pk=alert.pk)
        assert (stored.send_count, stored.claim_token) == (1, "")  # pushed at its time and written down
        message = await socket.receive_json_from(timeout=5)
    assert message["alert"]["id"] == alert.pk
    assert timezone.datetime.fromisoformat(message["alert"]["due_at"]) == due


async def test_a_request_served_while_the_process_stops_does_not_start_the_timers_again(monkeypatch):
    import asyncio
    import threading

    from pickup import asgi, probes

    monkeypatch.setattr(probes, "_stopping", threading.Event())
    probes.mark_stopping()
    asgi.start_delivery(asyncio.get_running_loop())
    assert alert_timers.loop is None


async def _sweep_when_due(alert_id: int) -> int:
    """run_queue's sweep, run until it has pushed the alert (it is due in a few seconds)."""
    import asyncio

    from channels.db import database_sync_to_async

    for _attempt in range(500):
        if await database_sync_to_async(delivery.deliver_due)():
            return 1
        await asyncio.sleep(0.02)
    return 0
