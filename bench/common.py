"""Shared pieces of the benchmarks: the real system on loopback, customers, figures.

Each benchmark starts its own Stack (private redis-server, SQLite database,
daphne and run_queue processes on free ports); the benchmark script itself is
the client process, talking to them over real sockets.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from pickup.testing import Stack, postgres_database  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# The PostgreSQL server benchmarks with --postgres create their databases on.
POSTGRES_URL = os.environ.get("PICKUP_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def raise_file_limit(wanted: int = 65_536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def start_stack(env: dict[str, str] | None = None, settings: dict[str, object] | None = None) -> Stack:
    # Production settings (DEBUG off: no query recording), plain HTTP on loopback.
    # The order and socket limits are off: every benchmark customer is on loopback.
    production = {
        "DEBUG": "false", "SECURE_SSL_REDIRECT": "false", "LOG_LEVEL": "WARNING",
        "PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER": "0", "PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS": "0",
        "PICKUP_OPEN_ORDERS_PER_CUSTOMER": "0", "PICKUP_SESSIONS_PER_MINUTE_PER_ADDRESS": "0",
        "PICKUP_MESSAGES_PER_SECOND_PER_SOCKET": "1000000", "PICKUP_SOCKETS_PER_SESSION": "0",
        "PICKUP_SOCKETS_PER_ADDRESS": "0",
    }
    stack = Stack(env={**production, **(env or {})}, settings=settings, log_dir=os.environ.get("BENCH_LOG_DIR"))
    stack.prepare()
    return stack


@contextlib.contextmanager
def bench_database(postgres: bool) -> Iterator[dict[str, str]]:
    """Settings for a benchmark's database: the stack's own SQLite file, or a new PostgreSQL database."""
    if not postgres:
        yield {}
        return
    with postgres_database(POSTGRES_URL) as database_url:
        yield {"DATABASE_URL": database_url}


def create_sessions(stack: Stack, count: int) -> list[str]:
    """Session keys of ``count`` customers, as if each had opened the ordering page."""
    code = f"""
from django.contrib.sessions.backends.db import SessionStore
from orders.customers import SESSION_KEY
keys = []
for n in range({count}):
    session = SessionStore()
    session[SESSION_KEY] = f"bench{{n:06d}}"
    session.create()
    keys.append(session.session_key)
print(",".join(keys))
"""
    return stack.shell(code, timeout=600).strip().split(",")


class Profile:
    """py-spy sampling the server processes while a benchmark runs (``--profile``).

    Writes one collapsed-stack file per process to bench/results/, readable
    by flamegraph tools, and prints the functions that held the CPU longest.
    """

    def __init__(self, name: str, pids: dict[str, int], seconds: float, rate: int = 250):
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.paths = {label: RESULTS / f"profile-{name}-{label}.txt" for label in pids}
        self.spies = [
            subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--duration", str(int(seconds) + 1),
                 "--rate", str(rate), "--format", "raw", "--nonblocking", "--threads", "--output", str(self.paths[label])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for label, pid in pids.items()
        ]

    def finish(self, top: int = 25) -> None:
        for spy in self.spies:
            spy.wait(60)
        for label, path in self.paths.items():
            if path.exists():
                print(f"\nprofile of {label} ({path.name}), by inclusive samples:")
                for samples, frame in hottest_frames(path, top):
                    print(f"{samples:7d}  {frame}")


def hottest_frames(path: Path, top: int) -> list[tuple[int, str]]:
    """Functions by the number of samples in which they are on the stack."""
    inclusive: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    return sorted(((n, frame) for frame, n in inclusive.items()), reverse=True)[:top]


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU time a process has used so far, all its threads."""
    times = process.cpu_times()
    return times.user + times.system


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1], "mean": statistics.fmean(ordered)}


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "redis": redis_version,
    }


def write_results(name: str, results: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    results = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), **results}
    path.write_text(json.dumps(results, indent=2))
    return path


def print_table(title: str, rows: list[dict], columns: list[str]) -> None:
    print(f"\n{title}")
    widths = {column: max(len(column), *(len(_cell(row.get(column))) for row in rows)) for column in columns}
    print("  ".join(column.ljust(widths[column]) for column in columns))
    print("  ".join("-" * widths[column] for column in columns))
    for row in rows:
        print("  ".join(_cell(row.get(column)).ljust(widths[column]) for column in columns))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)
