"""Is this web process ready for customers? The checks behind /readyz.

Liveness (/healthz) only says the process answers; readiness also asks the
database and Redis, each within ``TIMEOUT``, and says no while the process
is stopping, so a load balancer sends new customers elsewhere first.
"""

from __future__ import annotations

import asyncio
import threading

from django.db import connection
from django_redis import get_redis_connection

# Seconds each dependency has to answer: a probe that hangs tells a load
# balancer nothing (Kubernetes gives up after its own timeoutSeconds, 1 by default).
TIMEOUT = 1.0

_stopping = threading.Event()


def mark_stopping() -> None:
    """From now on this process is not ready: it is going away (SIGTERM)."""
    _stopping.set()


def stopping() -> bool:
    return _stopping.is_set()


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # this worker thread's; returned to the pool if there is one


def _redis() -> None:
    get_redis_connection("default").ping()


CHECKS = {"database": _database, "redis": _redis}


async def _answer(check) -> str:
    try:
        await asyncio.wait_for(asyncio.to_thread(check), TIMEOUT)
    except TimeoutError:
        return f"no answer within {TIMEOUT} s"
    except Exception as error:  # report it, never fail the probe itself
        return f"error: {error.__class__.__name__}"
    return "ok"


async def readiness() -> dict[str, str]:
    """Each check's answer, "ok" or what went wrong; checked together, so at most ``TIMEOUT`` in all."""
    answers = await asyncio.gather(*(_answer(check) for check in CHECKS.values()))
    found = dict(zip(CHECKS, answers, strict=True))
    found["process"] = "stopping" if stopping() else "ok"
    return found
