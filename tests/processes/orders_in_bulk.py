"""Placing many orders at once inside a running stack, through the real service."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import datetime, timedelta, timezone

from redis import Redis

from pickup.testing import Stack
from tests.pickup_moves import kitchen_queue_in, move_pickups

# Orders are placed this far ahead, so none falls due however long placing
# takes; their pickup time is moved to the one wanted once all are stored.
PLACED_AHEAD = timedelta(minutes=30)

# For a stack whose web servers' timers must push orders moved in the database
# (stack_settings): they re-read pending alerts every quarter of this horizon,
# so a move has its timer within a second, not half a minute.
REFILL_EVERY_SECOND = {"PICKUP_TIMER_HORIZON_SECONDS": 4}


def place_orders(
    stack: Stack, *, session_keys: list[str] | None = None, count: int, due_in: float | None
) -> list[int]:
    """Place ``count`` orders all due at one instant ``due_in`` seconds after the last is placed; returns their ids.

    The orders go round-robin to the customers of ``session_keys`` (browser
    sessions); without any, each order has a customer of its own. They are
    placed in a ``manage.py shell``, so no web process has armed their
    timers: until a web server re-arms them from the database, run_queue
    sends their alerts. With ``due_in=None`` they stay half an hour ahead,
    for ``move_pickup_time`` to bring closer when the test is ready.
    A test holding sockets open calls it with ``asyncio.to_thread``: the
    shell takes seconds, tens of them on a loaded machine.
    """
    move = "" if due_in is None else f"move_pickups_here(ids, timezone.now() + timedelta(seconds={due_in}))"
    code = f"""
from datetime import timedelta
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from orders import services
from orders.customers import SESSION_KEY
from orders.models import MenuItem
from tests.pickup_moves import move_pickups_here
item = MenuItem.objects.first().pk
customers = [SessionStore(session_key=key)[SESSION_KEY] for key in {list(session_keys or [])!r}]
placed_at = timezone.now() + timedelta(seconds={PLACED_AHEAD.total_seconds()})
ids = [
    services.place_order(
        customer_id=customers[n % len(customers)] if customers else f"bulk-{{n}}", lines=[(item, 1)], pickup_at=placed_at
    ).pk
    for n in range({count})
]
{move}
print(",".join(map(str, ids)))
"""
    return [int(order_id) for order_id in stack.shell(code, timeout=300).strip().split(",")]


def move_pickup_time(
    stack: Stack, order_ids: list[int], pickup_at: datetime, database: sqlite3.Connection, *, redis_down: bool = False,
    redis: Redis | None = None,
) -> None:
    """Move orders placed ahead (``due_in=None``) to ``pickup_at``: their rows, pickup alerts and kitchen-queue scores.

    The rows change through ``database``, a connection the caller commits,
    so a test holding SQLite's write lock (``crashes.holding_writes``) can
    make orders due in Redis while the database still waits for its commit.
    The kitchen queue's scores change at once; with ``redis_down`` only the
    rows move, and run_queue's rebuild takes the new times from them when Redis is back.
    ``redis`` is the server holding the kitchen queue when that is not the stack's own
    (the primary Sentinel names).
    """
    client = redis or stack.redis.client()
    try:
        queue = None if redis_down else kitchen_queue_in(client, stack.env["REDIS_KEY_PREFIX"])
        move_pickups(database, order_ids, pickup_at, kitchen_queue=queue)
    finally:
        if redis is None:
            client.close()


def fall_due(
    stack: Stack, order_ids: list[int], *, first_in: float, step: float = 0.0, redis_down: bool = False,
    redis: Redis | None = None,
) -> None:
    """Bring orders placed well ahead to ``first_in`` seconds from now, ``step`` seconds apart.

    For tests that must do something first (close a tab, kill a server):
    they place ahead and let the orders fall due once that is done, instead
    of hoping it is done in time. ``redis_down`` and ``redis``: see ``move_pickup_time``.
    """
    now = datetime.now(timezone.utc)
    with contextlib.closing(sqlite3.connect(stack.db_path, timeout=20)) as database, database:
        if not step:
            move_pickup_time(
                stack, order_ids, now + timedelta(seconds=first_in), database, redis_down=redis_down, redis=redis
            )
        for n, order_id in enumerate(order_ids if step else []):
            move_pickup_time(
                stack, [order_id], now + timedelta(seconds=first_in + n * step), database, redis_down=redis_down,
                redis=redis,
            )


def after_the_next_timer_refill() -> float:
    """Seconds ahead that an alert moved now is sure to be armed by a running web server.

    Web servers re-read pending alerts every quarter of their horizon and arm
    (or move) a timer for each; an alert moved in the database gets its timer
    at the next of these refills, at most that long from now.
    """
    from django.conf import settings

    return settings.PICKUP_TIMER_HORIZON_SECONDS / 4 + 5
