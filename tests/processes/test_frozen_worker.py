"""A run_queue worker frozen (SIGSTOP: a long pause, a stopped VM) in the middle of
its database work holds up the other worker only while one statement lasts.

PostgreSQL: the worker's writes are single statements that commit by
themselves on the server, so a freeze between or inside them leaves no
transaction open and no row locked; its few multi-statement transactions are
ended by the server after ``FROZEN_TRANSACTION_LIMIT_MS``. SQLite's lock
belongs to the process itself and cannot be taken from a frozen one
(docs/delivery.md).
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest

from pickup.testing import Stack, postgres_database
from tests.processes.clients import wait_until
from tests.processes.crashes import freeze_when
from tests.processes.orders_in_bulk import place_orders
from tests.processes.records import kitchen_queue_keys, ready_counts

pytestmark = [pytest.mark.processes, pytest.mark.postgres]

ORDERS = 30


@pytest.fixture
def postgres_stack(tmp_path):
    """A stack on a database of its own on the PostgreSQL server of the PostgreSQL test pass."""
    server = os.environ.get("PICKUP_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    timing = {
        "PICKUP_WEB_TIMERS": False,
        # A frozen worker's kitchen-queue claims go to the other one quickly.
        "PICKUP_CLAIM_LEASE_SECONDS": 2,
    }
    with postgres_database(server) as url, Stack(database_url=url, log_dir=str(tmp_path), settings=timing) as stack:
        stack.prepare(slot_capacity=30_000)  # a smallint on PostgreSQL
        yield stack, url


def _rows(url: str, sql: str, params: tuple | list = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as database:
        return database.execute(sql, params).fetchall()


def _waiting_for_a_lock(url: str, table: str = "orders_order") -> bool:
    """Some session of this database waits for a row lock in an UPDATE of ``table``."""
    return bool(
        _rows(
            url,
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND query LIKE %s",
            [f"UPDATE %{table}%"],
        )
    )


def _idle_in_transaction(url: str, process: subprocess.Popen) -> int:
    """The process's own sessions sitting inside a transaction. Only its own: the
    live worker and the web server pass through transactions all the time, and a
    loaded machine can catch one of them between two statements."""
    server_port = urlsplit(url).port or 5432
    ports = [c.laddr.port for c in psutil.Process(process.pid).net_connections("tcp") if c.raddr and c.raddr.port == server_port]
    if not ports:
        return 0
    sql = (
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state LIKE 'idle in transaction%%' AND client_port = ANY(%s)"
    )
    return _rows(url, sql, [ports])[0][0]


async def test_a_worker_frozen_inside_its_write_does_not_hold_up_the_other_worker(postgres_stack):
    stack, url = postgres_stack
    order_ids = place_orders(stack, count=ORDERS, due_in=3.0)
    marked_by_staff = order_ids[0]
    # Staff mark one order ready at the very moment the worker makes the batch
    # ready: the worker's UPDATE waits for staff's row lock, and is frozen there.
    staff = psycopg.connect(url)
    staff.execute(
        "UPDATE orders_order SET status = 'ready', ready_at = now() WHERE id = %s AND status IN ('placed', 'queued', 'preparing')",
        [marked_by_staff],
    )
    frozen = stack.start_run_queue("--interval", "0.3")
    await freeze_when(frozen, lambda: _waiting_for_a_lock(url), timeout=60, what="while it waits inside its write")
    staff.commit()
    staff.close()

    stack.start_run_queue("--interval", "0.3")
    processed = f"SELECT COUNT(*) FROM orders_order WHERE processed_at IS NOT NULL AND id IN ({','.join(['%s'] * ORDERS)})"
    await wait_until(
        lambda: _rows(url, processed, order_ids)[0][0] == ORDERS, 30, "every order processed while one worker is frozen"
    )
    assert frozen.poll() is None  # still frozen: the other worker did it all
    statuses = _rows(url, f"SELECT status, COUNT(*) FROM orders_order WHERE id IN ({','.join(['%s'] * ORDERS)}) GROUP BY status", order_ids)
    assert dict(statuses) == {"ready": ORDERS}
    assert set(ready_counts(stack).values()) <= {1}  # logged by the running worker; none twice
    assert _idle_in_transaction(url, frozen) == 0  # nothing of the frozen worker stays open inside a transaction
    await wait_until(lambda: kitchen_queue_keys(stack) == {"queued": 0, "claimed": 0}, 30, "the frozen worker's claims taken over")


async def test_a_worker_frozen_inside_a_transaction_has_it_ended_by_the_server(postgres_stack):
    """Closing a no-show takes several statements (the order, its alerts): frozen
    between them, the worker's transaction is ended by the server after
    ``FROZEN_TRANSACTION_LIMIT_MS`` and the other worker closes the order."""
    stack, url = postgres_stack
    [no_show] = place_orders(stack, count=1, due_in=600)
    with psycopg.connect(url, autocommit=True) as database:  # made ready a day ago, never collected
        database.execute(
            "UPDATE orders_order SET status = 'ready', ready_at = now(), processed_at = now(), "
            "pickup_at = now() - interval '1 day' WHERE id = %s",
            [no_show],
        )
    # Staff look at the order's alerts at that moment: the worker, having
    # changed the order, waits for them inside its transaction, and is frozen there.
    staff = psycopg.connect(url)
    staff.execute("SELECT id FROM notifications_alert WHERE order_id = %s FOR UPDATE", [no_show])
    frozen = stack.start_run_queue("--interval", "0.3")
    await freeze_when(
        frozen, lambda: _waiting_for_a_lock(url, "notifications_alert"), timeout=60, what="inside its transaction"
    )
    staff.commit()
    staff.close()

    stack.start_run_queue("--interval", "0.3")
    status = "SELECT status FROM orders_order WHERE id = %s"
    await wait_until(
        lambda: _rows(url, status, [no_show]) == [("not_collected",)], 30, "the other worker to close the no-show"
    )
    assert frozen.poll() is None  # still frozen: its transaction was ended for it
    assert _idle_in_transaction(url, frozen) == 0
