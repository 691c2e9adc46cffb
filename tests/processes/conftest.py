"""Fixtures for tests that run the real system as processes."""

import pytest

from pickup.testing import Stack

# The processes run with production's timing: the in-process tests' zero
# head start for web timers (tests/environment.py) must not leak into them.
PRODUCTION_TIMING = {"PICKUP_RUN_QUEUE_GRACE_MS": "", "PICKUP_KITCHEN_DELAY_MS": ""}


@pytest.fixture
def stack_env():
    """Settings for the stack under test; a test module may override it."""
    return {}


@pytest.fixture
def stack(tmp_path, prepared_database, stack_env):
    with Stack(log_dir=str(tmp_path), env={**PRODUCTION_TIMING, **stack_env}) as running:
        running.prepare(template=prepared_database)
        yield running
