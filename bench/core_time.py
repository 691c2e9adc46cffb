"""Where an alert's lateness went on the web server: its event loop's CPU, or waiting for a core.

Wall-clock lateness on a shared machine mixes what the code costs with the
wait for a core that another process holds. The kernel keeps both for each
thread, to the nanosecond (/proc/<pid>/task/<tid>/schedstat: time on a CPU,
time runnable but waiting for one). ``EventLoopTrace`` samples them for a
process's main thread (daphne's event loop, which writes every push) every
5 ms while a benchmark runs. From it:

- **CPU to arrival**: the event loop's CPU between an alert's due time and its
  arrival, lateness counted in the web server's work instead of wall time.
  It barely moves with the machine's load, so it tells two commits apart on a
  busy machine (2026-11-30: 25+ interleaved bursts a commit, BENCHMARKS.md).
- **waiting for a core**: how much of the window from the first due time to
  the last arrival the event loop was ready to run but had no core.

Linux only (``available()``); where the file is missing the figures are left out.
"""

from __future__ import annotations

import bisect
import threading
import time
from pathlib import Path


def available(pid: int) -> bool:
    return Path(f"/proc/{pid}/task/{pid}/schedstat").exists()


class EventLoopTrace:
    """Samples a process's main thread: (wall time, ns on a CPU, ns waiting for one)."""

    def __init__(self, pid: int, every: float = 0.005) -> None:
        self._file = f"/proc/{pid}/task/{pid}/schedstat"
        self._every = every
        self.samples: list[tuple[float, int, int]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> EventLoopTrace:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                with open(self._file) as stats:
                    on_cpu, waiting, _ = stats.read().split()
            except (OSError, ValueError):
                return  # the process is gone
            self.samples.append((time.time(), int(on_cpu), int(waiting)))
            time.sleep(self._every)

    def _at(self, moment: float) -> tuple[float, float]:
        """(ns on a CPU, ns waiting) at a wall time, between the two samples around it."""
        times = [sample[0] for sample in self.samples]
        index = bisect.bisect_left(times, moment)
        if index <= 0:
            return self.samples[0][1], self.samples[0][2]
        if index >= len(self.samples):
            return self.samples[-1][1], self.samples[-1][2]
        (t0, cpu0, wait0), (t1, cpu1, wait1) = self.samples[index - 1], self.samples[index]
        share = (moment - t0) / (t1 - t0) if t1 > t0 else 0.0
        return cpu0 + (cpu1 - cpu0) * share, wait0 + (wait1 - wait0) * share

    def between(self, start: float, end: float) -> tuple[float, float]:
        """Milliseconds the thread spent on a CPU, and waiting for one, between two wall times."""
        cpu0, wait0 = self._at(start)
        cpu1, wait1 = self._at(end)
        return (cpu1 - cpu0) / 1e6, (wait1 - wait0) / 1e6
