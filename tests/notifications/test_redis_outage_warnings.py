"""A web process that meets Redis out of reach over and over says so in a few warnings, and once
more when Redis answers again: its inbox reader, its group keeper and its closing sockets,
against a real redis-server stopped and started again, or a port nobody listens on.

The clock of each ``OutageLog`` is injected and moved by hand, so the count of
lines does not depend on how fast the machine fails; the retry pauses are
shortened so that dozens of failures take a moment (how often the reader and
the keeper retry is not what is tested here).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest
from channels.layers import get_channel_layer

from notifications import inbox as inbox_module
from notifications import memberships as memberships_module
from notifications.layer import PickupChannelLayer
from notifications.memberships import Memberships
from pickup.outage_log import OutageLog
from pickup.redis_clients import RedisPlace
from pickup.redis_server import PrivateRedis
from tests.conftest import redis_out_of_reach

FAILURES = 30  # at least this many before the clock moves past a count, and again after


@pytest.fixture
def private_redis_server():
    """A redis-server of this test's own, to stop and start again."""
    server = PrivateRedis().start()
    yield server
    server.shutdown()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def failing(outage: OutageLog, at_least: int) -> None:
    """Wait until the outage has failed that often (a guard of a minute, not a timing)."""
    deadline = time.monotonic() + 60
    while outage.failures < at_least:
        assert time.monotonic() < deadline, f"only {outage.failures} failures"
        await asyncio.sleep(0.01)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def fail_through_a_count(outage: OutageLog, clock: Clock) -> None:
    """Many failures, the clock moved past one count, many more."""
    await failing(outage, FAILURES)
    clock.now += outage.every
    await failing(outage, 2 * FAILURES)


def lines_of(caplog, outage: OutageLog) -> list[tuple[str, dict]]:
    """The outage's lines as (which words, fields); every line of its logger is checked to be a warning
    without a traceback."""
    records = [record for record in caplog.records if record.name == outage.logger.name]
    assert [(record.levelno, record.exc_info) for record in records] == [(logging.WARNING, None)] * len(records)
    names = {words: name for name, words in outage.words._asdict().items()}
    return [(names[record.msg], record.args) for record in records if record.msg in names]


async def test_an_inbox_reader_failing_through_an_outage_says_three_lines_then_reads_again(
    private_redis_server, monkeypatch, caplog
):
    monkeypatch.setattr(inbox_module, "RETRY_AFTER", 0.01)
    layer = PickupChannelLayer(hosts=[private_redis_server.url], prefix="pickup-test:outage")
    tab = await layer.new_channel()
    inbox = layer._inbox(tab)
    clock = inbox.outage.clock = Clock()
    receiving = asyncio.create_task(layer.receive(tab))  # starts the process's reader

    private_redis_server.stop()
    await fail_through_a_count(inbox.outage, clock)
    private_redis_server.start()  # same port, empty memory
    sender = PickupChannelLayer(hosts=[private_redis_server.url], prefix="pickup-test:outage")  # another daphne
    await sender.group_add("customer.ada", tab)
    await sender.group_send_many([("customer.ada", {"type": "pickup.alert", "n": 1})])

    assert (await asyncio.wait_for(receiving, 30))["n"] == 1  # read again: the socket hears its alert
    lines = lines_of(caplog, inbox.outage)
    assert [which for which, _ in lines] == ["began", "goes_on", "ended"]
    assert lines[-1][1]["total"] >= 2 * FAILURES  # every failed read counted, none said alone
    await sender.flush()


async def test_the_group_keeper_failing_its_checks_through_an_outage_says_three_lines(
    private_redis_server, settings, monkeypatch, caplog
):
    monkeypatch.setattr(memberships_module, "CHECK_EVERY", 0.01)
    settings.REDIS = RedisPlace.from_settings(private_redis_server.url, [], "")  # the keeper's own client
    keeper = Memberships()
    clock = keeper.check_outage.clock = Clock()
    keeper.start()
    try:
        private_redis_server.stop()
        await fail_through_a_count(keeper.check_outage, clock)
        private_redis_server.start()
        await until(lambda: keeper.check_outage.failures == 0, "the keeper never reached Redis again")
    finally:
        keeper.stop()

    lines = lines_of(caplog, keeper.check_outage)
    assert [which for which, _ in lines] == ["began", "goes_on", "ended"]
    assert lines[-1][1]["total"] >= 2 * FAILURES


async def test_sockets_closing_while_redis_is_away_are_counted_not_said_one_by_one(settings, caplog):
    keeper = Memberships()
    clock = keeper.leave_outage.clock = Clock()
    layer = get_channel_layer()
    tabs = [await layer.new_channel() for _ in range(2 * FAILURES)]
    for n, tab in enumerate(tabs):
        await keeper.join(f"customer.{n}", tab)

    with redis_out_of_reach(settings):
        for n, tab in enumerate(tabs):  # the pages closing while Redis is away
            if n == FAILURES:
                clock.now += keeper.leave_outage.every
            await keeper.leave(f"customer.{n}", tab)  # never raises: daphne would stall the close
    last = await get_channel_layer().new_channel()
    await keeper.join("customer.last", last)
    await keeper.leave("customer.last", last)  # Redis answers again

    lines = lines_of(caplog, keeper.leave_outage)
    assert [which for which, _ in lines] == ["began", "goes_on", "ended"]
    assert lines[0][1]["group"] == "customer.0"
    assert lines[-1][1]["total"] == 2 * FAILURES
    assert await keeper.rejoin_all() == 0  # and none is kept in its group here
