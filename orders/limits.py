"""How many orders one customer, or one client address, may place per minute,
and how many customer sessions one address may start.

A new session costs one page load and payment is simulated, so without a
limit one script books every pickup slot of the week in minutes. Counters
live in Redis, shared by every web process: one per customer session and one
per client address, in fixed one-minute windows (``INCR`` and ``EXPIRE`` in
one round trip). Whoever is refused is remembered in a sorted set until the
window ends, so staff can see them in the admin and clear them
(``blocked_now``, ``clear``). Redis out of reach refuses orders as
``server_busy`` and tells staff so, rather than failing their page.

Why not django-ratelimit: its counter keys are hashes, so nobody could list
or clear a blocked customer, and it wants a request object the WebSocket
does not have. The counting itself is two Redis commands.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django_redis import get_redis_connection

from pickup import busy
from pickup.errors import PickupError
from pickup.redis_clients import OUT_OF_REACH

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
CUSTOMER = "customer"
ADDRESS = "address"
SESSION_STARTS = "session-starts"  # counted per address, never listed as a block


@dataclass(frozen=True)
class Block:
    """A customer or address refused for placing too many orders, until ``until`` (epoch seconds)."""

    kind: str
    who: str
    until: float


def clock() -> float:
    """Epoch seconds; the windows are counted on it (tests hold it still)."""
    return time.time()


def _key(name: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}limits:{name}"


@contextmanager
def _counting() -> Iterator[None]:
    """Refuse, for a few seconds, what cannot be counted: Redis out of reach (a failover, an outage).

    The attempt is turned away before anything is written, with ``server_busy``
    and ``retry_after``, so the page can simply try again (docs/protocol.md).
    """
    try:
        yield
    except OUT_OF_REACH as error:
        logger.warning("order and session limits cannot be counted, Redis not reachable (%s); refusing for now", error)
        raise busy.refusal() from error


def count_order_attempts(attempts: list[tuple[str, str]], *, now: float | None = None) -> list[int | None]:
    """Count order attempts, each (customer id, client address); per attempt the
    seconds until it may be tried again when over a limit, else None.

    Every attempt counts, refused ones included: a script sending orders
    that fail must not get a free ride. A limit of 0 switches that count
    off. One pipelined round trip for a whole batch of placements. Redis
    out of reach refuses the whole batch with ``server_busy`` (``_counting``).
    """
    now = clock() if now is None else now
    window = int(now // WINDOW_SECONDS)
    ends_at = (window + 1) * WINDOW_SECONDS
    limits = {CUSTOMER: settings.PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER, ADDRESS: settings.PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS}
    counted = [
        [(kind, who) for kind, who in ((CUSTOMER, customer_id), (ADDRESS, address)) if who and limits[kind] > 0]
        for customer_id, address in attempts
    ]
    if not any(counted):
        return [None] * len(attempts)
    redis = get_redis_connection("default")
    pipeline = redis.pipeline(transaction=False)
    for kind, who in (pair for pairs in counted for pair in pairs):
        key = _key(f"{kind}:{who}:{window}")
        pipeline.incr(key)
        pipeline.expire(key, WINDOW_SECONDS * 2)
    with _counting():
        counts = iter(pipeline.execute()[::2])
    waits: list[int | None] = []
    blocked: dict[str, float] = {}
    for pairs in counted:
        over = [f"{kind}:{who}" for kind, who in pairs if next(counts) > limits[kind]]
        blocked.update(dict.fromkeys(over, ends_at))
        waits.append(max(1, math.ceil(ends_at - now)) if over else None)
    if blocked:
        with _counting():
            redis.zadd(_key("blocked"), blocked)
    return waits


def count_session_start(address: str, *, now: float | None = None) -> int | None:
    """Count a new customer session started from ``address``; the seconds until
    another may be started when over ``PICKUP_SESSIONS_PER_MINUTE_PER_ADDRESS``,
    else None.

    A session costs nothing to ask for, and each is a database row and a
    customer the order limits count afresh. Refused attempts count too.
    Redis out of reach raises ``server_busy`` (``_counting``).
    """
    limit = settings.PICKUP_SESSIONS_PER_MINUTE_PER_ADDRESS
    if not limit or not address:
        return None
    now = clock() if now is None else now
    window = int(now // WINDOW_SECONDS)
    key = _key(f"{SESSION_STARTS}:{address}:{window}")
    pipeline = get_redis_connection("default").pipeline(transaction=False)
    pipeline.incr(key)
    pipeline.expire(key, WINDOW_SECONDS * 2)
    with _counting():
        started, _expiry = pipeline.execute()
    if started <= limit:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


def sessions_rate_limited(retry_after: int) -> PickupError:
    """The refusal of one session too many from an address, in the active language."""
    return PickupError(
        "rate_limited",
        _("Too many new visits from your network. Please try again in %(seconds)d seconds.") % {"seconds": retry_after},
        retry_after=retry_after,
    )


def rate_limited(retry_after: int) -> PickupError:
    """The refusal for an attempt over a limit, in the active language."""
    return PickupError(
        "rate_limited",
        _("Too many orders in a short time. Please try again in %(seconds)d seconds.") % {"seconds": retry_after},
        retry_after=retry_after,
    )


@contextmanager
def _for_staff(doing: str, message: str) -> Iterator[None]:
    """Tell staff, as a ``limits_unreachable`` PickupError carrying ``message``, that Redis is out of reach.

    One warning line without a traceback: the outage itself is already
    reported by /readyz, run_queue and the refusals (``_counting``).
    """
    try:
        yield
    except OUT_OF_REACH as error:
        logger.warning("could not %s for staff, Redis not reachable (%s)", doing, error)
        raise PickupError("limits_unreachable", message) from error


def blocked_now(now: float | None = None) -> list[Block]:
    """Customers and addresses refused in the current window, for the admin.

    Redis out of reach raises ``limits_unreachable``: nobody can be listed,
    and orders are refused ``server_busy`` meanwhile (``_counting``).
    """
    now = clock() if now is None else now
    redis = get_redis_connection("default")
    unreadable = _(
        "The list of refused customers cannot be read right now: Redis is not reachable. "
        "Until it is back, orders are refused as “server busy”."
    )
    with _for_staff("list the refused customers", unreadable):
        redis.zremrangebyscore(_key("blocked"), "-inf", now)
        members = redis.zrange(_key("blocked"), 0, -1, withscores=True)
    blocks = []
    for member, until in members:
        kind, _sep, who = member.decode().partition(":")
        blocks.append(Block(kind, who, until))
    return blocks


def clear(kind: str, who: str, now: float | None = None) -> None:
    """Let a blocked customer or address order again at once (staff, from the admin).

    Redis out of reach raises ``limits_unreachable`` and nothing is cleared.
    """
    now = clock() if now is None else now
    window = int(now // WINDOW_SECONDS)
    pipeline = get_redis_connection("default").pipeline(transaction=True)
    pipeline.delete(_key(f"{kind}:{who}:{window}"))
    pipeline.zrem(_key("blocked"), f"{kind}:{who}")
    not_cleared = _(
        "%(who)s could not be cleared: Redis is not reachable. "
        "Until it is back, orders are refused as “server busy”; clear it again then."
    ) % {"who": who}
    with _for_staff("clear a refused customer", not_cleared):
        pipeline.execute()
