"""Run the real system as processes on loopback, for process tests and benchmarks.

``Stack`` owns a private Redis, an SQLite (or given) database, daphne
processes and run_queue processes, each on free ports, and can kill and
restart any of them. Nothing here is mocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pickup import child_processes
from pickup.redis_server import PrivateRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
# Internal timings a test may change for the processes it starts: set through
# ``settings=``, never the environment (tests/settings.py applies them).
INTERNAL_TIMINGS = {
    "PICKUP_CLAIM_LEASE_SECONDS", "PICKUP_ALERT_RESEND_SECONDS", "PICKUP_WEB_TIMERS", "PICKUP_RUN_QUEUE_GRACE_MS",
    "PICKUP_KITCHEN_DELAY_MS", "PICKUP_TIMER_LOOKAHEAD_MS", "PICKUP_TIMER_HORIZON_SECONDS",
    "PICKUP_REQUEST_DEADLINE_SECONDS",
}
TEST_SECRET_KEY = "pickup-process-tests-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
# What a stack's /metrics asks of its scraper (``Stack.metrics`` sends it).
TEST_METRICS_TOKEN = "pickup-process-tests-metrics-token-0123456789"


class Stack:
    """``env`` sets operator settings (environment variables); ``settings``
    overrides internal timings (tests/settings.py lists which), which no
    environment variable reaches."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        settings: dict[str, object] | None = None,
        log_dir: str | None = None,
    ):
        misplaced = [name for name in env or {} if name in INTERNAL_TIMINGS]
        if misplaced:
            raise ValueError(f"{misplaced} are settings, not environment variables: pass them as settings=")
        self.dir = Path(tempfile.mkdtemp(prefix="pickup-stack-"))
        self.log_dir = Path(log_dir) if log_dir else self.dir
        self.redis = PrivateRedis().start()
        self.db_path = self.dir / "db.sqlite3"
        # Every process of the stack writes its metrics here (a new, empty
        # directory), and each web server's /metrics adds them all up.
        self.metrics_dir = self.dir / "metrics"
        self.metrics_dir.mkdir()
        self.env = {
            **os.environ,
            "DEBUG": "true",
            "SECRET_KEY": TEST_SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": self.redis.url,
            "REDIS_KEY_PREFIX": "pickup-stack:",
            "DATABASE_URL": database_url or f"sqlite:///{self.dir / 'db.sqlite3'}",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            # Production's timing unless the test says otherwise.
            "PICKUP_TEST_OVERRIDES": json.dumps(settings or {}),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            "METRICS_TOKEN": TEST_METRICS_TOKEN,
            **(env or {}),
        }
        self.web: dict[int, subprocess.Popen] = {}
        self.workers: list[subprocess.Popen] = []
        self._logs: list = []

    # ------------------------------------------------------------ set-up

    def manage(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def prepare(self, *, min_notice_minutes: int = 0, slot_capacity: int = 1_000_000, template: Path | None = None) -> Stack:
        """Migrate, load the demo menu (open all day) and relax the rules that
        would get in a test's way: pickup a second ahead, unlimited slots.

        With ``template`` (SQLite only) the prepared database file is copied
        from there when it exists, and saved there when it does not.
        """
        if template is not None and template.exists():
            shutil.copyfile(template, self.db_path)
            return self
        if not self.env["DATABASE_URL"].startswith("sqlite"):
            slot_capacity = min(slot_capacity, 32_767)  # a smallint column on PostgreSQL
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("setup_demo", "--no-staff")
        self.manage(
            "shell", "-c",
            "from orders.models import Restaurant; "
            f"Restaurant.objects.filter(pk=Restaurant.current().pk).update("
            f"min_notice_minutes={min_notice_minutes}, slot_capacity={slot_capacity})",
        )
        if template is not None:
            shutil.copyfile(self.db_path, template)
        return self

    def shell(self, code: str, timeout: float = 120) -> str:
        """Run Python inside Django with this stack's settings; returns what it printed."""
        return self.manage("shell", "--no-imports", "-c", code, timeout=timeout)

    def query(self, sql: str, params: tuple | list = (), *, timeout: float = 20) -> list[tuple]:
        """Read the stack's SQLite database directly.

        A poll costs a millisecond this way, against a second for a
        ``manage.py shell``, so tests can watch the record while processes run.
        """
        if self.env["DATABASE_URL"] != f"sqlite:///{self.db_path}":
            raise RuntimeError("Stack.query reads the stack's own SQLite database only")
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=timeout)) as database:
            return database.execute(sql, tuple(params)).fetchall()

    def _log(self, name: str):
        handle = open(self.log_dir / f"{name}.log", "ab")
        self._logs.append(handle)
        return handle

    # ------------------------------------------------------------ web servers

    def start_web(
        self, port: int | None = None, *, env: dict[str, str] | None = None, file_limit: tuple[int, int] | None = None
    ) -> str:
        """Start a daphne process; returns its base URL once it answers.

        ``env`` adds to the stack's environment for this process alone (say, a
        metrics directory of its own, so that its /metrics shows it alone);
        ``file_limit`` starts it with that (soft, hard) open-file limit.
        """
        port = port or free_port()
        log = self._log(f"daphne-{port}")
        # As README's "Operations" says: daphne's access log is plain text, so with JSON logs it is off.
        access_log = ["-v", "0"] if self.env.get("LOG_FORMAT") == "json" else []
        # Stops with the test run (or benchmark) even if that is killed: pickup/child_processes.py.
        self.web[port] = child_processes.start(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *access_log,
             "--websocket-max-message-size", "65536", "pickup.asgi:application"],
            cwd=ROOT, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            before_exec=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, file_limit)) if file_limit else None,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for_answer(url + "/healthz", self.web[port])
        return url

    def kill_web(self, port: int, sig: int = signal.SIGKILL) -> None:
        process = self.web.pop(port)
        process.send_signal(sig)
        process.wait(15)

    def metrics(self, base_url: str) -> str:  # read with metric_samples
        """What a web server's /metrics shows its scraper: every process's figures, as text."""
        request = urllib.request.Request(base_url + "/metrics", headers={"Authorization": f"Bearer {TEST_METRICS_TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()

    # ------------------------------------------------------------ run_queue

    def start_run_queue(self, *args: str) -> subprocess.Popen:
        log = self._log(f"run_queue-{len(self.workers)}")
        worker = child_processes.start(
            [sys.executable, "manage.py", "run_queue", *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.workers.append(worker)
        return worker

    # ------------------------------------------------------------ teardown

    def stop(self) -> None:
        for process in [*self.web.values(), *self.workers]:
            if process.poll() is None:
                process.kill()  # also ends a process a test left stopped (SIGSTOP)
                process.wait(10)
        self.web.clear()
        self.workers.clear()
        self.redis.shutdown()
        for handle in self._logs:
            handle.close()
        # Nothing is left behind in the temporary folder: logs someone wants
        # to read afterwards go to ``log_dir`` (a test's tmp_path, BENCH_LOG_DIR).
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self, *, full: bool = False) -> str:
        """What the processes wrote: the tail of each log, or everything with ``full``."""
        for handle in self._logs:
            handle.flush()
        texts = (path.read_text(errors="replace") for path in sorted(self.log_dir.glob("*.log")))
        return "\n".join(text if full else text[-5000:] for text in texts)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server at ``server_url``, dropped afterwards.

    Yields its URL. Each stack gets its own, so that the connections counted
    in ``pg_stat_activity`` for it are the stack's alone.
    """
    import psycopg

    name = f"pickup_stack_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urllib.parse.urlparse(server_url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')



class ConnectionWatch:
    """Samples, in a thread, how many connections PostgreSQL holds to one database; keeps the peak.

    It reads ``pg_stat_activity`` over its own connection to the server's
    maintenance database, so it never counts itself.
    """

    def __init__(self, server_url: str, database_url: str, every: float = 0.02):
        self.server_url = server_url
        self.name = urllib.parse.urlparse(database_url).path.lstrip("/")
        self.every = every
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="connection-watch", daemon=True)

    def _watch(self) -> None:
        import psycopg

        with psycopg.connect(self.server_url, autocommit=True) as admin:
            while not self._stop.is_set():
                count = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.name,)).fetchone()[0]
                self.peak = max(self.peak, count)
                self.samples += 1
                self._stop.wait(self.every)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def wait_for_answer(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until ``url`` answers 200 (a web server or nginx just started); fail if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page (what /metrics serves): (name, sorted labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
