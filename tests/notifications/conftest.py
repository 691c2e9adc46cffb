"""Fixtures for notifications: the group keeper, a push service on loopback, a VAPID key."""

from __future__ import annotations

import pytest
from py_vapid import Vapid

from notifications.memberships import memberships
from tests.push_service import PushService


@pytest.fixture
async def group_keeper():
    """The group keeper running, as the ASGI entry point starts it in a web process
    (tests/conftest.py stops it after each test)."""
    memberships.start()
    return memberships


@pytest.fixture
def push_service():
    """A push service in a thread of the test's process, checking everything (see tests/push_service.py)."""
    with PushService() as service:
        yield service


@pytest.fixture
def vapid() -> Vapid:
    key = Vapid()
    key.generate_keys()
    return key
