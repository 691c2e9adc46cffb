"""Settings for the test suite and for benchmarks: production's, with the
internal timings a test may change.

Those timings are plain settings (pickup/settings.py), not environment knobs.
An in-process test changes them with pytest-django's ``settings`` fixture; a
process started by ``pickup.testing.Stack`` receives the test's overrides as
JSON in ``PICKUP_TEST_OVERRIDES``, which only this module reads.
"""

import json
import os

from pickup.settings import *  # noqa: F403
from pickup.settings import DATABASES
from pickup.testing import INTERNAL_TIMINGS

_overrides = json.loads(os.environ.get("PICKUP_TEST_OVERRIDES", "{}"))
_unknown = set(_overrides) - INTERNAL_TIMINGS
if _unknown:
    raise ValueError(f"PICKUP_TEST_OVERRIDES names settings tests may not override: {sorted(_unknown)}")
if _overrides.get("PICKUP_WEB_TIMERS") is False:
    # run_queue alone: nobody to leave a head start to.
    _overrides = {"PICKUP_RUN_QUEUE_GRACE_MS": 0, "PICKUP_KITCHEN_DELAY_MS": 0, **_overrides}
globals().update(_overrides)

# Tests that race real threads need an on-disk SQLite test database (the
# in-memory one fails concurrent writers at once instead of making them
# wait); on a shared PostgreSQL server, a database of this run's own.
if os.environ.get("PICKUP_TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["PICKUP_TEST_DATABASE_NAME"]}

# A VAPID key pair for tests only (as `manage.py vapid_keys` prints one): the
# push-service stand-in (tests/push_service.py) checks every signature with it.
VAPID_PRIVATE_KEY = "pPXnJEHJJrChrGxHE9Be9-tLAPSv7mvag3Z1njSo8zs"
VAPID_PUBLIC_KEY = "BMbUvXTWQKwqXTZRtkLIpPhJ9D2OYlG3ayu9Lr6dwcqVOeDtvkjSzbRPrkmkrQzi-clYqWE7Vzjlcnf_N_F1iQU"
VAPID_SUBJECT = "mailto:kitchen@pickup.test"
# The push-service stand-in answers on loopback over plain HTTP.
PICKUP_PUSH_ALLOW_LOOPBACK = True
