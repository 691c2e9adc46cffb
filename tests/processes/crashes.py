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
# A main thread asleep this long without waking is waiting, not between two tries of SQLite's lock.
QUIET = 0.15


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

    The database is closed again only once the process has stopped moving
    (``_until_quiet``), not after a set time: on a busy machine a process
    waiting for the lock may not get to try it within any given time, and
    it would never get through.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    # The lock is waited for on a thread (up to the 20 s busy timeout): the
    # customers' sockets go on answering pings and reading pushes meanwhile.
    database = sqlite3.connect(stack.db_path, timeout=20, isolation_level=None, check_same_thread=False)
    redis = stack.redis.client()
    await asyncio.to_thread(database.execute, "BEGIN IMMEDIATE")  # the database closed, Redis open
    redis_closed = False
    try:
        while True:
            if redis_closed:
                # The database is open: a write it waits for goes through at
                # its next try, however long the machine keeps it from trying.
                await _until_quiet(process, deadline)
            else:
                await asyncio.sleep(0.2)  # to run on to its next write (or not: only the look below counts)
            if process.poll() is not None:
                raise AssertionError(f"the process exited with {process.returncode} before {what}")
            await _stop(process)
            seen = _holds(condition)
            if seen:
                return seen
            if asyncio.get_running_loop().time() > deadline:
                process.send_signal(signal.SIGCONT)
                raise AssertionError(f"timed out after {timeout} s waiting to catch the process {what}")
            if redis_closed:
                # It may be stopped inside a transaction: let it finish before taking the lock.
                process.send_signal(signal.SIGCONT)
                await asyncio.to_thread(database.execute, "BEGIN IMMEDIATE")
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


def _main_thread(process: subprocess.Popen) -> tuple[str, int]:
    """The process's main thread: its state (R running, S sleeping, T stopped…) and how often it has left the CPU."""
    with open(f"/proc/{process.pid}/task/{process.pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    switches = int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])
    return fields["State"].split()[0], switches


async def _until_quiet(process: subprocess.Popen, deadline: float) -> None:
    """Wait until the main thread has been asleep, without waking once, for longer than SQLite's
    longest pause between two tries of a lock (100 ms): it waits at a closed gate, or idles.

    A thread that is runnable but kept off the CPU (a busy machine) is not quiet: it is waited for.
    """
    loop = asyncio.get_running_loop()
    last, since = None, loop.time()
    while loop.time() < deadline and process.poll() is None:
        try:
            state, switches = _main_thread(process)
        except (FileNotFoundError, ProcessLookupError):
            return  # it exited: the caller says so
        if state == "R" or switches != last:
            last, since = switches, loop.time()
        elif loop.time() - since >= QUIET:
            return
        await asyncio.sleep(0.01)


async def _stop(process: subprocess.Popen) -> None:
    """SIGSTOP, and wait until it has taken effect: a signal is delivered some time after it is sent."""
    process.send_signal(signal.SIGSTOP)
    while process.poll() is None:
        try:
            if _main_thread(process)[0] in ("T", "t", "Z", "X"):
                return
        except (FileNotFoundError, ProcessLookupError):
            return
        await asyncio.sleep(0.001)


async def kill_between_writes(stack: Stack, process: subprocess.Popen, condition, *, timeout: float, what: str):
    """``freeze_between_writes``, then kill -9: it dies holding what it was seen holding."""
    seen = await freeze_between_writes(stack, process, condition, timeout=timeout, what=what)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    return seen
