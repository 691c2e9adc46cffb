"""`make run` and `make run-cluster` killed by SIGKILL (the OOM killer, ``kill -9``): the script
make runs takes every process it started with it, and nothing is left holding a port.

Each is started with make, as the README says, on its embedded defaults
(pickup/settings.py, not the tests' settings), but on a port no developer's
`make run` or other test run uses, with its own Redis, database and temporary
files (pickup/child_processes.py is what stops them).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from pickup.redis_server import free_port
from pickup.testing import postgres_database
from tests.processes.clients import wait_until
from tests.processes.process_tree import Process, descendants

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parent.parent.parent


def make_run_environment(tmp_path: Path, port: int) -> dict[str, str]:
    """What a shell gives `make run`, plus what keeps this run apart from every other."""
    return {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path)), "PYTHONUNBUFFERED": "1",
        "HOST": "127.0.0.1", "PORT": str(port),
        # Nothing answers there, so run_all starts a private Redis (never the machine's 6379).
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        # Keys of its own, so that run_all does not make the checkout's var/vapid-development.env.
        "VAPID_PRIVATE_KEY": settings.VAPID_PRIVATE_KEY, "VAPID_PUBLIC_KEY": settings.VAPID_PUBLIC_KEY,
        "TMPDIR": str(tmp_path),  # the private Redis's folder, left behind by a parent killed this way
    }


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def can_listen(port: int) -> bool:
    """Whether the next `make run` could listen on the port (run_all's own check)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def make(target: str, environment: dict[str, str], log: Path, *arguments: str) -> subprocess.Popen:
    """`make <target>` with this test run's Python, never reinstalling its packages."""
    with open(log, "ab") as output:
        return subprocess.Popen(
            ["make", "-o", ".venv/.dev-installed", target, f"BIN={Path(sys.executable).parent}", *arguments],
            cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT,
        )


async def kill_and_wait_for_everything_to_stop(
    started_by_make: subprocess.Popen, launcher_script: str, url: str, port: int, log: Path, *, expected: list[str]
):
    """Once ``url`` answers, SIGKILL ``launcher_script``; then every process
    make had started must stop, and the port be free. What is left behind is killed afterwards, by pid."""
    started: list[Process] = []
    try:
        await wait_until(lambda: started_by_make.poll() is not None or answers(url), 300, f"{url} to answer")
        assert started_by_make.poll() is None, log.read_text(errors="replace")
        started = descendants(started_by_make.pid)
        commands = " | ".join(process.command for process in started)
        assert all(name in commands for name in expected), commands

        [launcher] = [process for process in started if launcher_script in process.command]
        os.kill(launcher.pid, signal.SIGKILL)
        started_by_make.wait(30)  # make exits once its child is gone

        await wait_until(
            lambda: not any(process.running() for process in started) and can_listen(port), 60,
            lambda: "every process make started to stop; still running: "
            + " | ".join(process.command for process in started if process.running()),
        )
    finally:
        if started_by_make.poll() is None:
            started_by_make.kill()
            started_by_make.wait(30)
        for process in started:
            process.kill()


@pytest.mark.timeout(600)  # migrating a new SQLite database on a busy machine takes a while
async def test_make_run_killed_by_sigkill_leaves_none_of_its_processes_running(tmp_path):
    port = free_port()
    log = tmp_path / "make-run.log"
    make_run = make("run", make_run_environment(tmp_path, port), log)
    await kill_and_wait_for_everything_to_stop(
        make_run, "scripts/run_all.py", f"http://127.0.0.1:{port}/healthz", port, log,
        expected=["scripts/run_all.py", "daphne", "run_queue", "redis-server"],
    )


@pytest.mark.postgres
@pytest.mark.timeout(600)
async def test_make_run_cluster_killed_by_sigkill_leaves_none_of_its_processes_running(tmp_path):
    """nginx's master takes its worker with it; the Redis servers and sentinels stop too."""
    port = free_port()
    server = os.environ.get("PICKUP_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    # Where the cluster's folder goes: readable by nginx's workers (nobody), unlike tmp_path.
    folder = Path(tempfile.mkdtemp(prefix="pickup-killed-cluster-"))
    folder.chmod(0o755)
    try:
        with postgres_database(server) as database_url:
            environment = {
                "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path)), "PYTHONUNBUFFERED": "1",
                "PORT": str(port), "DATABASE_URL": database_url, "TMPDIR": str(folder),
            }
            log = tmp_path / "make-run-cluster.log"
            make_run_cluster = make("run-cluster", environment, log, "ARGS=--web 1 --workers 1")
            await kill_and_wait_for_everything_to_stop(
                make_run_cluster, "scripts/run_cluster.py", f"http://127.0.0.1:{port}/healthz", port, log,
                expected=["scripts/run_cluster.py", "nginx: master", "nginx: worker", "daphne", "run_queue",
                          "redis-server", "sentinel"],
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
