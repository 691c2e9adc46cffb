"""The site's VAPID key pair (RFC 8292): the one place that reads it."""

from __future__ import annotations

import functools

from django.conf import settings
from py_vapid import Vapid


@functools.cache
def signer() -> Vapid:
    return Vapid.from_string(settings.VAPID_PRIVATE_KEY)


def subject() -> str:
    return settings.VAPID_SUBJECT


def configured() -> bool:
    return bool(getattr(settings, "VAPID_PRIVATE_KEY", "") and getattr(settings, "VAPID_PUBLIC_KEY", ""))
