"""Fixtures for tests that run the real system as processes."""

import pytest

from pickup.redis_sentinel import SentinelRedis
from pickup.testing import Stack


@pytest.fixture
def stack_env():
    """Environment variables (operator settings) for the stack under test; a test module may override it."""
    return {}


@pytest.fixture
def stack_settings():
    """Internal timings for the stack's processes (production's unless a test module overrides this)."""
    return {}


@pytest.fixture
def stack(tmp_path, prepared_database, stack_env, stack_settings):
    with Stack(log_dir=str(tmp_path), env=stack_env, settings=stack_settings) as running:
        running.prepare(template=prepared_database)
        yield running


@pytest.fixture
def sentinel_redis():
    """A private Redis primary, replica and three sentinels (pickup/redis_sentinel.py)."""
    with SentinelRedis() as running:
        yield running
