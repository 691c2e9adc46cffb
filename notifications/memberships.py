"""Keeps this web process's sockets in their channel-layer groups.

Group memberships live only in Redis. If Redis loses its memory (a restart,
a flush, a failover) every open socket silently stops hearing its alerts,
and channels-redis also forgets a membership after a day. So each process
remembers which of its sockets joined which group and joins them all again
when its marker key has vanished from Redis, and once an hour anyway. The
marker is set before the joins and checked after them, so a second loss in
the middle of a re-join is seen too. It holds the id of the Redis server it
was set on: after a Sentinel failover the promoted replica holds the marker
but may lack a join the old primary had not yet passed on, so a marker from
another server counts as lost too.

The same record says which of this process's sockets are in a group, so the
channel layer can hand them their alerts without asking Redis
(``sockets_in``, passed by notifications/sender.py), and the web timers arm
only the alerts of customers with a socket here (notifications/timers.py).

A socket joins all its groups or none (``join_all``): one that cannot reach
Redis while connecting is left in no group, here or there, and is turned
away to try again later (orders/sockets.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings

from pickup import redis_clients
from pickup.outage_log import OutageLog, OutageWords

logger = logging.getLogger(__name__)

CHECK_EVERY = 1.0  # seconds between marker checks: the longest a socket stays deaf
REFRESH_EVERY = 3600.0  # well inside channels-redis's group expiry of a day

# What a Redis outage makes the keeper and closing sockets say: a few lines each, however long it lasts.
CHECK_FAILURES = OutageWords(
    began="cannot check group memberships (%(error)s); retrying every 1 s",
    goes_on="still cannot check group memberships (%(error)s): %(total)d failed check(s) over %(seconds).0f s; retrying",
    ended="Redis reachable again after %(total)d failed membership check(s) over %(seconds).0f s",
)
LEAVE_FAILURES = OutageWords(
    began="could not leave %(group)s (%(error)s); memberships left while Redis is away expire by themselves",
    goes_on="%(count)d more group membership(s) could not be left (%(error)s): %(total)d over %(seconds).0f s",
    ended="Redis reachable again after %(total)d group membership(s) could not be left over %(seconds).0f s",
)


class GroupsOutOfReach(Exception):
    """A socket could not join its groups, Redis being out of reach; it is in none of them."""


def _forget(index: dict[str, set[str]], key: str, value: str) -> None:
    index[key].discard(value)
    if not index[key]:
        del index[key]


class Memberships:
    def __init__(self) -> None:
        self._groups: dict[str, set[str]] = defaultdict(set)  # channel name -> groups
        self._sockets: dict[str, set[str]] = defaultdict(set)  # group -> this process's channels in it
        self._marker = f"{settings.REDIS_KEY_PREFIX}web-process:{uuid.uuid4().hex}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self.check_outage = OutageLog(logger, CHECK_FAILURES)
        self.leave_outage = OutageLog(logger, LEAVE_FAILURES)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = loop or asyncio.get_running_loop()
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        self._loop = loop
        self._task = loop.create_task(self._keep_forever())

    def stop(self) -> None:
        if self._task is not None and self._loop is not None and not self._loop.is_closed():
            self._task.cancel()
        self._task = self._loop = None
        self._groups.clear()
        self._sockets.clear()

    def sockets_in(self, group: str) -> set[str] | tuple[()]:
        """This process's sockets in a group, whatever Redis remembers."""
        return self._sockets.get(group, ())

    async def join(self, group: str, channel: str) -> None:
        """Join a group; recorded first, so a re-join running meanwhile includes it, and
        forgotten again if Redis did not take it."""
        already = group in self._groups.get(channel, ())
        self._groups[channel].add(group)
        self._sockets[group].add(channel)
        try:
            await get_channel_layer().group_add(group, channel)
        except BaseException:
            if not already:
                self._forget(group, channel)
            raise

    async def join_all(self, groups: list[str], channel: str) -> None:
        """Join every group or none: GroupsOutOfReach when Redis cannot be reached.

        Groups already joined are left again, quietly (Redis is probably away
        for that too; the membership then expires by itself).
        """
        joined = []
        try:
            for group in groups:
                await self.join(group, channel)
                joined.append(group)
        except BaseException as error:
            for group in joined:
                self._forget(group, channel)
                with contextlib.suppress(Exception):
                    await get_channel_layer().group_discard(group, channel)
            if isinstance(error, redis_clients.OUT_OF_REACH):
                raise GroupsOutOfReach(error.__class__.__name__) from error
            raise

    def _forget(self, group: str, channel: str) -> None:
        _forget(self._groups, channel, group)
        _forget(self._sockets, group, channel)

    async def leave(self, group: str, channel: str) -> None:
        self._forget(group, channel)
        try:
            await get_channel_layer().group_discard(group, channel)
        except Exception as error:
            # A socket closing while Redis is away (or right after a restart,
            # on a stale pooled connection) must still close at once; raising
            # here stalls daphne's close handshake. The membership expires.
            self.leave_outage.failed(error.__class__.__name__, group=group)
        else:
            self.leave_outage.succeeded()

    async def rejoin_all(self) -> int:
        layer = get_channel_layer()
        pairs = [(group, channel) for channel, groups in list(self._groups.items()) for group in groups]
        for group, channel in pairs:
            await layer.group_add(group, channel)
        return len(pairs)

    async def _mark_and_rejoin(self, client: aioredis.Redis) -> int:
        """Set the marker, then join again, until the marker outlives the joins.

        In this order a loss at any step takes the marker with it: a loss
        after the marker wipes groups joined before it, but also the marker,
        so the joins are made again (marking afterwards hid such a loss until
        the hourly refresh).
        """
        while True:
            server = (await client.info("server"))["run_id"]
            await client.set(self._marker, server, ex=int(REFRESH_EVERY * 2))
            joined = await self.rejoin_all()
            if await self._marker_holds(client):
                return joined
            logger.warning("Redis lost this process's groups again while they were joined; joining again")

    async def _marker_holds(self, client: aioredis.Redis) -> bool:
        """The marker is there, set on the server that answers now (one round trip, one connection)."""
        pipe = client.pipeline(transaction=False)
        pipe.get(self._marker)
        pipe.info("server")
        marker, server = await pipe.execute()
        return marker is not None and marker.decode() == server["run_id"]

    async def _keep_forever(self) -> None:
        client = redis_clients.async_client(socket_timeout=5, socket_connect_timeout=5)
        refreshed = time.monotonic()
        try:
            server = (await client.info("server"))["run_id"]
            await client.set(self._marker, server, ex=int(REFRESH_EVERY * 2))
        except Exception:  # Redis down at start: the first check finds no marker and joins all
            pass
        unfinished = False  # a re-join that failed half-way, after its marker was set
        try:
            while True:
                await asyncio.sleep(CHECK_EVERY)
                if asyncio.current_task().cancelling():
                    # redis-py can swallow a cancellation and return as if
                    # answered; without this the keeper would go on (and a
                    # loop closing at the end of a test would wait for ever).
                    raise asyncio.CancelledError
                try:
                    lost = not await self._marker_holds(client)
                    if lost or unfinished or time.monotonic() - refreshed > REFRESH_EVERY:
                        owed, unfinished = lost or unfinished, True
                        joined = await self._mark_and_rejoin(client)
                        unfinished = False
                        refreshed = time.monotonic()
                        if owed:
                            logger.warning("Redis lost this process's groups; %d memberships joined again", joined)
                    # Only a whole round ends an outage: a replica answering the
                    # check but refusing the marker would say an end and a start a second.
                    self.check_outage.succeeded()
                except Exception as error:  # Redis down: try again next round
                    if asyncio.current_task().cancelling():
                        raise asyncio.CancelledError from error
                    self.check_outage.failed(error.__class__.__name__)
        finally:
            await client.aclose()


memberships = Memberships()
