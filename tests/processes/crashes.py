"""Freezing or killing a process at a chosen moment, not at a lucky one."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess


async def freeze_when(process: subprocess.Popen, condition, *, timeout: float, what: str):
    """Stop ``process`` (SIGSTOP) at a moment when ``condition()`` holds; returns what it returned.

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
