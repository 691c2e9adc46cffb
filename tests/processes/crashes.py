"""Freezing or killing a process at a chosen moment, not at a lucky one."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
from collections.abc import Iterator

from pickup.testing import Stack

# A test that dies with Redis paused leaves it paused no longer than this.
PAUSE_LIMIT_MS = 10_000


async def freeze_when(process: subprocess.Popen, condition, *, timeout: float, what: str):
    """Stop ``process`` (SIGSTOP) at a moment when ``condition()`` holds; returns what it returned.

    It samples: a state that lasts only between two of the process's writes
    may never be seen on a busy machine. Use ``freeze_between_writes`` then.

    The condition is confirmed while the process is frozen, so the state seen
    is the state it stays in until SIGCONT, or dies in. Conditions that read
    the database must give up at once (``Stack.query(..., timeout=0.01)``): a
    process frozen in the middle of a commit keeps SQLite readers out.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the process exited with {process.returncode} before {what}")
        if _holds(condition):  # looked at while it runs: cheap, and it is not slowed down
            process.send_signal(signal.SIGSTOP)
            try:
                seen = _holds(condition)
            except BaseException:
                process.send_signal(signal.SIGCONT)
                raise
            if seen:
                return seen
            process.send_signal(signal.SIGCONT)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting to catch the process {what}")
        await asyncio.sleep(0.002)


def _holds(condition):
    try:
        return condition()
    except sqlite3.OperationalError:  # "database is locked": not a moment to look
        return None


async def kill_when(process: subprocess.Popen, condition, *, timeout: float, what: str):
    """kill -9 ``process`` at a moment when ``condition()`` holds; returns what it returned.

    A worker caught holding claims is killed holding exactly those claims.
    """
    seen = await freeze_when(process, condition, timeout=timeout, what=what)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    return seen


@contextlib.contextmanager
def holding_writes(stack: Stack) -> Iterator[sqlite3.Connection]:
    """Hold the stack's SQLite write lock; yields the connection that holds it, committed on leaving.

    Readers go on (WAL), but a process that comes to write waits at that
    statement (or its ``BEGIN IMMEDIATE``) for as long as the lock is held, or
    its 20 s busy timeout: whatever it claimed in Redis before, it still holds.
    """
    database = sqlite3.connect(stack.db_path, timeout=20, isolation_level=None)
    try:
        database.execute("BEGIN IMMEDIATE")
        try:
            yield database
        except BaseException:
            database.execute("ROLLBACK")
            raise
        database.execute("COMMIT")
    finally:
        database.close()


async def freeze_between_writes(stack: Stack, process: subprocess.Popen, condition, *, timeout: float, what: str):
    """Stop ``process`` (SIGSTOP) while ``condition()`` holds, stepping it from one write to the next.

    Two gates hold it: SQLite's write lock and Redis's writes (``CLIENT PAUSE
    WRITE``), never both open at once. The process runs on to its next write
    of the closed kind and waits there, so a state it reaches stays put until
    the test looks; then the gates swap. A sender that claims alerts in the
    database, pushes them through Redis and records the push in the database
    is seen holding its claim whatever the machine's speed: the claim goes
    through while Redis is closed, the push waits for the swap, and the
    record for the next one. Only a state between two writes to the same
    store with nothing else between them can still be stepped over.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    database = sqlite3.connect(stack.db_path, timeout=20, isolation_level=None)
    redis = stack.redis.client()
    database.execute("BEGIN IMMEDIATE")  # the database closed, Redis open
    redis_closed = False
    try:
        while True:
            await asyncio.sleep(0.2)  # to run on to its next write (or not: only the look below counts)
            if process.poll() is not None:
                raise AssertionError(f"the process exited with {process.returncode} before {what}")
            process.send_signal(signal.SIGSTOP)
            seen = _holds(condition)
            if seen:
                return seen
            if asyncio.get_running_loop().time() > deadline:
                process.send_signal(signal.SIGCONT)
                raise AssertionError(f"timed out after {timeout} s waiting to catch the process {what}")
            if redis_closed:
                # It may be stopped inside a transaction: let it finish before taking the lock.
                process.send_signal(signal.SIGCONT)
                database.execute("BEGIN IMMEDIATE")
                redis.client_unpause()
            else:
                redis.client_pause(PAUSE_LIMIT_MS, all=False)
                database.execute("COMMIT")
                process.send_signal(signal.SIGCONT)
            redis_closed = not redis_closed
    finally:
        if database.in_transaction:
            database.execute("ROLLBACK")
        database.close()
        if redis_closed:
            redis.client_unpause()
        redis.close()


async def kill_between_writes(stack: Stack, process: subprocess.Popen, condition, *, timeout: float, what: str):
    """``freeze_between_writes``, then kill -9: it dies holding what it was seen holding."""
    seen = await freeze_between_writes(stack, process, condition, timeout=timeout, what=what)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    return seen
