"""A process and everything it started, read from Linux's /proc, for tests that kill a launcher.

Each process is known by its pid and its start time, so a pid the kernel
hands to a new process after the old one is gone is not mistaken for it.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    pid: int
    started: int  # clock ticks after boot: /proc/<pid>/stat, field 22
    command: str

    def running(self) -> bool:
        """Alive, and the same process (a zombie waiting to be reaped holds no port and counts as gone)."""
        now = _stat(self.pid)
        return now is not None and now[2] == self.started and now[1] != "Z"

    def kill(self) -> None:
        if self.running():
            os.kill(self.pid, signal.SIGKILL)


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a process, or None if there is none by that pid."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name in brackets may hold spaces
    return int(fields[1]), fields[0], int(fields[19])


def _command(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(pid: int) -> list[Process]:
    """Every process below ``pid``: its children, theirs, and so on."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry.name))
    found: list[Process] = []
    below = list(children.get(pid, []))
    while below:
        child = below.pop()
        stat = _stat(child)
        if stat is not None and stat[1] != "Z":
            found.append(Process(child, stat[2], _command(child)))
        below.extend(children.get(child, []))
    return found
