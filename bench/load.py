"""A reproducible busy machine: N processes spinning at normal priority while a benchmark runs.

A restaurant's server also serves pages, the admin and backups; a figure
that holds only on an idle machine is not yet a figure. Every benchmark
takes ``--background-load N`` (default 1) and records it with its results.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from pickup import child_processes

SPIN = "while True: pass"


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--background-load", type=int, default=1, metavar="N",
        help="busy processes spinning at normal priority during the run (default 1; 0 for a quiet machine)",
    )


@contextlib.contextmanager
def background_load(processes: int) -> Iterator[None]:
    """Keep ``processes`` CPU-bound processes running for the duration of the block."""
    # Killed with the benchmark even by SIGKILL: a spinner left behind would load every later run.
    spinners = [child_processes.start([sys.executable, "-c", SPIN]) for _ in range(processes)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait(10)
