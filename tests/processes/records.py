"""What the stack's database, Redis and logs say happened, read from the test process.

The database is read directly (``Stack.query``), so tests can poll it while
the processes run. The logs are read only for what nothing else records: how
many times a worker made an order ready or pushed an alert first (the
compare-and-set lets the database hold one outcome, so a second attempt
that wrongly went through would leave no other trace), which sender pushed
first, and how many orders a rebuild restored.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from orders import kitchen_queue
from pickup.testing import Stack
from tests.processes.clients import wait_until

_READY_LINE = re.compile(r"\(id (\d+)\): ready,")
_FIRST_PUSH_LINE = re.compile(r"alert (\d+) \([a-z_]+, order \w+, push 1\) pushed via (\w+)")
_RESTORED_LINE = re.compile(r"kitchen queue rebuilt from the database: (\d+) order\(s\) restored")


def _marks(ids: list[int]) -> str:
    return ",".join("?" * len(ids))


# ------------------------------------------------------------------ database

def order_states(stack: Stack, order_ids: list[int]) -> Counter:
    """How many of these orders are in each status."""
    rows = stack.query(f"SELECT status FROM orders_order WHERE id IN ({_marks(order_ids)})", order_ids)
    return Counter(status for (status,) in rows)


def processed_count(stack: Stack, order_ids: list[int], *, timeout: float = 20) -> int:
    """How many of these orders run_queue has processed (``processed_at`` set)."""
    sql = f"SELECT COUNT(*) FROM orders_order WHERE processed_at IS NOT NULL AND id IN ({_marks(order_ids)})"
    return stack.query(sql, order_ids, timeout=timeout)[0][0]


@dataclass(frozen=True)
class AlertRecord:
    id: int
    order_id: int
    sent: bool
    send_count: int
    acknowledged: bool
    claimed: bool  # a sender holds it and has not recorded a push


def pickup_alerts(stack: Stack, order_ids: list[int]) -> dict[int, AlertRecord]:
    """The pickup alerts owed for these orders, by alert id."""
    rows = stack.query(
        "SELECT id, order_id, sent_at IS NOT NULL, send_count, acknowledged_at IS NOT NULL, claim_token != '' "
        f"FROM notifications_alert WHERE kind = 'pickup' AND order_id IN ({_marks(order_ids)})",
        order_ids,
    )
    return {row[0]: AlertRecord(row[0], row[1], bool(row[2]), row[3], bool(row[4]), bool(row[5])) for row in rows}


def all_sent(stack: Stack, order_ids: list[int]) -> bool:
    return all(alert.sent for alert in pickup_alerts(stack, order_ids).values())


def all_acknowledged(stack: Stack, order_ids: list[int]) -> bool:
    return all(alert.acknowledged for alert in pickup_alerts(stack, order_ids).values())


def alerts_held_by_a_sender(stack: Stack) -> set[int]:
    """Alerts a sender has claimed and not yet recorded as pushed.

    Meant for a frozen sender (crashes.kill_between_writes): it gives up quickly.
    """
    rows = stack.query("SELECT id FROM notifications_alert WHERE claim_token != ''", timeout=0.01)
    return {alert_id for (alert_id,) in rows}


def alert_claims(stack: Stack, *, due_after: datetime | None = None) -> dict[int, str]:
    """Alerts a sender holds (of those due after ``due_after``), each with its claim's token.

    A claim that outlives its sender keeps its token; one taken again gets a new one.
    """
    rows = stack.query("SELECT id, claim_token, due_at FROM notifications_alert WHERE claim_token != ''")
    return {
        alert_id: token
        for alert_id, token, due_at in rows
        if due_after is None or datetime.fromisoformat(due_at).replace(tzinfo=UTC) > due_after
    }


# ------------------------------------------------------------------ Redis

@contextmanager
def _kitchen_queue(stack: Stack):
    """A client of the stack's Redis, and the full names of the kitchen queue and its claims set."""
    client = stack.redis.client()
    prefix = stack.env["REDIS_KEY_PREFIX"]
    try:
        yield client, prefix + kitchen_queue.QUEUE, prefix + kitchen_queue.CLAIMS
    finally:
        client.close()


def kitchen_queue_keys(stack: Stack) -> dict[str, int]:
    """How many members the kitchen queue and its claims set hold."""
    with _kitchen_queue(stack) as (client, queue, claims):
        return {"queued": client.zcard(queue), "claimed": client.zcard(claims)}


def kitchen_queue_built(stack: Stack) -> bool:
    """Whether a run_queue has built the kitchen queue (its first pass does)."""
    with _kitchen_queue(stack) as (client, _queue, _claims):
        return bool(client.exists(stack.env["REDIS_KEY_PREFIX"] + kitchen_queue.BUILT))


def kitchen_queue_entries(stack: Stack) -> dict[int, int]:
    """The queued orders (not the claimed ones): order id -> score (pickup time, epoch ms)."""
    with _kitchen_queue(stack) as (client, queue, _claims):
        return {int(member): int(score) for member, score in client.zrange(queue, 0, -1, withscores=True)}


def kitchen_queue_claims(stack: Stack) -> set[int]:
    """The order ids run_queue workers hold claimed and have not finished."""
    with _kitchen_queue(stack) as (client, _queue, claims):
        return {int(member) for member in client.zrange(claims, 0, -1)}


def kitchen_queue_leases(stack: Stack) -> set[tuple[int, int]]:
    """The claimed orders with the end of their lease: a claim that outlives its worker keeps both."""
    with _kitchen_queue(stack) as (client, _queue, claims):
        return {(int(member), int(score)) for member, score in client.zrange(claims, 0, -1, withscores=True)}


# ------------------------------------------------------------------ logs

def _log_text(stack: Stack, name: str | None) -> str:
    if name is None:
        return stack.logs(full=True)
    return (stack.log_dir / f"{name}.log").read_text(errors="replace")


def ready_counts(stack: Stack, log: str | None = None) -> Counter:
    """How many times the logs (all, or the one named like ``run_queue-0``) say each order id was made ready."""
    return Counter(int(order_id) for order_id in _READY_LINE.findall(_log_text(stack, log)))


async def logged_ready_counts(stack: Stack, order_ids, timeout: float = 10) -> Counter:
    """ready_counts, once each of ``order_ids`` has its line. run_queue logs
    after its commit and after the customers' updates are handed on, so the
    database says "ready" a moment before the log does."""
    wanted = set(order_ids)
    await wait_until(lambda: wanted <= set(ready_counts(stack)), timeout, "every order made ready to be logged")
    return ready_counts(stack)


def first_pushes(stack: Stack, log: str | None = None) -> Counter:
    """How many times the logs (all, or the one named) say each alert id was pushed as its first push (``push 1 … pushed``)."""
    return Counter(int(alert_id) for alert_id, _via in _FIRST_PUSH_LINE.findall(_log_text(stack, log)))


async def logged_first_pushes(stack: Stack, alert_ids, log: str | None = None, timeout: float = 10) -> Counter:
    """first_pushes, once each of ``alert_ids`` has its line. A sender logs a
    push after recording it, so the database may say "sent" or "acknowledged"
    a moment before the log does."""
    wanted = set(alert_ids)
    await wait_until(lambda: wanted <= set(first_pushes(stack, log)), timeout, "every first push to be logged")
    return first_pushes(stack, log)


def first_push_senders(stack: Stack) -> Counter:
    """Who pushed alerts first: ``timer`` (a web process) or ``run_queue``."""
    return Counter(via for _alert_id, via in _FIRST_PUSH_LINE.findall(stack.logs(full=True)))


def orders_restored(stack: Stack) -> list[int]:
    """The counts of every 'kitchen queue rebuilt' line: orders Redis had lost."""
    return [int(count) for count in _RESTORED_LINE.findall(stack.logs(full=True))]
