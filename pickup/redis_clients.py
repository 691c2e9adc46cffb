"""How every Redis client of Pickup reaches Redis: ``REDIS_URL``, or the primary Sentinel names.

The one place that knows. settings.py builds the cache's and the channel
layer's configuration from here (the kitchen queue, the limits and /readyz
use the cache's connection), and code that opens a client of its own
(notifications/memberships.py) asks ``async_client``. With ``REDIS_SENTINELS``
set, each client asks the sentinels for the primary of ``REDIS_SENTINEL_MASTER``
when it connects, and again after a failover broke its connection; the
database number and password still come from ``REDIS_URL``, its host and
port are not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Redis out of reach: down, restarting, or a failover's seconds (Sentinel's
# MasterNotFoundError is a ConnectionError too). What callers turn into a
# quiet refusal or a warning; any other Redis error keeps its traceback.
OUT_OF_REACH = (RedisConnectionError, RedisTimeoutError)

# How long a client waits to reach a sentinel: one that is down must not
# hold up asking the next one (a refused connection fails at once anyway).
SENTINEL_CONNECT_TIMEOUT = 1.0
# How long it waits for the answer once connected. Longer: every new pooled
# connection asks, and a web process busy with a crowd of closing sockets
# read its answers after a second, so their groups' leaves failed with
# MasterNotFoundError (600-1,200 a process in bench/topology.py).
SENTINEL_ANSWER_TIMEOUT = 5.0


@dataclass(frozen=True)
class RedisPlace:
    url: str  # REDIS_URL
    sentinels: tuple[tuple[str, int], ...] = ()  # empty: REDIS_URL's server itself
    master: str = ""

    @classmethod
    def from_settings(cls, url: str, sentinels: list[str], master: str) -> RedisPlace:
        """Check the operator's values: ``host:port`` entries and a master name to go with them."""
        parsed = []
        for entry in sentinels:
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit():
                raise ImproperlyConfigured(f"REDIS_SENTINELS entries must be host:port, got {entry!r}")
            parsed.append((host.strip("[]"), int(port)))
        if parsed and not master:
            raise ImproperlyConfigured("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER, the name the sentinels monitor")
        return cls(url, tuple(parsed), master)

    @property
    def database(self) -> int:
        path = urlparse(self.url).path.strip("/")
        return int(path) if path.isdigit() else 0

    @property
    def password(self) -> str | None:
        return urlparse(self.url).password

    def __str__(self) -> str:
        """Where Redis is, for an error message (no password)."""
        if not self.sentinels:
            parsed = urlparse(self.url)
            return parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl()
        listed = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"the primary of {self.master!r} (Sentinel {listed}), database {self.database}"

    # ------------------------------------------------------------ for settings.py

    def channel_layer_host(self, **options) -> dict:
        """One entry of channels-redis's ``hosts``, with ``options`` for the connection pool."""
        if not self.sentinels:
            return {"address": self.url, **options}
        return {
            "sentinels": list(self.sentinels), "master_name": self.master, "sentinel_kwargs": _sentinel_options(),
            "db": self.database, "password": self.password, **options,
        }

    def cache(self, *, key_prefix: str, socket_timeout: float, connect_timeout: float) -> dict:
        """django-redis's cache entry: only ever the primary, so a read never sees a replica's older value.

        A cache, not a store: while Redis cannot be reached (a failover's
        seconds, an outage) a read is a miss and a write is dropped (not
        logged: settings.py), so the picker works its offers out afresh instead of
        failing. The kitchen queue and the limits use the connection, not
        this API, and still see the error.
        """
        options = {"SOCKET_TIMEOUT": socket_timeout, "SOCKET_CONNECT_TIMEOUT": connect_timeout, "IGNORE_EXCEPTIONS": True}
        location = self.url
        if self.sentinels:
            options.update(
                CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
                SENTINELS=list(self.sentinels), SENTINEL_KWARGS=_sentinel_options(),
            )
            if self.password:
                options["PASSWORD"] = self.password
            location = f"redis://{self.master}/{self.database}"  # the host part names the master
        return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location, "KEY_PREFIX": key_prefix,
                "OPTIONS": options}


def _sentinel_options() -> dict:
    return {"socket_timeout": SENTINEL_ANSWER_TIMEOUT, "socket_connect_timeout": SENTINEL_CONNECT_TIMEOUT}


def configured() -> RedisPlace:
    """Where this installation's Redis is (settings.REDIS)."""
    from django.conf import settings

    return settings.REDIS


def async_client(**options):
    """A ``redis.asyncio`` client of its own on the configured Redis, for the running event loop."""
    import redis.asyncio as aioredis

    place = configured()
    if not place.sentinels:
        return aioredis.Redis.from_url(place.url, **options)
    sentinel = aioredis.Sentinel(list(place.sentinels), sentinel_kwargs=_sentinel_options())
    return sentinel.master_for(place.master, db=place.database, password=place.password, **options)
