"""A private Redis with Sentinel on loopback: a primary, a replica and three sentinels.

For `make run-cluster` and the tests on that topology. Each server is
Debian's ``redis-server`` started from deploy/redis.conf and
deploy/sentinel.conf, on free ports, with its files in a temporary folder
that ``shutdown`` removes. The timings are short (a primary is declared down
after ``DOWN_AFTER_MS``), so a failover takes a few seconds, not a minute.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from pickup import child_processes, deploy_files
from pickup.redis_server import find_redis_server, free_port, redis_answers

MASTER_NAME = "pickup"
SENTINELS = 3
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


class SentinelRedis:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.dir = Path(tempfile.mkdtemp(prefix="pickup-sentinel-"))
        self.ports = {"primary": free_port(), "replica": free_port()}
        self.sentinel_ports = [free_port() for _ in range(SENTINELS)]
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def sentinels(self) -> str:
        """REDIS_SENTINELS for Pickup's processes."""
        return ",".join(f"{self.host}:{port}" for port in self.sentinel_ports)

    @property
    def env(self) -> dict[str, str]:
        """The settings that point Pickup at this Redis."""
        return {"REDIS_URL": "redis:///0", "REDIS_SENTINELS": self.sentinels, "REDIS_SENTINEL_MASTER": MASTER_NAME}

    def _start(self, name: str, config: Path, *extra: str) -> None:
        log = open(self.dir / f"{name}.log", "ab")
        self.processes[name] = child_processes.start(
            [find_redis_server(), str(config), *extra], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def _server(self, name: str, replica_of: int | None) -> None:
        folder = self.dir / name
        folder.mkdir()
        config = deploy_files.write(
            "redis.conf", folder / "redis.conf", PORT=self.ports[name], BIND=self.host, DIR=folder,
            REPLICAOF=f"replicaof {self.host} {replica_of}" if replica_of else "",
        )
        self._start(name, config)

    def start(self, timeout: float = 30) -> SentinelRedis:
        self._server("primary", None)
        self._server("replica", self.ports["primary"])
        for n, port in enumerate(self.sentinel_ports):
            folder = self.dir / f"sentinel-{n}"
            folder.mkdir()
            config = deploy_files.write(
                "sentinel.conf", folder / "sentinel.conf", PORT=port, BIND=self.host, DIR=folder,
                MASTER_NAME=MASTER_NAME, PRIMARY_HOST=self.host, PRIMARY_PORT=self.ports["primary"],
                DOWN_AFTER_MS=DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS=FAILOVER_TIMEOUT_MS,
            )
            self._start(f"sentinel-{n}", config, "--sentinel")
        self._wait(self._ready, timeout, "the replica in sync and every sentinel knowing it and the others")
        return self

    def _ready(self) -> bool:
        for name in self.processes:
            if self.processes[name].poll() is not None:
                said = (self.dir / f"{name}.log").read_text(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"{name} exited with {self.processes[name].returncode}: " + " / ".join(said))
        if not all(redis_answers(f"redis://{self.host}:{port}", 0.2) for port in self.ports.values()):
            return False
        replication = self.client("replica").info("replication")
        if replication.get("master_link_status") != "up":
            return False
        for port in self.sentinel_ports:
            known = self._sentinel(port).sentinel_master(MASTER_NAME)
            if known["num-slaves"] < 1 or known["num-other-sentinels"] < SENTINELS - 1:
                return False
        return True

    @staticmethod
    def _wait(condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.1)

    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(self.host, port, socket_timeout=1, decode_responses=True)

    def client(self, name: str = "primary") -> redis.Redis:
        """A client of one server by its role at start ("primary", "replica")."""
        return redis.Redis(self.host, self.ports[name], socket_timeout=2, decode_responses=True)

    def primary_port(self) -> int:
        """The port of the server the sentinels now name primary."""
        for port in self.sentinel_ports:
            try:
                return int(self._sentinel(port).sentinel_get_master_addr_by_name(MASTER_NAME)[1])
            except (redis.RedisError, OSError):
                continue
        raise RuntimeError("no sentinel answers")

    def wait_until_replicated(self, timeout: float = 10) -> None:
        """Until the replica holds every write the primary has taken so far (it usually does within a millisecond)."""
        written = self.client("primary").info("replication")["master_repl_offset"]
        self._wait(
            lambda: self.client("replica").info("replication").get("slave_repl_offset", -1) >= written,
            timeout, "the replica to catch up",
        )

    def kill_primary(self) -> None:
        """SIGKILL the primary, as a machine that loses power: the sentinels promote the replica."""
        process = self.processes.pop("primary")
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def hold_failover(self) -> None:
        """Keep the sentinels from declaring the primary down (for an hour), so a test can act while it is
        dead and not yet replaced (the failover window) for as long as it needs, however busy the machine."""
        self._down_after(3_600_000)

    def release_failover(self) -> None:
        """Back to the short ``DOWN_AFTER_MS``: a dead primary is replaced within seconds."""
        self._down_after(DOWN_AFTER_MS)

    def _down_after(self, milliseconds: int) -> None:
        for port in self.sentinel_ports:
            self._sentinel(port).sentinel_set(MASTER_NAME, "down-after-milliseconds", milliseconds)

    def wait_for_failover(self, timeout: float = 60) -> None:
        """Until the sentinels name the replica primary and it accepts writes."""

        def promoted() -> bool:
            if self.primary_port() != self.ports["replica"]:
                return False
            return self.client("replica").info("replication").get("role") == "master"

        self._wait(promoted, timeout, "the sentinels to promote the replica")

    def shutdown(self) -> None:
        child_processes.stop_all(self.processes.values(), within=10)
        self.processes.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SentinelRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()
