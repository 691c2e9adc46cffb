"""The channel layer's Redis connections: a bounded pool that waits for a free
connection, and lets idle ones go once a crowd has left.

redis-py 8's asyncio pool raises ``MaxConnectionsError`` the moment its bound
is reached (2,500 sockets closing at once logged 1,501 of them, and those
sockets' group memberships were left behind), and it never closes an idle
connection: after one crowd a web process held about a thousand Redis
connections, and as many file descriptors, for good. This pool is redis-py's
``BlockingConnectionPool`` (a task waits, up to ``WAIT_SECONDS``, for a
connection someone releases) that closes the least recently used idle
connections beyond ``KEEP_IDLE``, ``TRIM_AFTER`` seconds after it first held
more than that, and again as long as it does.

Its connections are named ``pickup-layer-<pid>`` in Redis's ``CLIENT LIST``,
so an operator (and tests/processes/test_layer_connections.py) can count one
process's share.
"""

from __future__ import annotations

import asyncio
import os

from redis.asyncio import BlockingConnectionPool
from redis.asyncio.sentinel import SentinelConnectionPool

# Idle connections kept for the next burst: the inbox reader holds one, a
# burst of alerts a few, joins and leaves of ordinary traffic a few more.
KEEP_IDLE = 10
# Seconds between the pool first holding more idle connections than that and
# closing them: a burst that comes back within it finds its connections open.
TRIM_AFTER = 5.0
# How long a command waits for a free connection before it fails.
WAIT_SECONDS = 10.0


def client_name() -> str:
    return f"pickup-layer-{os.getpid()}"


class _ClosesIdleSurplus:
    """Closes surplus idle connections after a while (a mixin of a redis-py pool).

    Relies on one attribute of redis-py's pool, ``_available_connections``
    (idle connections, the most recently released last: the pool hands out
    from the end); tests/notifications/test_layer_pool.py checks it.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._trim_task: asyncio.Task | None = None
        self._trim_handle: asyncio.TimerHandle | None = None

    def idle_count(self) -> int:
        return len(self._available_connections)

    async def release(self, connection) -> None:
        await super().release(connection)
        if self._trim_handle is None and self.idle_count() > KEEP_IDLE:
            loop = asyncio.get_running_loop()
            self._trim_handle = loop.call_later(TRIM_AFTER, self._start_trim)

    def _start_trim(self) -> None:
        self._trim_task = asyncio.get_running_loop().create_task(self.trim())

    async def trim(self) -> int:
        """Close the idle connections beyond ``KEEP_IDLE``, least recently used first; how many."""
        self._trim_handle = None
        idle = self._available_connections
        surplus = idle[: max(0, len(idle) - KEEP_IDLE)]
        del idle[: len(surplus)]  # no await in between: nobody takes one of them meanwhile
        await asyncio.gather(*(connection.disconnect() for connection in surplus), return_exceptions=True)
        return len(surplus)

    async def aclose(self) -> None:
        if self._trim_handle is not None:
            self._trim_handle.cancel()
            self._trim_handle = None
        await super().aclose()


class LayerConnectionPool(_ClosesIdleSurplus, BlockingConnectionPool):
    """Waits for a connection instead of raising; closes surplus idle ones after a while."""


class SentinelLayerConnectionPool(_ClosesIdleSurplus, SentinelConnectionPool, BlockingConnectionPool):
    """The same, to whichever server the sentinels name the primary (REDIS_SENTINELS).

    redis-py's sentinel pool only says where to connect and which
    connections still belong to the primary; getting and releasing one is
    the blocking pool's.
    """
