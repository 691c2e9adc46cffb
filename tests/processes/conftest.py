"""Fixtures for tests that run the real system as processes."""

import pytest

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
