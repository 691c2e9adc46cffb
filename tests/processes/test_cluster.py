"""The promises on the production topology (pickup/cluster.py, what `make run-cluster` starts):
nginx in front, two daphne, two run_queue, PostgreSQL, Redis with a replica and three sentinels.

Customers reach the web servers only through nginx, as browsers do. What is
asserted is what customers received, the database's record and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import websockets

from pickup.cluster import ROOT, Cluster
from pickup.testing import TEST_METRICS_TOKEN, TEST_SECRET_KEY, metric_samples, postgres_database
from tests.pickup_moves import kitchen_queue_in, move_pickups
from tests.processes.clients import Customer, menu_item_id, pickup_at, session_cookie, wait_until
from tests.processes.orders_in_bulk import REFILL_EVERY_SECOND
from tests.processes.records import all_acknowledged, all_sent, order_states, pickup_alerts

pytestmark = [pytest.mark.processes, pytest.mark.postgres]

CUSTOMERS = 8


class Database:
    """The cluster's PostgreSQL database, read as tests/processes/records.py reads a stack's (``?`` marks)."""

    def __init__(self, url: str):
        self.url = url

    def query(self, sql: str, params: tuple | list = (), *, timeout: float = 20) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=timeout) as database:
            return database.execute(sql.replace("?", "%s"), tuple(params)).fetchall()


def cluster_settings(timings: dict[str, object]) -> dict[str, str]:
    """What every process of the cluster under test reads: tests/settings.py with ``timings``, no limits
    (every customer comes from 127.0.0.1 through nginx)."""
    return {
        "DJANGO_SETTINGS_MODULE": "tests.settings", "PICKUP_TEST_OVERRIDES": json.dumps(timings),
        "DEBUG": "true", "SECRET_KEY": TEST_SECRET_KEY, "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "METRICS_TOKEN": TEST_METRICS_TOKEN, "REDIS_KEY_PREFIX": "pickup-cluster:", "LOG_LEVEL": "INFO",
        "PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER": "0", "PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS": "0",
        "PICKUP_OPEN_ORDERS_PER_CUSTOMER": "0", "PICKUP_SOCKETS_PER_ADDRESS": "0", "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def timings():
    return {}


@pytest.fixture
def cluster(tmp_path, timings):
    server = os.environ.get("PICKUP_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    with postgres_database(server) as url:
        with Cluster(web=2, workers=2, database_url=url, settings=cluster_settings(timings), log_dir=tmp_path) as running:
            running.manage("setup_demo", "--no-staff")
            running.manage(
                "shell", "-c",
                "from orders.models import Restaurant; Restaurant.objects.filter(pk=Restaurant.current().pk)"
                ".update(min_notice_minutes=0, slot_capacity=32_767)",
            )
            running.database = Database(url)
            yield running


def metrics(cluster: Cluster) -> dict:
    """/metrics through nginx: every process's figures added up."""
    request = urllib.request.Request(cluster.base_url + "/metrics", headers={"Authorization": f"Bearer {TEST_METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return metric_samples(response.read().decode())


def first_pushes(cluster: Cluster) -> float:
    return sum(value for (name, _), value in metrics(cluster).items() if name == "pickup_alert_first_pushes_total")


async def customers_through_nginx(cluster: Cluster) -> list[Customer]:
    """``CUSTOMERS`` tabs, connected one after the other: nginx hands them to the web servers in turn."""
    cookies = [session_cookie(cluster.base_url) for _ in range(CUSTOMERS)]
    customers = [Customer(cluster.base_url, cookie) for cookie in cookies]
    for customer in customers:
        await customer.connect()
    return customers


async def answering(customer: Customer, timeout: float = 30) -> None:
    """Until the tab answers a ping, on the socket it has or on the one it reconnects with."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            reply = await customer.request({"type": "ping", "request_id": f"ping-{time.monotonic_ns()}"}, timeout=5)
            assert reply["type"] == "pong", reply
            return
        except (websockets.ConnectionClosed, TimeoutError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def place(customer: Customer, item: int, dues: list[datetime]) -> list[int]:
    """Orders due at ``dues``, placed over the customer's socket; their ids."""
    replies = await asyncio.gather(*(
        customer.request({
            "type": "order.place", "request_id": f"rush-{n}", "items": [{"menu_item": item, "quantity": 1}],
            "pickup_at": due.isoformat(),
        }, timeout=60)
        for n, due in enumerate(dues)
    ))
    assert all(reply["type"] == "order.accepted" for reply in replies), replies
    return [reply["order"]["id"] for reply in replies]


def fall_due(cluster: Cluster, order_ids: list[int], seconds: float) -> None:
    """Bring orders placed well ahead to ``seconds`` from now, once they are all placed (a time a few seconds
    ahead could pass while they are placed through nginx): rows, pickup alerts and the kitchen queue on the
    Redis primary. The web servers' timers hear of it at their next refill (every second here), run_queue
    at its next pass."""
    with (
        contextlib.closing(cluster.redis.client()) as primary,
        psycopg.connect(cluster.database.url, connect_timeout=20) as database,  # committed on leaving
    ):
        queue = kitchen_queue_in(primary, cluster.settings["REDIS_KEY_PREFIX"])
        move_pickups(database, order_ids, datetime.now(UTC) + timedelta(seconds=seconds), kitchen_queue=queue)


@pytest.mark.parametrize("timings", [REFILL_EVERY_SECOND])
async def test_customers_spread_over_both_web_servers_through_nginx_get_every_alert_once(cluster):
    customers = await customers_through_nginx(cluster)
    item = await asyncio.to_thread(menu_item_id, cluster.base_url)
    ahead = pickup_at(3600)
    orders = {customer: [o["id"] for o in await customer.place_orders(item, 3, at=ahead)] for customer in customers}
    everyone = [order_id for ids in orders.values() for order_id in ids]
    await asyncio.to_thread(fall_due, cluster, everyone, 3.0)
    for customer in customers:
        await customer.wait_until_shown(3, timeout=60)
    await wait_until(lambda: all_acknowledged(cluster.database, everyone), 30, "every acknowledgement recorded")

    for customer, ids in orders.items():
        assert sorted(customer.shown) == sorted(pickup_alerts(cluster.database, ids))
    # Each alert pushed first once, by one of the four senders.
    assert await asyncio.to_thread(first_pushes, cluster) == len(everyone)

    # The customers were spread: stopping one web server moves some of them (close 1012,
    # "service restart") and not the others, and nginx takes the moved ones to the other server.
    [stopped, _] = cluster.web
    await asyncio.to_thread(cluster.stop_web, stopped, signal.SIGTERM)
    for customer in customers:
        await answering(customer)  # so every tab has read its close, if it had one
    moved = [customer for customer in customers if 1012 in customer.close_codes]
    assert 0 < len(moved) < CUSTOMERS
    assert all(customer.reconnects for customer in moved)
    more = {customer: [o["id"] for o in await customer.place_orders(item, 1, at=ahead, prefix="after")] for customer in customers}
    await asyncio.to_thread(fall_due, cluster, [order_id for ids in more.values() for order_id in ids], 3.0)
    for customer in customers:
        await customer.wait_until_shown(4, timeout=60)
        assert sorted(customer.shown) == sorted(pickup_alerts(cluster.database, orders[customer] + more[customer]))
    for customer in customers:
        await customer.disconnect()


@dataclass
class Rush:
    """The orders of ``CUSTOMERS`` tabs through nginx, falling due one after the other."""

    cluster: Cluster
    orders: dict[Customer, list[int]]

    @property
    def everyone(self) -> list[int]:
        return [order_id for ids in self.orders.values() for order_id in ids]

    def pushed(self) -> int:
        return sum(alert.sent for alert in pickup_alerts(self.cluster.database, self.everyone).values())


async def place_rush(cluster: Cluster, *, per_customer: int, starts_in: float, lasting: float) -> Rush:
    """``per_customer`` orders for each tab, due one after the other over ``lasting`` seconds from
    ``starts_in`` seconds from now, dealt round the tabs; all placed before the first falls due."""
    customers = await customers_through_nginx(cluster)
    item = await asyncio.to_thread(menu_item_id, cluster.base_url)
    start = datetime.now(UTC) + timedelta(seconds=starts_in)
    count = CUSTOMERS * per_customer
    dues = [start + timedelta(seconds=lasting * n / count) for n in range(count)]
    placed = await asyncio.gather(*(place(customer, item, dues[n::CUSTOMERS]) for n, customer in enumerate(customers)))
    assert datetime.now(UTC) < start, "placing the orders took longer than the margin before the rush"
    return Rush(cluster, dict(zip(customers, placed)))


async def every_alert_shown_once(rush: Rush, per_customer: int) -> None:
    """Each tab shows its own alerts, acknowledged; every order is made ready; no alert is pushed first twice.

    A timer's push during a failover reached its own server's tabs but counts
    as refused (the other servers could not be asked); one acknowledged before
    its retry was never recorded as pushed (send_count 0), and the others once.
    """
    database, everyone = rush.cluster.database, rush.everyone
    for customer in rush.orders:
        await customer.wait_until_shown(per_customer, timeout=90)
    await wait_until(lambda: all_acknowledged(database, everyone), 30, "every acknowledgement recorded")
    await wait_until(lambda: order_states(database, everyone) == {"ready": len(everyone)}, 60, "every order ready")
    for customer, ids in rush.orders.items():
        assert sorted(customer.shown) == sorted(pickup_alerts(database, ids))
    pushes = Counter(alert.send_count for alert in pickup_alerts(database, everyone).values())
    assert set(pushes) <= {0, 1}, pushes
    assert await asyncio.to_thread(first_pushes, rush.cluster) == pushes[1]


@pytest.mark.parametrize("timings", [{"PICKUP_ALERT_RESEND_SECONDS": 600}])
async def test_the_redis_primary_killed_mid_rush_loses_nothing_and_shows_nothing_twice(cluster):
    """Sentinel promotes the replica; every client finds it (docs/delivery.md, "Redis primary lost").

    The resend of unacknowledged alerts comes only after ten minutes here, so
    every alert must arrive by the ways the failover row names: a web
    server's timer handing it to its own sockets, or a push refused during
    the failover sent again by run_queue once Redis answers.
    """
    per_customer = 20
    rush = await place_rush(cluster, per_customer=per_customer, starts_in=20, lasting=8)
    assert not all_sent(cluster.database, rush.everyone)

    await wait_until(lambda: rush.pushed() >= len(rush.everyone) // 5, 60, "the rush to be under way")
    cluster.redis.kill_primary()
    assert rush.pushed() < len(rush.everyone), "the rush was over before the primary was killed"
    await asyncio.to_thread(cluster.redis.wait_for_failover)

    await every_alert_shown_once(rush, per_customer)
    for customer in rush.orders:
        assert customer.close_codes == []  # the pages' sockets stayed open through the failover
    print("lateness through the failover, s: max", max(max(customer.lateness()) for customer in rush.orders))
    assert cluster.redis.primary_port() == cluster.redis.ports["replica"]
    for customer in rush.orders:
        await customer.disconnect()


@pytest.mark.parametrize("timings", [{"PICKUP_ALERT_RESEND_SECONDS": 600}])
async def test_a_rolling_restart_behind_nginx_during_a_rush_loses_nothing_and_shows_nothing_twice(cluster):
    """Each daphne, then each run_queue, stopped by SIGTERM and started again on its own port while
    alerts fall due: nginx takes the pages to the other web server (docs/delivery.md, "Graceful stop")."""
    per_customer = 10
    rush = await place_rush(cluster, per_customer=per_customer, starts_in=15, lasting=20)

    await wait_until(lambda: rush.pushed() > 0, 60, "the rush to begin")
    for n, port in enumerate(list(cluster.web)):
        assert await asyncio.to_thread(cluster.stop_web, port) == 0
        if n == 0:
            assert rush.pushed() < len(rush.everyone), "the rush was over before the first web server stopped"
        await asyncio.to_thread(cluster.start_web, port)
    for index in range(len(cluster.workers)):
        assert await asyncio.to_thread(cluster.restart_run_queue, index) == 0

    await every_alert_shown_once(rush, per_customer)
    for customer in rush.orders:
        assert set(customer.close_codes) == {1012}  # moved by each restart of its server, and only then
        await customer.disconnect()


def namespace_owner(cluster: Cluster, database_url: str | None = None) -> str:
    """The installation id a database has, or (without ``database_url``) the one marked on the cluster's Redis."""
    code = (
        "from orders.kitchen_queue import OWNER, _key, _redis; print(_redis().get(_key(OWNER)).decode())"
        if database_url is None else
        "from orders.models import Restaurant; print(Restaurant.objects.get_or_create(pk=1)[0].installation)"
    )
    return run_manage(cluster, database_url, "shell", "-c", code).stdout.strip()


def run_manage(cluster: Cluster, database_url: str | None, *args: str) -> subprocess.CompletedProcess:
    env = {**cluster.env, "PROMETHEUS_MULTIPROC_DIR": ""}
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


async def test_a_second_installation_on_the_clusters_redis_is_refused_and_the_cluster_goes_on(cluster):
    """Another database pointed at the same sentinels and key prefix (issue 15's two installations)."""
    server = os.environ.get("PICKUP_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    ours = namespace_owner(cluster, cluster.settings["DATABASE_URL"])
    assert namespace_owner(cluster) == ours
    with postgres_database(server) as other_url:
        assert run_manage(cluster, other_url, "migrate", "--no-input").returncode == 0
        theirs = namespace_owner(cluster, other_url)
        assert theirs != ours

        refused = await asyncio.to_thread(run_manage, cluster, other_url, "run_queue", "--once")

    assert refused.returncode != 0
    assert namespace_owner(cluster) == ours
    assert cluster.exited() == []
    customer = (await customers_through_nginx(cluster))[0]
    item = await asyncio.to_thread(menu_item_id, cluster.base_url)
    [order_id] = await place(customer, item, [datetime.now(UTC) + timedelta(hours=1)])
    # Due a second ago once accepted: a run_queue pushes it at its next pass.
    await asyncio.to_thread(fall_due, cluster, [order_id], -1.0)
    await customer.wait_until_shown(1, timeout=60)
    assert list(customer.shown) == list(pickup_alerts(cluster.database, [order_id]))
    await customer.disconnect()
