"""Fixtures for Web Push: a push service on loopback and the restaurant's VAPID key."""

from __future__ import annotations

import pytest
from py_vapid import Vapid

from tests.push_service import PushService


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
