"""The kitchen queue: a Redis sorted set of orders scored by pickup time.

One member per order (its id), score = pickup time in epoch milliseconds.
It is an index, not the record: the database says which orders are waiting,
and ``rebuild`` restores the set from it after Redis lost its memory.

Claiming is one Lua script, so two run_queue workers never take the same
entry: due members move to a claims set scored by the lease's end. A worker
that dies leaves its claims behind; once the lease has run out the next
claim puts them back in the queue under their original pickup time.

What the set is the truth for: *when* run_queue next looks at an order (its
score) and *which worker* is looking at it now (a claim and its lease), so
that a burst of due orders is split between workers instead of raced for.
What the database is the truth for: everything else. Which orders wait
(the rebuild source), what happened to each (``Order.status``, and
``processed_at`` once it was made ready), and what the kitchen screen, the
admin and the customer see. A lost, stale or returned entry can make an order
late (until the next rebuild or lease end), never ready twice: making it
ready is a compare-and-set on ``processed_at`` in the database.

Only one of the kitchen's three timed steps goes through the set: ready at
the pickup time. Starting preparation at the lead time and reminding or
closing uncollected orders are found by run_queue each pass with an indexed
database query (``orders.timeline``), each move a compare-and-set on the
status. That stays so: the design requires this set to hold one member per
order, scored by its pickup time and claimed atomically, so the other two
steps would need sets of their own, each with its rebuild and leases; and
reminders and no-shows fall due by the restaurant's grace and reminder
minutes, which staff change in the admin at any time, so their entries would
have to be re-scored on every change, while the query reads the current
rules. Moving "ready" to the database query instead would give up the
atomic claim that splits a burst between workers (docs/delivery.md).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django_redis import get_redis_connection

QUEUE = "kitchen_queue"
CLAIMS = "kitchen_queue:claims"
SCORES = "kitchen_queue:claimed_scores"
BUILT = "kitchen_queue:built"
OWNER = "installation"

_CLAIM_DUE = """
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, member in ipairs(expired) do
  local score = redis.call('HGET', KEYS[3], member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('HDEL', KEYS[3], member)
  if score then redis.call('ZADD', KEYS[1], 'NX', score, member) end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local lease_end = now + tonumber(ARGV[2])
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('ZADD', KEYS[2], lease_end, due[i])
  redis.call('HSET', KEYS[3], due[i], due[i + 1])
end
return due
"""

# Adds the entries that are neither queued nor claimed; returns how many.
_ADD_MISSING = """
local added = 0
for i = 1, #ARGV, 2 do
  local member = ARGV[i + 1]
  if not redis.call('ZSCORE', KEYS[2], member) then
    added = added + redis.call('ZADD', KEYS[1], 'NX', ARGV[i], member)
  end
end
return added
"""


# Drops the claims whose lease still ends when the caller's does (theirs).
_FINISH_OWN = """
local dropped = 0
for i = 2, #ARGV do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    dropped = dropped + 1
  end
end
return dropped
"""


def _key(name: str) -> str:
    return settings.REDIS_KEY_PREFIX + name


def _redis():
    return get_redis_connection("default")


def score_of(pickup_at: datetime) -> int:
    """Epoch milliseconds of the pickup time: the sort key of the kitchen queue."""
    return int(pickup_at.timestamp() * 1000)


def add_many(entries: list[tuple[int, datetime]]) -> None:
    """Queue orders (id, pickup time), or move them to new pickup times, with one command."""
    if entries:
        _redis().zadd(_key(QUEUE), {str(order_id): score_of(pickup_at) for order_id, pickup_at in entries})


def remove_many(order_ids: list[int]) -> None:
    """Take orders out of the queue, with their claims, in one round trip however many there are."""
    if not order_ids:
        return
    members = [str(order_id) for order_id in order_ids]
    pipe = _redis().pipeline()
    pipe.zrem(_key(QUEUE), *members)
    pipe.zrem(_key(CLAIMS), *members)
    pipe.hdel(_key(SCORES), *members)
    pipe.execute()


def claim_due(*, now_ms: int, lease_ms: int, limit: int) -> list[tuple[int, int]]:
    """Atomically take up to ``limit`` due entries; returns (order id, pickup ms)."""
    flat = _redis().eval(_CLAIM_DUE, 3, _key(QUEUE), _key(CLAIMS), _key(SCORES), now_ms, lease_ms, limit)
    return [(int(flat[i]), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]


def finish(order_ids: list[int], *, lease_end_ms: int) -> int:
    """Drop the claims of entries this worker has handled; returns how many were still its own.

    ``lease_end_ms`` is the claim's (``now_ms + lease_ms`` of ``claim_due``).
    A worker that stalled past its lease may find the entry claimed again by
    another worker, still at work on it: that claim is left alone.
    """
    if not order_ids:
        return 0
    return _redis().eval(_FINISH_OWN, 2, _key(CLAIMS), _key(SCORES), lease_end_ms, *map(str, order_ids))


def postpone(order_id: int, until_ms: int) -> None:
    """Give a failing entry back to the queue to be tried again later."""
    member = str(order_id)
    pipe = _redis().pipeline()
    pipe.zrem(_key(CLAIMS), member)
    pipe.hdel(_key(SCORES), member)
    pipe.zadd(_key(QUEUE), {member: until_ms})
    pipe.execute()


def next_due_ms() -> int | None:
    first = _redis().zrange(_key(QUEUE), 0, 0, withscores=True)
    return int(first[0][1]) if first else None


def depth(*, overdue_before_ms: int) -> tuple[int, int]:
    """(entries queued, of which due before ``overdue_before_ms``): how much work waits, and how late."""
    pipe = _redis().pipeline()
    pipe.zcard(_key(QUEUE))
    pipe.zcount(_key(QUEUE), "-inf", overdue_before_ms)
    queued, overdue = pipe.execute()
    return queued, overdue


def is_built() -> bool:
    """False after Redis lost its memory (restart, flush, failover): rebuild then."""
    return bool(_redis().exists(_key(BUILT)))


def rebuild(entries: list[tuple[int, datetime]]) -> int:
    """Add waiting orders the set lacks, skipping ones a worker has claimed."""
    redis = _redis()
    added = 0
    chunk = 1000
    for start in range(0, len(entries), chunk):
        args: list = []
        for order_id, pickup_at in entries[start : start + chunk]:
            args += [score_of(pickup_at), str(order_id)]
        added += redis.eval(_ADD_MISSING, 2, _key(QUEUE), _key(CLAIMS), *args)
    redis.set(_key(BUILT), "1")
    return added


def entries(limit: int = 500) -> list[tuple[int, int]]:
    """(order id, pickup ms) of the queued orders, earliest pickup first."""
    return [(int(m), int(s)) for m, s in _redis().zrange(_key(QUEUE), 0, limit - 1, withscores=True)]


class NamespaceTaken(ImproperlyConfigured):
    """Another database's installation already uses this Redis key prefix."""


def claim_namespace() -> None:
    """Make this Redis key prefix this installation's, or refuse to go on.

    Order ids of two databases sharing one prefix collide in the sorted set:
    each installation's worker would process the other's orders. The first
    process to start marks the prefix with its database's installation id;
    every other process checks the mark. A Redis that lost its memory is
    marked again by whoever comes first.
    """
    from orders.models import Restaurant

    # Read afresh, not through Restaurant.current(): that copy of the rules is
    # kept for seconds, and a process starting now must not keep stale rules.
    installation = str(Restaurant.objects.get_or_create(pk=1)[0].installation)
    redis = _redis()
    key = _key(OWNER)
    redis.set(key, installation, nx=True)
    owner = redis.get(key)
    if owner is not None and owner.decode() != installation:
        raise NamespaceTaken(
            f"The Redis key prefix {settings.REDIS_KEY_PREFIX!r} at {settings.REDIS} belongs to another "
            f"Pickup database (installation {owner.decode()}; this one is {installation}). Give each "
            "installation its own REDIS_KEY_PREFIX or Redis database number."
        )
