"""Placing many orders at once inside a running stack, through the real service."""

from __future__ import annotations

from pickup.testing import Stack


def place_orders(stack: Stack, *, session_keys: list[str] | None = None, count: int, due_in: float) -> list[int]:
    """Place ``count`` orders all due at one instant ``due_in`` seconds from now; returns their ids.

    The orders go round-robin to the customers of ``session_keys`` (browser
    sessions); without any, each order has a customer of its own. They are
    placed in a ``manage.py shell``, so no web process has armed their
    timers: until a web server re-arms them from the database, run_queue
    sends their alerts.
    """
    code = f"""
from datetime import timedelta
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from orders import services
from orders.customers import SESSION_KEY
from orders.models import MenuItem
item = MenuItem.objects.first().pk
customers = [SessionStore(session_key=key)[SESSION_KEY] for key in {list(session_keys or [])!r}]
pickup_at = timezone.now() + timedelta(seconds={due_in})
ids = [
    services.place_order(
        customer_id=customers[n % len(customers)] if customers else f"bulk-{{n}}", lines=[(item, 1)], pickup_at=pickup_at
    ).pk
    for n in range({count})
]
print(",".join(map(str, ids)))
"""
    return [int(order_id) for order_id in stack.shell(code, timeout=300).strip().split(",")]
