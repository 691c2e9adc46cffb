"""An outage said in a few lines of the log, however often it is met.

While Redis is out of reach a web process meets it again and again: its
inbox reader and its group keeper retry every second, every socket closing
or connecting tries once. A warning per attempt is thousands of lines an
hour that say nothing new and hide the ones that matter. An ``OutageLog``
says the first failure at once, then a line with the count after ``every``
seconds, the gap doubling up to ``longest`` (10, 20, 40 ... 300 s: an hour's
outage is some twenty lines per source, still a sign of life every five
minutes), and one line when things work again ("Redis reachable again after
42 failed reads over 41 s"). All at WARNING, so the start and
the end are found by the same grep; none with a traceback.

Each line is a %-format with named fields: ``error`` (the latest failure,
as the caller gave it) and any ``details`` it passed, ``count`` (failures
since the previous line), ``total`` and ``seconds`` (since the first).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

SUMMARY_EVERY = 10.0  # seconds: the first count of an outage comes this long after its first line
SUMMARY_LONGEST = 300.0  # seconds: the gap between counts doubles up to this


class OutageWords(NamedTuple):
    began: str  # the first failure, at once
    goes_on: str  # the count so far, at most every ``every`` seconds
    ended: str  # the first success after failures


class OutageLog:
    """One condition's failures, told in few lines; ``failures`` counts those of the outage under way."""

    def __init__(
        self,
        logger: logging.Logger,
        words: OutageWords,
        *,
        every: float = SUMMARY_EVERY,
        longest: float = SUMMARY_LONGEST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.words = words
        self.every = every
        self.longest = longest
        self._gap = every  # until the next count
        self.clock = clock
        self.failures = 0  # since the outage began; 0 while things work
        self._unsaid = 0  # since the last line
        self._began_at = self._said_at = 0.0
        self._latest: dict[str, object] = {}

    def failed(self, error: object, **details: object) -> None:
        """One more failure: said at once if it begins an outage, else counted, and said if a line is due."""
        now = self.clock()
        self._latest = {"error": error, **details}
        self.failures += 1
        self._unsaid += 1
        if self.failures == 1:
            self._began_at = now
            self._gap = self.every
            self._say(self.words.began, now)
        elif now - self._said_at >= self._gap:
            self._say(self.words.goes_on, now)
            self._gap = min(self._gap * 2, self.longest)

    def succeeded(self) -> None:
        """Things work: one line if that ends an outage, nothing otherwise (cheap on every success)."""
        if self.failures:
            self._say(self.words.ended, self.clock())
            self.failures = 0
            self._latest = {}  # nor hold on to the last error (and its frames) while things work

    def _say(self, words: str, now: float) -> None:
        fields = {**self._latest, "count": self._unsaid, "total": self.failures, "seconds": now - self._began_at}
        self.logger.warning(words, fields)
        self._unsaid = 0
        self._said_at = now
