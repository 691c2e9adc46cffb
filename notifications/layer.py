"""The channel layer, with a batched group_send for bursts of alerts.

channels-redis's ``group_send`` costs four Redis round trips per message, so
a thousand alerts falling due together cost thousands of round trips and most
of a second of CPU. ``group_send_many`` does the same work for a whole batch
in a few pipelined round trips and one Lua script per Redis shard, honouring
each channel's capacity like ``group_send`` and saying which messages were
refused for it. It leans on channels-redis 4.3 internals (connection(),
_group_key(), _map_channel_keys_to_connection()), which is why that package
is pinned; tests/notifications/test_layer.py checks it against the real layer.
"""

from __future__ import annotations

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
        member = await super()._brpop_with_clean(index, channel, timeout)
        if member is not None:
            more = await self.connection(index).eval(_TAKE_MANY, 2, channel, self._backup_channel_name(channel), TAKE - 1)
            taken.extend(more[0::2])
        return member
    async def group_send_many(self, messages: list[tuple[str, dict]]) -> list[bool]:
        """Send each (group, message); False where a channel of that group was over capacity."""
        members = await self._group_members({group for group, _ in messages})
        deliveries: dict[int, list[tuple[int, str, bytes, int]]] = defaultdict(list)
        for position, (group, message) in enumerate(messages):
            by_connection, payloads, capacities = self._map_channel_keys_to_connection(members[group], message)
            for index, keys in by_connection.items():
                deliveries[index].extend((position, key, payloads[key], capacities[key]) for key in keys)
        accepted = [True] * len(messages)
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
