"""The channel layer: channels-redis's, read through one inbox reader, with a batched group_send.

channels-redis's ``group_send`` costs four Redis round trips per message, so
a thousand alerts falling due together cost thousands of round trips and most
of a second of CPU. ``group_send_many`` does the same work for a whole batch
in a few pipelined round trips and one Lua script per Redis shard, honouring
each channel's capacity like ``group_send`` and saying which messages were
refused for it.

Receiving goes through this process's ``Inbox`` (notifications/inbox.py):
one reader task per process instead of channels-redis's race for a receive
lock, so ``receive()`` is replaced for this process's sockets. The sockets
this process holds in a group (notifications/memberships.py knows them) are
handed their messages straight into their buffers when sent from the loop
they receive on: no Redis round trip, and no shared inbox to overflow.

What this still takes from channels-redis beyond its documented settings is
listed in ``CHANNELS_REDIS_INTERNALS``, pinned to ``CHANNELS_REDIS_VERSION``
and checked against the installed package by
tests/notifications/test_layer_contract.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from channels_redis.core import RedisChannelLayer
from redis.asyncio.sentinel import Sentinel

from notifications.inbox import Inbox
from notifications.layer_pool import WAIT_SECONDS, LayerConnectionPool, SentinelLayerConnectionPool, client_name

CHANNELS_REDIS_VERSION = "4.3.0"  # the release every entry below was read against


@dataclass(frozen=True)
class Internal:
    """A name of channels-redis's layer that Pickup relies on beyond its documented settings."""

    name: str
    signature: str  # as inspect.signature() shows it on RedisChannelLayer in CHANNELS_REDIS_VERSION
    used_for: str
    replaced: bool = False  # overridden here rather than called


CHANNELS_REDIS_INTERNALS = (
    Internal("connection", "(self, index)",
             "the redis.asyncio client of a shard, from the running loop's pool: the inbox reader and group_send_many"),
    Internal("consistent_hash", "(self, value)", "which shard holds a group, or a process's inbox"),
    Internal("_group_key", "(self, group)",
             "the key of a group's sorted set (channel -> joined at), written by group_add and read by "
             "group_send_many; tests/processes/ match these keys as '<prefix>:group:*'"),
    Internal("serialize", "(self, message)",
             "a message's bytes in a channel's sorted set (group_send_many), as channels-redis's send writes them"),
    Internal("deserialize", "(self, message)", "a fetched member back into a message (the inbox reader)"),
    # Channels' BaseChannelLayer helpers, reached through the same class.
    Internal("non_local_name", "(self, name)",
             "a socket's channel name -> its process's inbox, whose name (after the prefix) is the key of its messages"),
    Internal("get_capacity", "(self, channel)", "an inbox's capacity (the capacity and channel_capacity settings)"),
    Internal("require_valid_channel_name", "(self, name, receive=False)", "receive() checks names as channels-redis does"),
    Internal("require_valid_group_name", "(self, name)", "group_send_many checks names as group_send does"),
    # Public methods replaced here: the Channels layer spec still says what they mean.
    Internal("new_channel", "(self, prefix='specific')",
             "names this process's sockets after its own inbox, as channels-redis does after its client_prefix",
             replaced=True),
    Internal("receive", "(self, channel)",
             "this process's sockets read their buffers in notifications/inbox.py; other channels go to "
             "channels-redis's receive", replaced=True),
    Internal("create_pool", "(self, index)",
             "a shard's connection pool, made lazily by connection(): Pickup's waits for a free connection "
             "and closes idle ones (notifications/layer_pool.py)", replaced=True),
)
# Besides these names the layer shares two Redis layouts with channels-redis's
# own group_add, send and group_send: a group is a sorted set of channel ->
# joined at (under _group_key); a channel's messages are a sorted set under
# prefix + non_local_name(channel), scored by send time, each message naming
# its sockets in "__asgi_channel__". The contract test checks both.

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

logger = logging.getLogger(__name__)


def _inbox_name(channel: str) -> str:
    """The process inbox a socket's channel is read from, "" for a channel of no process (non_local_name
    without its method call: group_send_many asks it for every member of every group)."""
    return channel[: channel.find("!") + 1]


class PickupChannelLayer(RedisChannelLayer):
    def __init__(self, *, prefix: str = "asgi", expiry: int = 60, group_expiry: int = 86400,
                 capacity: int = 100, **options) -> None:
        super().__init__(prefix=prefix, expiry=expiry, group_expiry=group_expiry, capacity=capacity, **options)
        # Kept here rather than read back from channels-redis's attributes.
        self._key_prefix = prefix
        self._message_expiry = expiry
        self._membership_expiry = group_expiry
        self._socket_capacity = capacity
        self._process = uuid.uuid4().hex  # in every socket name this layer hands out
        self._inboxes: dict[str, Inbox] = {}  # inbox name -> this process's inbox

    async def new_channel(self, prefix: str = "specific") -> str:
        """A name for one of this process's sockets, read from the process's inbox."""
        return f"{prefix}.{self._process}!{uuid.uuid4().hex}"

    async def receive(self, channel: str) -> dict:
        """Wait for a socket's next message; the process's inbox reader fills its buffer."""
        if "!" not in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        inbox = self._inbox(channel)
        buffer = inbox.listen(channel)
        try:
            message = await buffer.get()
        except asyncio.CancelledError:
            inbox.forget(channel, buffer)  # the socket is going away; what still waits for it goes too
            raise
        if buffer.empty():
            inbox.forget(channel, buffer)
        return message

    def create_pool(self, index: int):
        """A shard's pool: bounded by its ``max_connections``, waiting rather than raising when all
        are in use, and closing idle ones after a crowd (notifications/layer_pool.py); through
        the sentinels to the primary when the host names them, as channels-redis's own does."""
        host = dict(self.hosts[index])
        host.setdefault("client_name", client_name())
        if "address" in host:
            return LayerConnectionPool.from_url(host.pop("address"), timeout=WAIT_SECONDS, **host)
        sentinels = Sentinel(host.pop("sentinels"), sentinel_kwargs=host.pop("sentinel_kwargs", None))
        return SentinelLayerConnectionPool(host.pop("master_name"), sentinels, timeout=WAIT_SECONDS, **host)

    def _inbox(self, channel: str) -> Inbox:
        name = self.non_local_name(channel)
        inbox = self._inboxes.get(name)
        if inbox is None:
            assert name.endswith(f".{self._process}!"), "Wrong client prefix"
            shard = self.consistent_hash(name)
            inbox = self._inboxes[name] = Inbox(
                self._key_prefix + name, self._socket_capacity, lambda: self.connection(shard), self.deserialize
            )
        return inbox

    def _inboxes_on(self, loop: asyncio.AbstractEventLoop) -> dict[str, Inbox]:
        """This process's inboxes whose sockets receive on ``loop``, by name: usually one, or none."""
        return {name: inbox for name, inbox in self._inboxes.items() if inbox.reads_on(loop)}

    async def group_send_many(
        self, messages: list[tuple[str, dict]], here: Callable[[str], Iterable[str]] | None = None
    ) -> list[bool]:
        """Send each (group, message); False where a channel of that group was over capacity.

        ``here`` names this process's own sockets in a group. Those that
        receive on the sending loop (the web timers') get their messages at
        once, before Redis is asked who else is in each group: their wait
        does not include it. Every other member is sent through Redis.
        """
        accepted = [True] * len(messages)
        reading = self._inboxes_on(asyncio.get_running_loop()) if here is not None else {}
        if reading:
            self._hand_over(messages, here, reading, accepted)
        members = await self._group_members({group for group, _ in messages})
        deliveries: dict[int, list[tuple[int, str, bytes, int]]] = defaultdict(list)
        for position, (group, message) in enumerate(messages):
            local = here(group) if reading else ()
            elsewhere = [
                channel for channel in members[group] if channel not in local or _inbox_name(channel) not in reading
            ]
            for shard, key, payload, capacity in self._addressed(elsewhere, message):
                deliveries[shard].append((position, key, payload, capacity))
        for shard, entries in deliveries.items():
            for position, flag in await self._add_all(shard, entries):
                if not flag:
                    accepted[position] = False
        refused = accepted.count(False)
        if refused:
            # Same words as channels-redis's own log line; these are pushed again.
            logger.info("%d of %d messages refused: channels over capacity", refused, len(messages))
        return accepted

    @staticmethod
    def _hand_over(
        messages: list[tuple[str, dict]], here: Callable[[str], Iterable[str]], reading: dict[str, Inbox],
        accepted: list[bool],
    ) -> None:
        """Put each message in the buffers of its group's sockets that receive on this loop."""
        for position, (group, message) in enumerate(messages):
            for channel in here(group):
                inbox = reading.get(_inbox_name(channel))
                if inbox is not None and not inbox.hand_over(channel, dict(message)):
                    accepted[position] = False  # a socket that stopped reading

    def _addressed(self, channels: list[str], message: dict) -> Iterator[tuple[int, str, bytes, int]]:
        """One copy of ``message`` per inbox of ``channels``, naming its sockets, as channels-redis addresses it:
        (shard, key, payload, capacity)."""
        by_inbox: dict[str, list[str]] = defaultdict(list)
        for channel in channels:
            by_inbox[self.non_local_name(channel)].append(channel)
        for inbox, sockets in by_inbox.items():
            payload = self.serialize({**message, "__asgi_channel__": sockets})
            yield self.consistent_hash(inbox), self._key_prefix + inbox, payload, self.get_capacity(sockets[0])

    async def _add_all(self, shard: int, entries: list[tuple[int, str, bytes, int]]) -> list[tuple[int, int]]:
        """Expire old messages, then add every entry unless its channel is full; (position, accepted)."""
        connection = self.connection(shard)
        now = time.time()
        pipe = connection.pipeline(transaction=False)
        for key in {key for _, key, _, _ in entries}:
            pipe.zremrangebyscore(key, min=0, max=int(now) - int(self._message_expiry))
        await pipe.execute()
        outcome = []
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            flags = await connection.eval(
                _ADD_ALL, len(chunk), *(key for _, key, _, _ in chunk),
                *(payload for _, _, payload, _ in chunk), *(capacity for *_, capacity in chunk),
                now, self._message_expiry,
            )
            outcome += [(position, flag) for (position, *_), flag in zip(chunk, flags)]
        return outcome

    async def _group_members(self, groups: set[str]) -> dict[str, list[str]]:
        by_shard: dict[int, list[str]] = defaultdict(list)
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
            by_shard[self.consistent_hash(group)].append(group)
        members: dict[str, list[str]] = {}
        oldest = int(time.time()) - self._membership_expiry
        for shard, names in by_shard.items():
            pipe = self.connection(shard).pipeline(transaction=False)
            for group in names:
                pipe.zremrangebyscore(self._group_key(group), min=0, max=oldest)
                pipe.zrange(self._group_key(group), 0, -1)
            results = await pipe.execute()
            for group, channels in zip(names, results[1::2]):
                members[group] = [channel.decode("utf8") for channel in channels]
        return members
