"""pickup/child_processes.py: what every launcher (`make run`, `make run-cluster`) starts stops with it.

tests/processes/test_killed_launcher.py proves it on the launchers themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pickup import child_processes
from tests.processes.process_tree import descendants

ROOT = Path(__file__).resolve().parent.parent

LAUNCHER = """
import time
from pickup import child_processes
child_processes.start(["sleep", "600"])
print("started", flush=True)
time.sleep(600)
"""


# As the tests' Stack starts daphne: with a step of its own before exec (an open-file limit).
LAUNCHER_WITH_A_LIMIT = """
import resource, sys, time
from pickup import child_processes
child_processes.start(
    [sys.executable, "-c", "import resource, time; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], flush=True); time.sleep(600)"],
    before_exec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (123, resource.getrlimit(resource.RLIMIT_NOFILE)[1])),
)
print("started", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("launcher_code, child_says", [(LAUNCHER, None), (LAUNCHER_WITH_A_LIMIT, "123")])
def test_a_child_stops_when_the_process_that_started_it_is_killed_by_sigkill(launcher_code, child_says):
    launcher = subprocess.Popen([sys.executable, "-c", launcher_code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        said = {launcher.stdout.readline().strip() for _ in range(1 if child_says is None else 2)}
        assert said == {"started"} | ({child_says} if child_says else set())
        [sleeper] = descendants(launcher.pid)
    finally:
        launcher.kill()
        launcher.wait(30)
    try:
        deadline = time.monotonic() + 60
        while sleeper.running():
            assert time.monotonic() < deadline, "the child still runs a minute after its parent was killed"
            time.sleep(0.1)
    finally:
        sleeper.kill()


def test_a_child_started_from_another_thread_is_not_tied_to_that_thread():
    """The kernel would stop it when that thread ends, not when the process does."""
    armed = []
    thread = threading.Thread(target=lambda: armed.append(child_processes.stop_with_this_process()))
    thread.start()
    thread.join()
    assert armed == [None]
    assert child_processes.stop_with_this_process() is not None


def test_a_stop_is_requested_by_sigterm_or_sigint():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in before:
            stop = child_processes.StopRequest().install()
            assert not stop.requested
            os.kill(os.getpid(), sig)
            assert stop.requested  # Python runs the handler before the next line
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_stop_all_kills_a_child_that_does_not_stop_in_time():
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )
    assert stubborn.stdout.readline() == "ready\n"
    child_processes.stop_all([stubborn], within=0.5)
    assert stubborn.returncode == -signal.SIGKILL
