"""A web process's inbox on the channel layer, read by one task into per-socket buffers.

Every socket of a process shares one Redis inbox. channels-redis makes each
socket race for a receive lock, leaves the winner blocked on Redis, and
spends four round trips per message. Here one reader per process takes up
to ``TAKE`` waiting messages per round trip and puts each in the buffer of
the socket it is for; a socket waits on its own buffer only.

Fetched messages sit in a backup queue until they are in their buffers, as
channels-redis keeps them, so a fetch whose reply was lost (Redis went away
mid-reply) is read again when the reader starts over: a duplicate at worst,
which the page shows once. The layer also hands messages for this process's
own sockets straight into these buffers (``hand_over``), without Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pickup.outage_log import OutageLog, OutageWords

logger = logging.getLogger(__name__)

# Moves the backup of a fetch that never finished back into the inbox, like
# channels-redis does before each of its receives.
_RESTORE = """
local backed_up = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = #backed_up, 1, -2 do
  redis.call('ZADD', KEYS[1], backed_up[i], backed_up[i - 1])
end
redis.call('DEL', KEYS[2])
"""

# Puts the message BZPOPMIN just took (ARGV[1], sent at ARGV[2]) in the
# backup queue, and moves up to ARGV[3] more waiting ones there with it.
_TAKE_MORE = """
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
local taken = redis.call('ZPOPMIN', KEYS[1], ARGV[3])
for i = 1, #taken, 2 do
  redis.call('ZADD', KEYS[2], taken[i + 1], taken[i])
end
return taken
"""

TAKE = 500  # messages fetched per round trip
WAIT = 5  # seconds one blocking fetch waits before it is made again
RETRY_AFTER = 1.0  # seconds between fetches while Redis cannot be reached

# A reader failing through a Redis outage: a few lines however long it lasts.
READ_FAILURES = OutageWords(
    began="reading the channel layer failed (%(error)s); retrying every 1 s",
    goes_on="reading the channel layer still fails (%(error)s): %(total)d failed read(s) over %(seconds).0f s; retrying",
    ended="Redis reachable again after %(total)d failed read(s) over %(seconds).0f s; the channel layer is read again",
)


class Inbox:
    """One process's inbox: its Redis key, the reader that empties it, the sockets' buffers.

    ``connection`` gives the Redis client for the running loop and
    ``deserialize`` turns a fetched member back into a message; both come
    from the layer, which owns the pools and the message format.
    """

    def __init__(
        self,
        key: str,
        capacity: int,
        connection: Callable[[], Any],
        deserialize: Callable[[bytes], dict],
    ) -> None:
        self.key = key
        self.backup_key = key + "$inflight"
        self.capacity = capacity
        self._connection = connection
        self._deserialize = deserialize
        self._buffers: dict[str, asyncio.Queue] = {}
        self._reader: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.outage = OutageLog(logger, READ_FAILURES)

    def reads_on(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether this inbox's sockets receive on ``loop``: only then can they be handed messages."""
        return self.loop is loop and self._reader is not None and not self._reader.done()

    def listen(self, channel: str) -> asyncio.Queue:
        """One socket's buffer to wait on; the reader is started if it is not running on this loop.

        The layer's ``receive`` awaits the buffer itself (one coroutine less
        per message than a method here would cost) and calls ``forget`` after.
        """
        self._start()
        return self._buffer(channel)

    def forget(self, channel: str, buffer: asyncio.Queue) -> None:
        """Drop a socket's buffer: it is empty (a later message makes a new one), or the socket has gone."""
        if self._buffers.get(channel) is buffer:
            del self._buffers[channel]

    def hand_over(self, channel: str, message: dict) -> bool:
        """Put a message in a socket's buffer directly; False if the socket stopped reading (full)."""
        buffer = self._buffers.get(channel)
        if buffer is None:
            buffer = self._buffers[channel] = asyncio.Queue(self.capacity)
        elif buffer.full():
            return False
        buffer.put_nowait(message)
        return True

    def _buffer(self, channel: str) -> asyncio.Queue:
        buffer = self._buffers.get(channel)
        if buffer is None:
            buffer = self._buffers[channel] = asyncio.Queue(self.capacity)
        return buffer

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._reader is not None and not self._reader.done():
            if self.loop is loop:
                return
            if not self.loop.is_closed():
                raise RuntimeError("Two event loops are trying to receive() on one channel layer at once!")
        if self.loop is not loop:
            self._buffers.clear()  # the sockets of a loop that has gone
        self.loop = loop
        self._reader = loop.create_task(self._read_forever())

    async def _read_forever(self) -> None:
        restore = True  # at the start, and after a fetch that may not have finished
        while True:
            if asyncio.current_task().cancelling():
                # redis-py can swallow a cancellation during BZPOPMIN and
                # return None; without this check the reader would go on.
                raise asyncio.CancelledError
            try:
                connection = self._connection()
                if restore:
                    await connection.eval(_RESTORE, 2, self.key, self.backup_key)
                    restore = False
                fetched = await self._fetch(connection)
                # Only a whole round ends an outage: a Redis that answers the
                # restore but fails every fetch would say an end and a start a second.
                self.outage.succeeded()
                for member in fetched:
                    self._deliver(member)
                if fetched:
                    await connection.delete(self.backup_key)
            except Exception as error:
                if asyncio.current_task().cancelling():
                    raise asyncio.CancelledError from error
                # Redis down: the sockets stay open and local hand-overs go on.
                self.outage.failed(error)
                restore = True
                await asyncio.sleep(RETRY_AFTER)

    async def _fetch(self, connection) -> list[bytes]:
        popped = await connection.bzpopmin(self.key, timeout=WAIT)
        if popped is None:
            return []
        _, first, sent_at = popped
        more = await connection.eval(_TAKE_MORE, 2, self.key, self.backup_key, first, sent_at, TAKE - 1)
        return [first, *more[0::2]]

    def _deliver(self, member: bytes) -> None:
        try:
            message = self._deserialize(member)
            channels = message.pop("__asgi_channel__")
        except Exception:
            logger.exception("dropped a message from the channel layer that cannot be read")
            return
        for channel in channels if isinstance(channels, list) else [channels]:
            buffer = self._buffer(channel)
            if buffer.full():
                # A socket that stopped reading: drop its oldest, as channels-redis does.
                buffer.get_nowait()
            buffer.put_nowait(message)
