"""Each peer in an environment of its own, installed on first use and kept (git-ignored).

Celery and arq go into virtual environments under bench/peers/.envs/, BullMQ
into bench/peers/node/node_modules/ from the committed package-lock.json with
the machine's Node. None of this is a dependency of Pickup.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENVS = HERE / ".envs"
NODE_DIR = HERE / "node"
PYTHON_PEERS = {  # the releases measured; change them here and the environment is rebuilt
    "celery": ["celery[redis]==5.7.0"],
    "arq": ["arq==0.28.0"],
}


def worker_command(peer: str, redis_url: str, concurrency: int, arq_poll_delay: float) -> list[str]:
    prefix = peer_command(peer)
    extra = [str(arq_poll_delay)] if peer == "arq" else []
    return [*prefix, "worker", redis_url, str(concurrency), *extra]


def enqueue_command(peer: str, redis_url: str) -> list[str]:
    return [*peer_command(peer), "enqueue", redis_url]


def peer_command(peer: str) -> list[str]:
    """The command that runs the peer's script (bench/peers/<peer>_jobs.*), its environment made if need be."""
    if peer == "bullmq":
        return [ensure_node(), str(NODE_DIR / "bullmq_jobs.mjs")]
    return [ensure_python(peer), str(HERE / f"{peer}_jobs.py")]


def ensure_python(peer: str) -> str:
    env = ENVS / peer
    marker = env / "installed.txt"
    pins = "\n".join(PYTHON_PEERS[peer])
    if not marker.exists() or marker.read_text() != pins:
        print(f"installing {pins} into {env} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
        subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", *PYTHON_PEERS[peer]], check=True)
        marker.write_text(pins)
    return str(env / "bin" / "python")


def ensure_node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise RuntimeError("BullMQ needs Node.js and npm on PATH (Debian: apt-get install nodejs npm)")
    marker = NODE_DIR / "node_modules" / ".package-lock.json"  # npm rewrites it on every install
    lock = NODE_DIR / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        print(f"installing BullMQ into {NODE_DIR / 'node_modules'} (npm ci) ...", flush=True)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel", "error"], cwd=NODE_DIR, check=True)
    return node


def versions(peer: str) -> str:
    """The installed release of the peer, for the results."""
    if peer == "bullmq":
        package = json.loads((NODE_DIR / "node_modules" / "bullmq" / "package.json").read_text())
        node = subprocess.run([shutil.which("node") or "node", "--version"], capture_output=True, text=True).stdout.strip()
        return f"bullmq {package['version']}, node {node}"
    python = ENVS / peer / "bin" / "python"
    code = f"import importlib.metadata as m, platform; print('{peer}', m.version('{peer}'), 'python', platform.python_version())"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout.strip()
