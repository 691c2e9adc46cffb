"""A web timer's push is written down even when a settle runs while it is being pushed."""

from __future__ import annotations

import pytest

from notifications import delivery
from notifications.delivery import Pushes
from notifications.timers import alert_timers
from tests.conftest import connected, customer_session
from tests.notifications.test_alert_delivery import place_due_in, recorded

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_push_during_a_settle_is_still_recorded(menu, monkeypatch):
    pushing = delivery.push_async

    async def push_while_a_settle_runs(claimed):
        # Another batch's pushes are being settled while this one is on the wire:
        # the settle swaps the list of unsettled pushes and writes it down.
        alert_timers._unsettled.append(Pushes([], []))
        alert_timers._run("settle", alert_timers._settle_while_unsettled)
        pushes = await pushing(claimed)
        await alert_timers._runs["settle"]
        return pushes

    monkeypatch.setattr(delivery, "push_async", push_while_a_settle_runs)
    session_key, _ = await customer_session()
    async with connected(session_key) as socket:
        order, _alert = await place_due_in(socket, menu, 0.5)
        message = await socket.receive_json_from(timeout=5)

    assert message["alert"]["order_id"] == order["id"]
    alert = await recorded(message["alert"]["id"])
    assert (alert.sent_at is not None, alert.send_count, alert.claim_token) == (True, 1, "")
