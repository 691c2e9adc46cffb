"""Shared fixtures: a clean private Redis, the demo menu, customers with sessions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from io import StringIO
from datetime import datetime, time, timedelta

import pytest
import redis
import time_machine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.utils import timezone

from notifications.memberships import memberships
from notifications.models import Alert
from notifications.timers import alert_timers
from orders.customers import SESSION_KEY
from orders.models import MenuItem, Restaurant
from tests.environment import private_redis
from tests.pickup_moves import move_pickups_here


@contextlib.contextmanager
def redis_out_of_reach(settings):
    """Every Redis client of the process (kitchen queue, limits, cache, channel layer) pointed
    at a port nobody listens on, as through an outage or a failover's seconds; back on leaving.

    ``settings`` is pytest-django's fixture: each change resets Django's caches and Channels' layers.
    """
    from pickup.redis_clients import RedisPlace
    from pickup.redis_server import free_port

    reachable = settings.CACHES, settings.CHANNEL_LAYERS
    nobody_listens = RedisPlace.from_settings(f"redis://127.0.0.1:{free_port()}/0", [], "")
    settings.CACHES = {"default": nobody_listens.cache(key_prefix="unreachable", socket_timeout=1, connect_timeout=1)}
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": reachable[1]["default"]["BACKEND"],
        "CONFIG": {"hosts": [nobody_listens.channel_layer_host(socket_connect_timeout=1)]},
    }}
    try:
        yield
    finally:
        settings.CACHES, settings.CHANNEL_LAYERS = reachable


class _CountedConnection(redis.Connection):
    """A real Redis connection that notes each attempt to connect and whether it timed out."""

    attempts: list[str] = []  # replaced per black hole

    def connect(self):
        try:
            super().connect()
        except redis.TimeoutError:
            self.attempts.append("timeout")
            raise
        except redis.ConnectionError:
            self.attempts.append("refused")
            raise
        self.attempts.append("connected")


@contextlib.contextmanager
def redis_black_hole(settings):
    """The kitchen queue, the limits and the cache pointed at an address that never answers, as when
    a failover's primary machine is gone: each connection waits out its connect timeout (1 s here).
    Yields the list of their attempts to connect ("timeout" each); the channel layer, which never
    holds up a request (notifications/sender.py), is refused at once as in ``redis_out_of_reach``.

    The black hole is a loopback socket that listens but never accepts, its one-place backlog
    filled first: Linux then drops every further SYN (``tcp_abort_on_overflow`` is 0 by default),
    so a client's ``connect`` hangs until its timeout, as towards a machine that is gone. No root,
    no firewall rule, nothing outside this process.
    """
    from pickup.redis_clients import RedisPlace
    from pickup.redis_server import free_port

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    queued = []
    for _ in range(2):  # the first fills the accept queue, the second is left half-open
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        queued.append(filler)
    attempts: list[str] = []
    counted = type("CountedConnection", (_CountedConnection,), {"attempts": attempts})
    gone = RedisPlace.from_settings(f"redis://127.0.0.1:{address[1]}/0", [], "")
    refusing = RedisPlace.from_settings(f"redis://127.0.0.1:{free_port()}/0", [], "")
    reachable = settings.CACHES, settings.CHANNEL_LAYERS
    cache = gone.cache(key_prefix="unreachable", socket_timeout=1, connect_timeout=1)
    cache["OPTIONS"]["CONNECTION_POOL_KWARGS"] = {"connection_class": counted}
    settings.CACHES = {"default": cache}
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": reachable[1]["default"]["BACKEND"],
        "CONFIG": {"hosts": [refusing.channel_layer_host(socket_connect_timeout=1)]},
    }}
    try:
        yield attempts
    finally:
        settings.CACHES, settings.CHANNEL_LAYERS = reachable
        for held in [*queued, listener]:
            held.close()


@pytest.fixture(autouse=True)
def clean_redis():
    """Every test starts with an empty private Redis (never the machine's shared one)."""
    client = redis.Redis.from_url(private_redis().url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(autouse=True, scope="session")
def close_connections_of_async_tests(django_db_setup):
    """Async tests reach the database from asgiref's worker thread; close its
    connection at the end so the test database can be dropped (PostgreSQL)."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    asyncio.run(sync_to_async(connections.close_all)())


@pytest.fixture(autouse=True, scope="session")
def restaurant_clock():
    """``PICKUP_TEST_CLOCK=23:58:30`` runs the tests as if the restaurant's clock said so today,
    ticking on: scripts/test.sh's pass across midnight, where dates and "today" go wrong.

    Only this process's clock moves (processes a test starts, Redis and the
    browser keep the real one): that pass leaves out the process and browser tests.
    """
    at = os.environ.get("PICKUP_TEST_CLOCK")
    if not at:
        yield
        return
    moment = timezone.make_aware(datetime.combine(timezone.localdate(), time.fromisoformat(at)))
    with time_machine.travel(moment, tick=True):
        yield


@pytest.fixture(scope="session")
def prepared_database(tmp_path_factory):
    """Where the first process stack leaves its migrated database for the others to copy."""
    return tmp_path_factory.mktemp("stack-template") / "db.sqlite3"


@pytest.fixture(autouse=True)
def forget_cached_restaurant():
    """Each test's database starts empty; so does the process's copy of the rules."""
    Restaurant.forget_current()


@pytest.fixture(autouse=True)
def stop_alert_timers():
    yield
    alert_timers.stop()
    memberships.stop()


@pytest.fixture
def restaurant(db) -> Restaurant:
    """The demo restaurant (open all day), taking orders a moment ahead, with room to spare;
    the kitchen starts an order at its pickup time, so customers may change it until then."""
    call_command("setup_demo", "--no-staff", stdout=StringIO())
    restaurant = Restaurant.current()
    restaurant.min_notice_minutes = 0
    restaurant.preparation_minutes = 0
    restaurant.slot_capacity = 1000
    restaurant.save()
    return restaurant


@pytest.fixture
def breakfast_time():
    """The clock at 8 a.m. tomorrow in the restaurant, ticking on: a whole day of pickup times
    ahead whatever the hour the suite runs (late in the evening today has only a few left)."""
    tomorrow = timezone.localdate() + timedelta(days=1)
    with time_machine.travel(timezone.make_aware(datetime.combine(tomorrow, time(8))), tick=True):
        yield


@pytest.fixture
def menu(restaurant) -> dict[str, MenuItem]:
    items = list(MenuItem.objects.all())
    return {"set": items[0], "congee": items[1], "hash_brown": items[2]}


def new_customer_session() -> tuple[str, str]:
    """A session as the ordering page would create it: (session key, customer id)."""
    customer_id = f"test{timezone.now().timestamp():.6f}".replace(".", "")
    session = SessionStore()
    session[SESSION_KEY] = customer_id
    session.create()
    return session.session_key, customer_id


async def customer_session() -> tuple[str, str]:
    return await database_sync_to_async(new_customer_session)()


def ws_headers(session_key: str | None, origin: str = "http://localhost") -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"localhost"), (b"origin", origin.encode())]
    if session_key:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}".encode()))
    return headers


def customer_communicator(session_key: str | None, origin: str = "http://localhost") -> WebsocketCommunicator:
    from pickup.asgi import application

    return WebsocketCommunicator(application, "/ws/customer/", headers=ws_headers(session_key, origin))


@contextlib.asynccontextmanager
async def connected(session_key: str):
    """A connected customer socket, past its session.ready greeting; always disconnected."""
    communicator = customer_communicator(session_key)
    connected_ok, _ = await communicator.connect()
    assert connected_ok
    try:
        ready = await communicator.receive_json_from(timeout=5)
        assert ready["type"] == "session.ready"
        yield communicator
    finally:
        await communicator.disconnect()


def pickup_in(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def move_pickup(order_id: int, pickup_at: datetime) -> Alert:
    """Bring an order placed well ahead to ``pickup_at`` (a moment ago, or a moment ahead); its pickup alert.

    Its row, its pickup alert and its kitchen-queue entry move together
    (tests/pickup_moves.py says why tests place ahead and move), and its web
    timer is armed again, as a reschedule does after commit.
    """
    move_pickups_here([order_id], pickup_at)
    alert = Alert.objects.get(order_id=order_id, kind=Alert.Kind.PICKUP)
    alert_timers.arm(alert.pk, alert.due_at, alert.customer_id)
    return alert


def order_message(menu, *, pickup_at: datetime | str, quantity: int = 1, request_id: str = "r1") -> dict:
    return {
        "type": "order.place",
        "request_id": request_id,
        "items": [{"menu_item": menu["set"].pk, "quantity": quantity}],
        "pickup_at": pickup_at if isinstance(pickup_at, str) else pickup_at.isoformat(),
    }


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` run in the PostgreSQL pass (PICKUP_TEST_DATABASE_URL) and
    are left out of the SQLite one rather than skipped."""
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return
    kept = [item for item in items if item.get_closest_marker("postgres") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
