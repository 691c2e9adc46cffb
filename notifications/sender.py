"""The one place that talks to the channel layer.

Alerts and order updates go to a customer's group (every open tab of that
customer). The channel layer may drop a message, so senders learn whether a
push reached Redis and the database keeps what must be pushed again.

Sync code (admin actions, run_queue) must not pay for ``async_to_sync`` per
message (a new event loop and Redis connection each time), so it hands its
messages to one long-lived event loop running in a background thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Iterable
from typing import Any

from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from notifications.memberships import memberships
from notifications.transports import DELIVERED, REFUSED, Result

logger = logging.getLogger(__name__)

# More concurrent group_sends than this only queue up for pool connections.
SEND_CONCURRENCY = 64


def customer_group(customer_id: str) -> str:
    return f"customer.{customer_id}"


STAFF_GROUP = "kitchen.staff"


async def send_to_groups(messages: Iterable[tuple[str, dict]]) -> list[bool]:
    """group_send each (group, message); True where Redis accepted it for every channel."""
    layer = get_channel_layer()
    messages = list(messages)
    if hasattr(layer, "group_send_many"):
        try:
            return await layer.group_send_many(messages, here=memberships.sockets_in)
        except (RedisError, OSError) as error:  # Redis down or restarting: expected, and said in one line
            logger.warning("batched group_send of %d messages failed, Redis not reachable (%s)", len(messages), error)
            return [False] * len(messages)
        except Exception:
            logger.exception("batched group_send of %d messages failed", len(messages))
            return [False] * len(messages)
    semaphore = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send_one(group: str, message: dict) -> bool:
        async with semaphore:
            try:
                await layer.group_send(group, message)
                return True
            except (RedisError, OSError) as error:
                logger.warning("group_send to %s failed, Redis not reachable (%s)", group, error)
                return False
            except Exception:
                logger.exception("group_send to %s failed", group)
                return False

    return list(await asyncio.gather(*(send_one(group, message) for group, message in messages)))


async def push_alerts(messages: list[tuple[str, dict]]) -> list[Result]:
    """The socket transport: each alert to every open tab of its customer.

    Delivered means Redis queued it for every socket; a tab acknowledges what
    it showed, and what no tab acknowledged is pushed again (services).
    """
    return [DELIVERED if ok else REFUSED for ok in await send_to_groups(messages)]


class _BackgroundLoop:
    """An event loop in a daemon thread, shared by all sync senders of a process."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="pickup-sender", daemon=True)
                thread.start()
                self._loop = loop
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run a coroutine on the background loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop()).result(timeout)

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine on the background loop without waiting for it."""
        asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop())


background = _BackgroundLoop()


def push_alerts_sync(messages: list[tuple[str, dict]]) -> list[Result]:
    """Blocking form of push_alerts for sync callers such as run_queue."""
    if not messages:
        return []
    return background.run(push_alerts(messages))


def publish(messages: list[tuple[str, dict]]) -> None:
    """Fire-and-forget push of informational messages (order updates), in the order published.

    Call it from ``transaction.on_commit`` so nobody hears of a rolled-back change.
    """
    if messages:
        background.submit(_send_after_the_previous(messages))


# The last publish started on the background loop (only that loop touches it).
_previous_publish: asyncio.Task | None = None


async def _send_after_the_previous(messages: list[tuple[str, dict]]) -> None:
    """Send once the publish before it is sent: an order's "queued" must not overtake its
    "cancelled" on the way to a tab (each would otherwise race for a Redis connection).

    Tasks start in the order they were submitted, so each waits for the one before.
    """
    global _previous_publish
    previous, _previous_publish = _previous_publish, asyncio.current_task()
    if previous is not None and not previous.done() and previous.get_loop() is asyncio.get_running_loop():
        await asyncio.wait([previous])  # its failure is its own: logged by send_to_groups
    await send_to_groups(messages)
