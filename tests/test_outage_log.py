"""An outage met a thousand times is said in a few warnings: the first at once, counts ever more
seldom, one line when things work again (pickup/outage_log.py), on an injected clock."""

from __future__ import annotations

import logging

import pytest
import redis

from pickup.outage_log import OutageLog, OutageWords

WORDS = OutageWords(
    began="reading failed (%(error)s)",
    goes_on="%(count)d more failed reads (%(error)s), %(total)d over %(seconds).0f s",
    ended="reachable again after %(total)d failed reads over %(seconds).0f s",
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outage(clock) -> OutageLog:
    return OutageLog(logging.getLogger("tests.outage"), WORDS, every=10.0, clock=clock)


def said(caplog) -> list[tuple[str, dict]]:
    """Each line as (which words, its fields), all checked to be warnings without a traceback."""
    records = [record for record in caplog.records if record.name == "tests.outage"]
    assert all(record.levelno == logging.WARNING and record.exc_info is None for record in records)
    names = {words: name for name, words in WORDS._asdict().items()}
    return [(names[record.msg], record.args) for record in records]


def test_a_thousand_failures_over_25_seconds_are_said_in_three_lines_every_one_counted(outage, clock, caplog):
    error = redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    for second in range(25):  # a thousand pages retrying, forty a second, for 25 s
        clock.now = float(second)
        for _page in range(40):
            outage.failed(error)
    outage.succeeded()
    clock.now = 40.0
    outage.succeeded()  # nothing more to say

    lines = said(caplog)
    assert [(which, fields["count"]) for which, fields in lines] == [
        ("began", 1), ("goes_on", 400), ("ended", 599)  # the next count was due 20 s after the first
    ]
    assert lines[-1][1]["total"] == 25 * 40 and lines[-1][1]["seconds"] == 24.0
    assert lines[0][1]["error"] is error  # said as the caller gave it, never with its traceback


def test_a_long_outage_says_counts_ever_more_seldom_then_every_five_minutes(outage, clock, caplog):
    for tenth in range(3600 * 10):  # an hour, failing ten times a second
        clock.now = tenth / 10
        outage.failed("ConnectionError")
    outage.succeeded()

    lines = said(caplog)
    counted_at = [fields["seconds"] for which, fields in lines if which == "goes_on"]
    # 10, 20, 40, 80, 160 s apart, then every 300 s: 16 counts where one every 10 s made 359.
    assert counted_at == [10.0, 30.0, 70.0, 150.0, 310.0] + [310.0 + 300 * n for n in range(1, 11)]
    assert [which for which, _ in lines] == ["began"] + ["goes_on"] * 15 + ["ended"]
    assert sum(fields["count"] for _, fields in lines) == lines[-1][1]["total"] == 36000


def test_the_next_outage_starts_again_with_the_short_gap(outage, clock, caplog):
    for second in range(100):
        clock.now = float(second)
        outage.failed("ConnectionError")
    outage.succeeded()  # counts said at 10, 30 and 70 s
    for second in range(200, 215):
        clock.now = float(second)
        outage.failed("ConnectionError")

    lines = said(caplog)
    assert [(which, fields["seconds"]) for which, fields in lines[-2:]] == [("began", 0.0), ("goes_on", 10.0)]


def test_the_end_is_said_at_once_even_right_after_a_count(outage, clock, caplog):
    outage.failed("ConnectionError")
    clock.now = 10.0
    outage.failed("ConnectionError")  # a count is due: said, nothing left unsaid
    outage.succeeded()

    assert [(which, fields["total"]) for which, fields in said(caplog)] == [("began", 1), ("goes_on", 2), ("ended", 2)]


def test_each_outage_is_told_from_its_own_beginning(outage, clock, caplog):
    outage.failed("ConnectionError")
    clock.now = 3.0
    outage.succeeded()
    clock.now = 3.5
    outage.succeeded()  # working on: quiet
    clock.now = 4.0
    outage.failed("TimeoutError", group="customer.ada")  # a new outage, said at once
    clock.now = 6.0
    outage.succeeded()

    lines = said(caplog)
    assert [which for which, _ in lines] == ["began", "ended", "began", "ended"]
    assert lines[2][1]["error"] == "TimeoutError" and lines[2][1]["group"] == "customer.ada"
    assert [(fields["total"], fields["seconds"]) for which, fields in lines if which == "ended"] == [(1, 3.0), (1, 2.0)]
    assert outage.failures == 0


def test_things_that_keep_working_say_nothing(outage, caplog):
    for _ in range(1000):
        outage.succeeded()

    assert said(caplog) == []
