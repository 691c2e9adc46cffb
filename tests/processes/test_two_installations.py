"""Two installations sharing one Redis key prefix would process each other's
orders; the second is refused at start, web server and worker alike."""

from __future__ import annotations

import contextlib

import pytest

from pickup.testing import Stack
from tests.processes.clients import wait_until
from tests.processes.records import kitchen_queue_built

pytestmark = pytest.mark.processes


async def test_a_second_database_on_the_same_redis_prefix_is_refused_and_the_first_goes_on(
    stack, tmp_path, prepared_database
):
    stack.start_web()
    first_worker = stack.start_run_queue("--interval", "0.3")
    await wait_until(lambda: kitchen_queue_built(stack), 60, "the first installation's worker to start")

    other_logs = tmp_path / "other"
    other_logs.mkdir()
    with Stack(log_dir=str(other_logs), env={"REDIS_URL": stack.redis.url}) as other:
        other.prepare(template=prepared_database)
        other.shell("import uuid\nfrom orders.models import Restaurant\nRestaurant.objects.update(installation=uuid.uuid4())")
        worker = other.start_run_queue("--interval", "0.3")
        assert worker.wait(60) != 0
        assert "belongs to another Pickup database" in other.logs(full=True)
        with contextlib.suppress(RuntimeError):  # it may stop before it ever answers
            other.start_web()
        [web] = other.web.values()
        web.wait(60)  # it stops by itself

    assert first_worker.poll() is None
    assert stack.web and all(process.poll() is None for process in stack.web.values())
