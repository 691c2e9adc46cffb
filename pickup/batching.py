"""Group commit: requests from many sockets of a process, written together.

Every socket's request waits for one write of many instead of its own round
trip through the single database thread. The first request of a quiet moment
is written at once (or after ``window`` seconds); requests arriving while a
write is under way form the next batch, so batches grow exactly as fast as
the database falls behind and a lone request pays no delay.

``write_many`` gets the batch's items and returns one result per item: a
value, or an exception instance that is raised to that item's caller alone.
If it raises, a batch of several is split in halves and each written again,
down to single items, so a request that breaks the write fails only its own
sender and the others pay a few more writes rather than one each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)


class Batcher:
    def __init__(
        self, write_many: Callable[[list[Any]], Awaitable[list[Any]]], *, window: float = 0.0, max_batch: int = 200
    ) -> None:
        self.write_many = write_many
        self.window = window
        self.max_batch = max_batch
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def submit(self, item: Any) -> Any:
        """Write ``item`` with whatever else is waiting; its result, or its exception raised."""
        loop = asyncio.get_running_loop()
        if self._writer is not None and self._writer.get_loop() is not loop:
            self._pending, self._writer = [], None  # left over from a closed loop (tests)
        done = loop.create_future()
        self._pending.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_while_pending())
        return await done

    async def _write_while_pending(self) -> None:
        if self.window:
            await asyncio.sleep(self.window)
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            await self._write(batch)

    async def _write(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        try:
            results = await self.write_many([item for item, _ in batch])
        except Exception as error:
            if len(batch) > 1:
                logger.warning("a batch of %d failed (%r); writing it again in halves", len(batch), error)
                half = len(batch) // 2
                await self._write(batch[:half])
                await self._write(batch[half:])
                return
            results = [error]
        for (_, done), result in zip(batch, results, strict=True):
            if done.done():  # its sender went away
                continue
            if isinstance(result, BaseException):
                done.set_exception(result)
            else:
                done.set_result(result)
