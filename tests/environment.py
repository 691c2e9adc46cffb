"""Test environment, loaded before Django (``-p tests.environment`` in pytest.ini).

The suite gets its own Redis server on a free port, so it can flush and
restart it freely without touching anybody else's data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile

import pytest

from pickup.redis_server import PrivateRedis

_redis: PrivateRedis | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    global _redis
    _redis = PrivateRedis().start()
    os.environ.update(
        {
            "REDIS_URL": _redis.url,
            "REDIS_KEY_PREFIX": "pickup-test:",
            "DEBUG": "true",
            "SECRET_KEY": "pickup-tests-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
            "STATIC_ROOT": tempfile.mkdtemp(prefix="pickup-static-"),
            "LOG_LEVEL": "WARNING",
            # Tests place many orders per customer; the limits' own tests turn them on.
            "PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER": "0",
            "PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS": "0",
            "PICKUP_OPEN_ORDERS_PER_CUSTOMER": "0",
            "PICKUP_MESSAGES_PER_SECOND_PER_SOCKET": "1000000",
            "PICKUP_SOCKETS_PER_SESSION": "0",
            "PICKUP_SOCKETS_PER_ADDRESS": "0",
            # In-process tests drive run_queue alone: no head start for web
            # timers. Processes a test starts get production's timing instead
            # (pickup.testing.Stack replaces this).
            "PICKUP_TEST_OVERRIDES": json.dumps({"PICKUP_RUN_QUEUE_GRACE_MS": 0, "PICKUP_KITCHEN_DELAY_MS": 0}),
        }
    )
    # SQLite by default; PICKUP_TEST_DATABASE_URL runs the suite on PostgreSQL.
    os.environ["DATABASE_URL"] = os.environ.get("PICKUP_TEST_DATABASE_URL", "sqlite:///" + tempfile.mktemp(suffix=".sqlite3"))
    if os.environ["DATABASE_URL"].startswith("sqlite"):
        # On disk, so that concurrency tests really race (see settings).
        os.environ["PICKUP_TEST_DATABASE_NAME"] = tempfile.mktemp(prefix="pickup-test-", suffix=".sqlite3")
    else:
        # Our own test database on a shared server, never another run's.
        os.environ["PICKUP_TEST_DATABASE_NAME"] = f"test_pickup_{os.getpid()}"


def pytest_unconfigure(config):
    """Leave nothing behind in the temporary folder: the Redis, the static root, the SQLite files."""
    if _redis is not None:
        _redis.shutdown()
    shutil.rmtree(os.environ["STATIC_ROOT"], ignore_errors=True)
    for name in ("DATABASE_URL", "PICKUP_TEST_DATABASE_NAME"):
        path = os.environ.get(name, "").removeprefix("sqlite:///")
        if path.startswith(tempfile.gettempdir()):
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path + suffix)


def private_redis() -> PrivateRedis:
    assert _redis is not None
    return _redis
