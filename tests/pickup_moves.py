"""Moving orders placed well ahead to the pickup time a test wants, so they fall due when it is ready.

An order placed a few hundred milliseconds ahead is refused as past if
placing stalls that long (pickup_time_past), and one placed a few seconds
ahead may fall due before the test has done what it must do first; placed
well ahead and moved once placed, the time placing took never counts.

One implementation for every database a test moves orders in: its own
(Django's connection), a process stack's SQLite file and a cluster's
PostgreSQL. It writes the tables directly rather than through the ORM:
the stack and the cluster belong to other processes whose settings this
one does not have, and a test holding a stack's write lock
(``crashes.holding_writes``) must move through the connection holding it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import redis
from django.db import connection

from notifications.web_pushes import WAIT_FOR_PAGE
from orders.kitchen_queue import add_many as add_to_kitchen_queue
from orders.kitchen_queue import score_of

if TYPE_CHECKING:
    import psycopg

KitchenQueue = Callable[[list[tuple[int, datetime]]], None]

# The one expression the two databases write differently: preparation moves
# by as much as the pickup time (``?`` is the new pickup time; SET reads the old row).
_MOVED_PREPARATION = {
    "sqlite": "strftime('%Y-%m-%d %H:%M:%f', julianday(preparation_at) + julianday(?) - julianday(pickup_at))",
    "postgresql": "preparation_at + (?::timestamptz - pickup_at)",
}


def move_pickups(
    database: sqlite3.Connection | psycopg.Connection, order_ids: list[int], pickup_at: datetime, *,
    kitchen_queue: KitchenQueue | None,
) -> None:
    """Move orders to ``pickup_at``: their rows, pickup alerts (and those alerts' Web Pushes) and kitchen-queue scores.

    ``database`` is a DB-API connection (``sqlite3`` or ``psycopg``) whose
    transaction the caller ends. ``kitchen_queue`` re-scores the orders in
    the installation's Redis (``kitchen_queue.add_many`` for this process's
    own, ``kitchen_queue_in`` for another's); with ``None`` only the rows move,
    and run_queue's rebuild takes the new times from them when Redis is back.
    Every order, and a pickup alert for each, must be found.
    """
    dialect = "sqlite" if isinstance(database, sqlite3.Connection) else "postgresql"

    def execute(sql: str, *params) -> int:
        return database.execute(sql if dialect == "sqlite" else sql.replace("?", "%s"), [*params, *order_ids]).rowcount

    moment = _stored(pickup_at, dialect)
    marks = ",".join("?" * len(order_ids))
    pickup_alerts = f"kind = 'pickup' AND order_id IN ({marks})"
    moved = {
        "orders": execute(
            f"UPDATE orders_order SET preparation_at = {_MOVED_PREPARATION[dialect]}, pickup_at = ? "
            f"WHERE id IN ({marks})",
            moment, moment,
        ),
        "pickup alerts": execute(f"UPDATE notifications_alert SET due_at = ? WHERE {pickup_alerts}", moment),
    }
    assert moved == dict.fromkeys(moved, len(set(order_ids))), moved
    execute(
        "UPDATE notifications_webpush SET send_after = ? "
        f"WHERE alert_id IN (SELECT id FROM notifications_alert WHERE {pickup_alerts})",
        _stored(pickup_at + WAIT_FOR_PAGE, dialect),
    )
    if kitchen_queue is not None:
        kitchen_queue([(order_id, pickup_at) for order_id in order_ids])


def move_pickups_here(order_ids: list[int], pickup_at: datetime) -> None:
    """``move_pickups`` in this process's own database and Redis, as its Django settings name them
    (the test process's, or a stack's inside its ``manage.py shell``)."""
    connection.ensure_connection()
    move_pickups(connection.connection, order_ids, pickup_at, kitchen_queue=add_to_kitchen_queue)


def kitchen_queue_in(client: redis.Redis, key_prefix: str) -> KitchenQueue:
    """Another installation's kitchen queue, in the Redis of ``client`` under ``key_prefix``:
    ``kitchen_queue.add_many`` without this process's settings. The caller closes ``client``."""

    def add_many(entries: list[tuple[int, datetime]]) -> None:
        client.zadd(key_prefix + "kitchen_queue", {str(order_id): score_of(when) for order_id, when in entries})

    return add_many


def _stored(moment: datetime, dialect: str) -> datetime | str:
    """A datetime as Django stores it: as is in PostgreSQL, UTC text without offset in SQLite."""
    if dialect == "postgresql":
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
