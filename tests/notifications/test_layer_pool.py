"""The channel layer's Redis pool waits for a free connection instead of failing,
and lets its idle connections go after a crowd (notifications/layer_pool.py),
on the test suite's private Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from notifications import layer_pool
from notifications.layer_pool import KEEP_IDLE, LayerConnectionPool


def _named(clients: list[dict], name: str) -> int:
    return sum(1 for client in clients if client.get("name") == name)


# Not the process's own pickup-layer-<pid>: other tests' layers may be connected under it.
NAME = f"pool-test-{uuid.uuid4().hex}"


@pytest.fixture
async def pool():
    pool = LayerConnectionPool.from_url(settings.REDIS_URL, max_connections=20, timeout=30, client_name=NAME)
    yield pool
    await pool.aclose()


async def test_more_commands_at_once_than_connections_all_wait_their_turn_and_succeed(pool):
    client = aioredis.Redis(connection_pool=pool)
    # 300 blocking commands, each holding its connection a moment, over 20 connections.
    results = await asyncio.gather(*(client.blpop([f"pool-test:nothing:{n}"], timeout=0.05) for n in range(300)),
                                   return_exceptions=True)
    assert [result for result in results if result is not None] == []


async def test_idle_connections_beyond_the_few_kept_are_closed_least_recently_used_first(pool):
    client = aioredis.Redis(connection_pool=pool)
    watcher = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        await asyncio.gather(*(client.blpop([f"pool-test:nothing:{n}"], timeout=0.05) for n in range(100)))
        name = NAME
        assert _named(await watcher.client_list(), name) == 20  # the crowd opened the whole pool
        assert pool.idle_count() == 20
        assert await pool.trim() == 20 - KEEP_IDLE
        assert pool.idle_count() == KEEP_IDLE
        # Redis sees the surplus go (a closed connection leaves its list at once, but ask until it has).
        for _ in range(100):
            if _named(await watcher.client_list(), name) == KEEP_IDLE:
                break
            await asyncio.sleep(0.05)
        assert _named(await watcher.client_list(), name) == KEEP_IDLE
        # The pool goes on serving, and the kept connections are reused rather than new ones opened.
        assert await client.ping()
        assert _named(await watcher.client_list(), name) == KEEP_IDLE
    finally:
        await watcher.aclose()


async def test_a_pool_with_surplus_idle_connections_trims_itself(pool, monkeypatch):
    monkeypatch.setattr(layer_pool, "TRIM_AFTER", 0.0)
    client = aioredis.Redis(connection_pool=pool)
    await asyncio.gather(*(client.blpop([f"pool-test:nothing:{n}"], timeout=0.05) for n in range(100)))
    for _ in range(200):
        if pool.idle_count() <= KEEP_IDLE:
            break
        await asyncio.sleep(0.01)
    assert pool.idle_count() == KEEP_IDLE
