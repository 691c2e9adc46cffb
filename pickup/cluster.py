"""The production topology on one machine: nginx, N daphne, N run_queue, PostgreSQL, Redis with Sentinel.

`make run-cluster` (scripts/run_cluster.py) and the tests on this topology
(tests/processes/test_cluster.py) start it through ``Cluster``. Every part
comes from the example files in deploy/, filled in for this machine
(pickup/deploy_files.py): the nginx site, the systemd units' ``ExecStart``
lines (run here as plain child processes, each in a session of its own so
that a terminal's Ctrl-C reaches only the parent, which stops them
gracefully, and each sent SIGTERM by the kernel if the parent dies:
pickup/child_processes.py), and the Redis and sentinel configurations. Like systemd, the
processes get only ``PATH`` and the settings in the environment file the
units name. Everything runs from a temporary folder that ``stop`` removes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from dotenv import dotenv_values

from pickup import child_processes, deploy_files
from pickup.redis_sentinel import SentinelRedis
from pickup.redis_server import free_port
from pickup.testing import wait_for_answer

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"

# nginx's own frame for the site in deploy/: no daemon, every file in the cluster's folder.
_NGINX_MAIN = """\
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {log_dir}/nginx-error.log warn;
# Each WebSocket holds two of the worker's connections (the customer's and daphne's): 16,384 carry
# 8,000 customers (4,096 refused a benchmark's 2,000 while they connected).
events {{ worker_connections 16384; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/pickup-site.conf;
}}
"""


class Cluster:
    """``settings`` are the operator settings every process gets (the environment file)."""

    def __init__(
        self, *, web: int, workers: int, database_url: str, settings: dict[str, str], port: int = 0,
        log_dir: Path | None = None,
    ):
        self.dir = Path(tempfile.mkdtemp(prefix="pickup-cluster-"))
        self.log_dir = log_dir or self.dir  # logs someone reads afterwards (a test's tmp_path) go elsewhere
        self.dir.chmod(0o755)  # nginx's workers run as nobody and read the static files here
        self.web_count, self.worker_count = web, workers
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.redis = SentinelRedis()
        self.metrics_dir = self.dir / "metrics"
        self.static_root = self.dir / "static"
        self.env_file = self.dir / "pickup.env"
        self.settings = {
            "DATABASE_URL": database_url, "STATIC_ROOT": str(self.static_root),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir), "PICKUP_TRUSTED_PROXIES": "1", **settings,
        }
        self.web: dict[int, subprocess.Popen] = {}  # port -> daphne
        self.workers: list[subprocess.Popen] = []
        self.nginx: subprocess.Popen | None = None

    # ------------------------------------------------------------ starting

    def start(self) -> Cluster:
        self.redis.start()
        self.metrics_dir.mkdir()
        self.settings.update(self.redis.env)
        self.env_file.touch(mode=0o600)  # the secret key and the metrics token: the folder itself is readable
        self.env_file.write_text("".join(f"{name}='{value}'\n" for name, value in self.settings.items()))
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("collectstatic", "--noinput", "-v", "0")
        for _ in range(self.web_count):
            self.start_web()
        for _ in range(self.worker_count):
            self.start_run_queue()
        self._start_nginx()
        return self

    @property
    def env(self) -> dict[str, str]:
        """What a unit's process gets: PATH and the environment file, as under systemd."""
        return {"PATH": os.environ.get("PATH", ""), **dotenv_values(self.env_file)}

    def manage(self, *args: str, timeout: float = 300) -> str:
        # One-off commands count nothing worth a file in the metrics directory.
        result = child_processes.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env={**self.env, "PROMETHEUS_MULTIPROC_DIR": ""},
            capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _unit(self, unit: str, instance: str, log_name: str) -> subprocess.Popen:
        command = deploy_files.exec_start(unit, instance, ROOT=ROOT, ENV_FILE=self.env_file)
        with open(self.log_dir / f"{log_name}.log", "ab") as log:
            return child_processes.start(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start_web(self, port: int | None = None) -> int:
        """One more daphne, from deploy/pickup-web@.service; returns its port once it answers."""
        port = port or free_port()
        self.web[port] = self._unit("pickup-web@.service", str(port), f"daphne-{port}")
        wait_for_answer(f"http://127.0.0.1:{port}/healthz", self.web[port], timeout=60)
        return port

    def start_run_queue(self) -> subprocess.Popen:
        worker = self._unit("pickup-queue@.service", str(len(self.workers) + 1), f"run_queue-{len(self.workers) + 1}")
        self.workers.append(worker)
        return worker

    def _start_nginx(self) -> None:
        upstreams = "\n    ".join(f"server 127.0.0.1:{port} max_fails=0;" for port in self.web)
        deploy_files.write(
            "nginx-pickup.conf", self.dir / "pickup-site.conf", UPSTREAM_SERVERS=upstreams,
            LISTEN=f"127.0.0.1:{self.port}", SERVER_NAME="localhost", STATIC_ROOT=self.static_root,
        )
        main = self.dir / "nginx.conf"
        main.write_text(_NGINX_MAIN.format(dir=self.dir, log_dir=self.log_dir, user="user nobody nogroup;" if os.geteuid() == 0 else ""))
        with open(self.log_dir / "nginx.log", "ab") as log:
            self.nginx = child_processes.start(
                [NGINX, "-c", str(main), "-p", str(self.dir)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_answer(self.base_url + "/healthz", self.nginx, timeout=60)

    # ------------------------------------------------------------ running

    def exited(self) -> list[str]:
        """Pickup's processes and nginx that stopped by themselves (none, while all is well).

        Not Redis's: a primary that dies is what Sentinel is there for.
        """
        named = {"nginx": self.nginx, **{f"daphne on {port}": p for port, p in self.web.items()},
                 **{f"run_queue {n}": p for n, p in enumerate(self.workers, start=1)}}
        return [f"{name} (exit status {process.returncode})" for name, process in named.items() if process and process.poll() is not None]

    def stop_web(self, port: int, sig: int = signal.SIGTERM) -> int:
        """Stop one daphne (gracefully, by default); its exit status."""
        process = self.web.pop(port)
        process.send_signal(sig)
        return process.wait(30)

    def restart_run_queue(self, index: int) -> int:
        """SIGTERM one run_queue, and start another in its place once it has exited; the exit status."""
        worker = self.workers[index]
        worker.send_signal(signal.SIGTERM)
        status = worker.wait(60)
        self.workers[index] = self._unit("pickup-queue@.service", str(index + 1), f"run_queue-{index + 1}")
        return status

    def stop(self) -> None:
        """Gracefully, front to back: daphne and run_queue by SIGTERM (each finishes its work), then nginx, then Redis."""
        child_processes.stop_all([*self.web.values(), *self.workers], within=30)
        if self.nginx is not None:
            child_processes.stop_all([self.nginx], within=10, sig=signal.SIGQUIT)  # nginx's graceful shutdown
        self.web.clear()
        self.workers.clear()
        self.redis.shutdown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self) -> str:
        """The tail of every process's log, for a failing test's report."""
        paths = sorted({*self.dir.glob("*.log"), *self.log_dir.glob("*.log")})
        return "\n".join(f"== {path.name}\n{path.read_text(errors='replace')[-3000:]}" for path in paths)

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

