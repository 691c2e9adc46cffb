"""Run Pickup as production does, on this machine: `make run-cluster`.

nginx in front (http://127.0.0.1:8080, PORT to change), N daphne and N
run_queue (N: one per core, --web/--workers to change), PostgreSQL at
DATABASE_URL (default: the machine's, database ``pickup_cluster``, created if
missing and never dropped), and a private Redis primary, replica and three
sentinels. Production settings (DEBUG off) over plain HTTP on loopback.
Ctrl-C or SIGTERM stops everything gracefully and removes the temporary
folder; if this process is killed instead (even by SIGKILL), every process it
started gets SIGTERM from the kernel and stops, on Linux (the folder stays). The pieces and the files they come from: pickup/cluster.py, deploy/.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pickup import child_processes  # noqa: E402
from pickup.cluster import Cluster  # noqa: E402

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/pickup_cluster"


def ensure_database(url: str) -> None:
    """Create the database ``url`` names if the server does not have it yet."""
    import psycopg

    name = urllib.parse.urlparse(url).path.lstrip("/")
    maintenance = urllib.parse.urlparse(url)._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as server:
        if not server.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            server.execute(f'CREATE DATABASE "{name}"')
            print(f"PostgreSQL: created database {name}")


def production_settings(database_url: str) -> dict[str, str]:
    """DEBUG off, as in production, but plain HTTP on loopback (no TLS here)."""
    return {
        "DEBUG": "false", "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false", "SECURE_HSTS_SECONDS": "0", "DATABASE_URL": database_url,
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or secrets.token_urlsafe(32),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--web", type=int, default=os.cpu_count() or 1, help="daphne processes (default: one per core)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="run_queue processes (default: one per core)")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE
    if not database_url.startswith("postgres"):
        print(f"run-cluster needs PostgreSQL; DATABASE_URL is {database_url}", file=sys.stderr)
        return 1
    ensure_database(database_url)

    stop = child_processes.StopRequest().install()
    settings = production_settings(database_url)
    cluster = Cluster(web=args.web, workers=args.workers, database_url=database_url, settings=settings,
                      port=int(os.environ.get("PORT", "8080")))
    exit_code = 0
    try:
        cluster.start()
        cluster.manage("setup_demo")
        print(
            f"\nPickup is running: nginx, {args.web} daphne, {args.workers} run_queue, PostgreSQL, Redis with Sentinel.\n"
            f"  Ordering page:         {cluster.base_url}/\n"
            f"  Kitchen queue (staff): {cluster.base_url}/admin/orders/order/\n"
            f"  Metrics:               curl -H 'Authorization: Bearer {settings['METRICS_TOKEN']}' {cluster.base_url}/metrics\n"
            f"  Sentinels:             {cluster.redis.sentinels} (master {cluster.settings['REDIS_SENTINEL_MASTER']})\n"
            f"  Files and logs:        {cluster.dir}\n"
            f"Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not stop.requested:
            gone = cluster.exited()
            if gone:
                print(f"{', '.join(gone)} stopped; stopping everything.", file=sys.stderr)
                exit_code, stop.requested = 1, True
            time.sleep(0.5)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        exit_code = 1
    finally:
        print("Stopping: daphne and run_queue (gracefully), nginx, Redis…", flush=True)
        cluster.stop()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
