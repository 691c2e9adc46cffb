"""The channel layer, with a batched group_send for bursts of alerts.

channels-redis's ``group_send`` costs four Redis round trips per message, so
a thousand alerts falling due together cost thousands of round trips and most
of a second of CPU. ``group_send_many`` does the same work for a whole batch
in a few pipelined round trips and one Lua script per Redis shard, honouring
each channel's capacity like ``group_send`` and saying which messages were
refused for it. It leans on channels-redis 4.3 internals (connection(),
_group_key(), _map_channel_keys_to_connection()), which is why that package
is pinned; tests/notifications/test_layer.py checks it against the real layer.

Receiving is one reader task per process: it moves messages from the
process's Redis inbox into per-socket buffers, and each socket waits on its
own buffer only (channels-redis makes every socket race for a receive lock
and leaves the winner blocked on Redis). So members of a group whose sockets
live in the sending process itself (the web process's timers pushing to its
own customers) are handed their message straight into that buffer: no Redis
round trip, and no shared inbox to overflow. The layer remembers which of its
own sockets joined which group, so this hand-off happens before Redis is even
asked for the groups' other members.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque

from channels_redis.core import RedisChannelLayer

# Adds each message to its channel's sorted set unless that is over capacity;
# returns 1 (accepted) or 0 (over capacity) per message. Keys may repeat:
# every socket of one daphne process shares one inbox.
_ADD_ALL = """
local n = #KEYS
local now = ARGV[2 * n + 1]
local expiry = ARGV[2 * n + 2]
local accepted = {}
for i = 1, n do
  if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
    redis.call('ZADD', KEYS[i], now, ARGV[i])
    redis.call('EXPIRE', KEYS[i], expiry)
    accepted[i] = 1
  else
    accepted[i] = 0
  end
end
return accepted
"""

CHUNK = 500  # messages per Lua call, so Redis is never blocked for long

# Takes up to ARGV[1] waiting messages off a channel and into its backup
# queue in one step, like channels-redis does for one message at a time.
_TAKE_MANY = """
local taken = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
for i = 1, #taken, 2 do
  redis.call('ZADD', KEYS[2], taken[i + 1], taken[i])
end
return taken
"""
TAKE = 500  # messages fetched per round trip by a receiving process

logger = logging.getLogger(__name__)


class PickupChannelLayer(RedisChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._taken: dict[str, deque] = defaultdict(deque)
        self._uncleaned: dict[str, int] = defaultdict(int)
        self._reader: asyncio.Task | None = None
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        self._own_channels = f"specific.{self.client_prefix}!"  # what new_channel() hands out here
        self._local_groups: dict[str, set[str]] = defaultdict(set)  # group -> this process's sockets in it

    async def group_add(self, group, channel):
        await super().group_add(group, channel)
        if channel.startswith(self._own_channels):
            self._local_groups[group].add(channel)

    async def group_discard(self, group, channel):
        members = self._local_groups.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._local_groups[group]
        await super().group_discard(group, channel)

    async def receive(self, channel):
        """Wait for this socket's next message; the process's reader fills its buffer."""
        if "!" not in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        inbox = self.non_local_name(channel)
        assert inbox.endswith(self.client_prefix + "!"), "Wrong client prefix"
        self._start_reader(inbox)
        buffer = self.receive_buffer[channel]
        try:
            message = await buffer.get()
        except asyncio.CancelledError:
            # The socket is going away; whatever still waits for it goes too.
            if self.receive_buffer.get(channel) is buffer:
                del self.receive_buffer[channel]
            raise
        if buffer.empty() and self.receive_buffer.get(channel) is buffer:
            del self.receive_buffer[channel]  # a later message makes a new one
        return message

    def _start_reader(self, inbox: str) -> None:
        loop = asyncio.get_running_loop()
        if self._reader is not None and not self._reader.done():
            if self._reader_loop is loop:
                return
            if not self._reader_loop.is_closed():
                raise RuntimeError("Two event loops are trying to receive() on one channel layer at once!")
        self._reader_loop = loop
        self._reader = loop.create_task(self._read_inbox(inbox))

    async def _read_inbox(self, inbox: str) -> None:
        while True:
            try:
                target, message = await self.receive_single(inbox)
            except Exception as error:
                if asyncio.current_task().cancelling():
                    raise asyncio.CancelledError from error
                # Redis down: the sockets stay open and local pushes go on.
                logger.warning("reading the channel layer failed (%s); retrying in 1 s", error)
                await asyncio.sleep(1)
                continue
            for channel in target if isinstance(target, list) else [target]:
                self.receive_buffer[channel].put_nowait(message)

    def _is_local(self, channel: str, loop: asyncio.AbstractEventLoop) -> bool:
        """A socket of this process, receiving on this loop: group_send_many hands it its messages itself."""
        return loop is self._reader_loop and channel.startswith(self._own_channels)

    async def _brpop_with_clean(self, index, channel, timeout):
        """Receive like channels-redis, but fetch up to TAKE waiting messages per round trip.

        channels-redis spends four round trips on every message it receives;
        a burst of a thousand alerts into one daphne process took most of a
        second. Messages fetched here sit in the backup queue exactly as the
        one channels-redis fetches does, so none is lost if the process dies.
        """
        taken = self._taken[channel]
        if taken:
            return taken.popleft()
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # redis-py can swallow a cancellation during BZPOPMIN and return
            # None; channels-redis would then block again, forever.
            raise asyncio.CancelledError
        member = await super()._brpop_with_clean(index, channel, timeout)
        if member is not None:
            more = await self.connection(index).eval(_TAKE_MANY, 2, channel, self._backup_channel_name(channel), TAKE - 1)
            taken.extend(more[0::2])
        return member

    async def _clean_receive_backup(self, index, channel):
        """Drop received messages from the backup queue, a fetched batch at a time.

        channels-redis spends one round trip per received message on this,
        and the next receive waits for it. Messages still waiting in this
        process's batch are cleaned with the batch's last one; the backup is
        only read back (by the next fetch) once the whole batch is cleaned.
        """
        self._uncleaned[channel] += 1
        if self._taken[channel]:
            return
        count, self._uncleaned[channel] = self._uncleaned[channel], 0
        await self.connection(index).zpopmin(self._backup_channel_name(channel), count)

    async def group_send_many(self, messages: list[tuple[str, dict]]) -> list[bool]:
        """Send each (group, message); False where a channel of that group was over capacity.

        Sent from the loop that reads this process's inbox (the web timers),
        the process's own sockets get their messages at once, before Redis
        is asked who else is in each group: their wait does not include it.
        """
        accepted = [True] * len(messages)
        loop = asyncio.get_running_loop()
        if loop is self._reader_loop:
            for position, (group, message) in enumerate(messages):
                for channel in self._local_groups.get(group, ()):
                    if self.receive_buffer[channel].full():  # a socket that stopped reading
                        accepted[position] = False
                    else:
                        self.receive_buffer[channel].put_nowait(dict(message))
        members = await self._group_members({group for group, _ in messages})
        deliveries: dict[int, list[tuple[int, str, bytes, int]]] = defaultdict(list)
        for position, (group, message) in enumerate(messages):
            elsewhere = [channel for channel in members[group] if not self._is_local(channel, loop)]
            if not elsewhere:
                continue
            by_connection, payloads, capacities = self._map_channel_keys_to_connection(elsewhere, message)
            for index, keys in by_connection.items():
                deliveries[index].extend((position, key, payloads[key], capacities[key]) for key in keys)
        now = time.time()
        for index, entries in deliveries.items():
            connection = self.connection(index)
            pipe = connection.pipeline(transaction=False)
            for key in {key for _, key, _, _ in entries}:
                pipe.zremrangebyscore(key, min=0, max=int(now) - int(self.expiry))
            await pipe.execute()
            for start in range(0, len(entries), CHUNK):
                chunk = entries[start : start + CHUNK]
                flags = await connection.eval(
                    _ADD_ALL, len(chunk), *(key for _, key, _, _ in chunk),
                    *(payload for _, _, payload, _ in chunk), *(capacity for *_, capacity in chunk),
                    now, self.expiry,
                )
                for (position, *_), flag in zip(chunk, flags):
                    if not flag:
                        accepted[position] = False
        refused = accepted.count(False)
        if refused:
            # Same words as channels-redis's own log line; these are pushed again.
            logger.info("%d of %d messages refused: channels over capacity", refused, len(messages))
        return accepted

    async def _group_members(self, groups: set[str]) -> dict[str, list[str]]:
        by_connection: dict[int, list[str]] = defaultdict(list)
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
            by_connection[self.consistent_hash(group)].append(group)
        members: dict[str, list[str]] = {}
        oldest = int(time.time()) - self.group_expiry
        for index, names in by_connection.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in names:
                pipe.zremrangebyscore(self._group_key(group), min=0, max=oldest)
                pipe.zrange(self._group_key(group), 0, -1)
            results = await pipe.execute()
            for group, channels in zip(names, results[1::2]):
                members[group] = [channel.decode("utf8") for channel in channels]
        return members
