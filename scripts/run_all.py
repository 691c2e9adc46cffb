"""Run the whole of Pickup on one machine: Redis (if none answers), daphne and run_queue.

Development defaults: DEBUG on, SQLite in ./db.sqlite3, the demo menu and a
demo kitchen-staff account. Ctrl-C stops everything; if this process is
killed instead (even by SIGKILL), its children stop too, on Linux. In production run
daphne and run_queue as separate services instead (README, "Production").
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pickup import child_processes  # noqa: E402
from pickup.redis_server import ensure_redis  # noqa: E402

PYTHON = sys.executable
# Development Web Push keys, made on the first start and reused (var/ is not committed).
DEVELOPMENT_VAPID_FILE = ROOT / "var" / "vapid-development.env"
VAPID_NAMES = ("VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY")
# Where daphne and run_queue write their metrics unless .env or the environment says.
DEVELOPMENT_METRICS_DIR = ROOT / "var" / "metrics"


def manage(*args: str) -> None:
    # One-off commands: nothing they count is worth a file in the metrics directory.
    child_processes.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, check=True, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": ""}
    )


def use_development_vapid_keys(env_file: Path = ROOT / ".env", keys_file: Path = DEVELOPMENT_VAPID_FILE) -> None:
    """Give daphne and run_queue Web Push keys unless the environment or .env has some.

    The pair is made once and kept in var/: a new pair on every start would
    end the browsers' subscriptions made with the last one.
    """
    from dotenv import dotenv_values

    configured = {**dotenv_values(env_file), **os.environ}
    if all(configured.get(name) for name in VAPID_NAMES):
        return
    if not keys_file.exists():
        made = child_processes.run(
            [PYTHON, "manage.py", "vapid_keys"], cwd=ROOT, check=True, capture_output=True, text=True
        )
        keys_file.parent.mkdir(exist_ok=True)
        keys_file.touch(mode=0o600)
        keys_file.write_text(made.stdout)
        print(f"Web Push: development keys made in {keys_file}")
    for name, value in dotenv_values(keys_file).items():
        if name in VAPID_NAMES and value:
            os.environ[name] = value


def configured(name: str, env_file: Path = ROOT / ".env") -> str | None:
    """A setting as daphne and run_queue will read it: the environment, else .env."""
    from dotenv import dotenv_values

    return {**dotenv_values(env_file), **os.environ}.get(name)


def share_a_fresh_metrics_directory(env_file: Path = ROOT / ".env", default: Path = DEVELOPMENT_METRICS_DIR) -> Path:
    """Give every process the same PROMETHEUS_MULTIPROC_DIR, emptied of the last run's files.

    /metrics then adds up daphne's and run_queue's figures (README,
    "Operations"); files left by processes of an earlier run would be added
    in too, so they go first.
    """
    chosen = configured("PROMETHEUS_MULTIPROC_DIR", env_file)
    directory = Path(chosen) if chosen else default
    directory.mkdir(parents=True, exist_ok=True)
    for left_over in directory.glob("*.db"):
        left_over.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def cannot_listen(host: str, port: int) -> str | None:
    """Why daphne could not listen there ("Address already in use"…), or None if it can."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def wait_until_serving(host: str, port: str, daphne: subprocess.Popen, timeout: float = 60) -> bool:
    """True once daphne answers HTTP on the port (any status); False if it exits first or never answers."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1" if host != "::" else "::1"
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and daphne.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:  # answered: a host not allowed, Redis not up yet…
            return True
        except OSError:
            time.sleep(0.2)
    return False


def main() -> int:
    os.environ.setdefault("DEBUG", "true")
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    problem = cannot_listen(host, int(port))
    if problem:
        print(
            f"Cannot listen on {host}:{port}: {problem} (another `make run`?). "
            f"Stop that, or choose another port or host: PORT=8001 make run",
            file=sys.stderr,
        )
        return 1
    redis_url, private_redis = ensure_redis(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    os.environ["REDIS_URL"] = redis_url
    print(f"Redis: {redis_url}" + (" (private server started for this run)" if private_redis else ""))

    share_a_fresh_metrics_directory()
    manage("migrate", "--noinput", "-v", "0")
    manage("compilemessages", "-v", "0", "--ignore", ".venv")
    manage("setup_demo")
    use_development_vapid_keys()

    # daphne's access log is plain text: with JSON logs it is off (README, "Operations").
    access_log = ["-v", "0"] if configured("LOG_FORMAT") == "json" else []
    # Each stops with this process, even one killed by SIGKILL (pickup/child_processes.py).
    children = [
        child_processes.start(
            [PYTHON, "-m", "daphne", "-b", host, "-p", port, *access_log,
             "--websocket-max-message-size", "65536", "--websocket-max-frame-size", "65536",
             "pickup.asgi:application"],
            cwd=ROOT,
        ),
        child_processes.start([PYTHON, "manage.py", "run_queue"], cwd=ROOT),
    ]
    if not wait_until_serving(host, port, children[0]):
        print(f"daphne did not start serving on {host}:{port} (see above); stopping.", file=sys.stderr)
        child_processes.stop_all(children, within=15)
        if private_redis:
            private_redis.shutdown()
        return 1
    print(
        f"\nPickup is running.\n"
        f"  Ordering page:       http://{host}:{port}/\n"
        f"  Kitchen queue (staff): http://{host}:{port}/admin/orders/order/\n"
        f"Press Ctrl-C to stop.\n",
        flush=True,
    )

    stop = child_processes.StopRequest().install()
    exit_code = 0
    while not stop.requested:
        for child in children:
            if child.poll() is not None:
                print(f"{child.args[2]} exited with {child.returncode}; stopping.", file=sys.stderr)
                exit_code, stop.requested = 1, True
        time.sleep(0.2)
    child_processes.stop_all(children, within=15)
    if private_redis:
        private_redis.shutdown()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
