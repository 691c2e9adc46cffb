"""What the commands that start Pickup's processes share: children that stop with them, and stopping.

`make run` (scripts/run_all.py) and `make run-cluster` (scripts/run_cluster.py,
pickup/cluster.py) start daphne, run_queue, redis-server, sentinels and nginx.
A parent that dies without stopping them (SIGKILL: the OOM killer, ``kill -9``)
would leave them holding their ports, and the next start would fail or talk to
a stale server. So, on Linux, each child is started with
``prctl(PR_SET_PDEATHSIG, SIGTERM)``: the kernel sends it SIGTERM when the
parent dies, and it stops as on any SIGTERM (gracefully; nginx's master takes
its workers with it, which SIGKILL would orphan). The launchers themselves do
not ask it of their own parent: ``nohup python scripts/run_all.py &`` must go on
after its shell has gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _libc_prctl() -> Callable[..., int] | None:
    # Found here, in the parent: the child between fork and exec should only call it.
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _libc_prctl()


def stop_with_this_process(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess``: the child gets ``sig`` when this process dies.

    The kernel sends it when the *thread* that started the child ends, so it
    is set only for children started from the main thread, which lives as long
    as the process; one started from another thread (a test's
    ``asyncio.to_thread``) is left as before rather than stopped when that
    thread ends. None (nothing to do) there and off Linux.
    """
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def in_the_child() -> None:
        if not _signal_when_parent_dies(sig, parent):
            os._exit(1)

    return in_the_child


def _signal_when_parent_dies(sig: int, parent: int) -> bool:
    """Arm the signal; False if ``parent`` had already died, when no signal will come."""
    if _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    return os.getppid() == parent


def start(command: list[str], *, before_exec: Callable[[], None] | None = None, **options) -> subprocess.Popen:
    """``subprocess.Popen`` for a child that stops with this process (``stop_with_this_process``);
    ``before_exec`` runs in the child too (say, to set a resource limit)."""
    stop_with_us = stop_with_this_process()
    steps = [step for step in (stop_with_us, before_exec) if step is not None]

    def in_the_child() -> None:
        for step in steps:
            step()

    return subprocess.Popen(command, preexec_fn=in_the_child if steps else None, **options)


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    """``subprocess.run`` for a one-off command that stops with this process."""
    return subprocess.run(command, preexec_fn=stop_with_this_process(), **options)


def stop_all(children: Iterable[subprocess.Popen], *, within: float, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to every child still running, then wait for each up to ``within`` s; kill one that is not done."""
    children = list(children)
    for child in children:
        if child.poll() is None:
            child.send_signal(sig)
    for child in children:
        try:
            child.wait(within)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


class StopRequest:
    """Set by SIGINT (Ctrl-C) or SIGTERM once installed: a launcher's loop runs until it is."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> StopRequest:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        return self

    def _on_signal(self, signum, frame) -> None:
        self.requested = True
