"""Where Pickup's Redis clients connect: REDIS_URL as before, or the primary Sentinel names."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from pickup.redis_clients import RedisPlace


def test_without_sentinels_every_client_uses_redis_url_as_before():
    place = RedisPlace.from_settings("redis://:secret@10.0.0.5:6380/3", [], "")
    assert place.channel_layer_host(socket_timeout=30) == {"address": "redis://:secret@10.0.0.5:6380/3", "socket_timeout": 30}
    cache = place.cache(key_prefix="p:cache", socket_timeout=5, connect_timeout=5)
    assert cache["LOCATION"] == "redis://:secret@10.0.0.5:6380/3"
    assert "CONNECTION_FACTORY" not in cache["OPTIONS"]
    assert str(place) == "redis://10.0.0.5:6380/3"  # no password in error messages


def test_with_sentinels_the_clients_ask_them_for_the_primary_with_redis_urls_database_and_password():
    place = RedisPlace.from_settings("redis://:secret@ignored:6379/3", ["10.0.0.1:26379", "[::1]:26380"], "pickup")
    host = place.channel_layer_host(socket_timeout=30, max_connections=1000)
    assert host["sentinels"] == [("10.0.0.1", 26379), ("::1", 26380)]
    assert (host["master_name"], host["db"], host["password"]) == ("pickup", 3, "secret")
    assert (host["socket_timeout"], host["max_connections"]) == (30, 1000)  # the redis-py 8 traps stay avoided
    assert "address" not in host
    cache = place.cache(key_prefix="p:cache", socket_timeout=5, connect_timeout=5)
    assert cache["LOCATION"] == "redis://pickup/3"
    assert cache["OPTIONS"]["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    assert cache["OPTIONS"]["SENTINELS"] == [("10.0.0.1", 26379), ("::1", 26380)]
    assert cache["OPTIONS"]["PASSWORD"] == "secret"
    assert "secret" not in str(place)


@pytest.mark.parametrize("sentinels, master", [(["10.0.0.1"], "pickup"), (["10.0.0.1:port"], "pickup"), (["10.0.0.1:26379"], "")])
def test_a_malformed_sentinel_setting_is_refused_at_start(sentinels, master):
    with pytest.raises(ImproperlyConfigured):
        RedisPlace.from_settings("redis://127.0.0.1:6379/0", sentinels, master)
