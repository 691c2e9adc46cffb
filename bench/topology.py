"""The production topology measured through nginx: 1 and then 2 web processes side by side (issue 15, point 6).

    .venv/bin/python -m bench.topology                     # 1 and 2 web, 2,000 customers and alerts
    .venv/bin/python -m bench.topology --web 2 --customers 200 --alerts 200 --background-load 0

For each size, pickup.cluster.Cluster starts nginx, N daphne and N run_queue,
Redis with Sentinel, on a PostgreSQL database of the benchmark's own
(created on PICKUP_TEST_POSTGRES_URL's server and dropped afterwards), with
production settings (DEBUG off, LOG_LEVEL WARNING). This process is the
client: C customers connect through nginx, which hands them to the web
processes in turn, and then

- lateness (bench/lateness.py's client): N alerts due over W seconds
  (spread) and N due at one instant (burst), from due time to arrival on the
  customer's socket; lost, duplicates and early must be 0;
- claims per alert, from /metrics: the web timers' claim tries
  (``pickup_timer_claims_total``, won and lost) plus the alerts run_queue
  pushed first, for each rush, divided by its alerts;
- placement (bench/placement.py's client): K customers placing orders one
  after another, orders/s through nginx;
- CPU seconds each part used during each measure (nginx, daphne, run_queue,
  Redis, the client; PostgreSQL's whole server, which others may share).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
import urllib.request
from pathlib import Path

import psutil

from bench import lateness, load, placement
from bench.common import POSTGRES_URL, Profile, cpu_seconds, create_sessions, print_table, raise_file_limit, write_results
from pickup.cluster import Cluster
from pickup.testing import metric_samples, postgres_database

ROLES = ("nginx", "daphne", "run_queue", "redis", "client", "postgres")


def topology_settings() -> dict[str, str]:
    """Production settings over plain HTTP on loopback; no per-customer or per-address limits (every
    customer is 127.0.0.1 behind nginx)."""
    return {
        "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0", "METRICS_TOKEN": secrets.token_urlsafe(32), "LOG_LEVEL": "WARNING",
        "PICKUP_ORDERS_PER_MINUTE_PER_CUSTOMER": "0", "PICKUP_ORDERS_PER_MINUTE_PER_ADDRESS": "0",
        "PICKUP_OPEN_ORDERS_PER_CUSTOMER": "0", "PICKUP_MESSAGES_PER_SECOND_PER_SOCKET": "1000000",
        "PICKUP_SOCKETS_PER_SESSION": "0", "PICKUP_SOCKETS_PER_ADDRESS": "0",
    }


class Django:
    """The cluster as bench.common.create_sessions reads a stack: ``shell`` runs Python inside Django."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    def shell(self, code: str, timeout: float = 120) -> str:
        return self.cluster.manage("shell", "--no-imports", "-c", code, timeout=timeout)


def prepare(cluster: Cluster) -> int:
    """The demo menu, orders allowed a second ahead and (nearly) unlimited slots; the menu item to order."""
    cluster.manage("setup_demo", "--no-staff")
    return int(Django(cluster).shell(
        "from orders.models import MenuItem, Restaurant\n"
        "Restaurant.objects.filter(pk=Restaurant.current().pk).update(min_notice_minutes=0, slot_capacity=32_767)\n"
        "print(MenuItem.objects.first().pk)"
    ).strip())


def metrics(cluster: Cluster) -> dict:
    """/metrics through nginx: every process's figures added up."""
    request = urllib.request.Request(
        cluster.base_url + "/metrics", headers={"Authorization": f"Bearer {cluster.settings['METRICS_TOKEN']}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return metric_samples(response.read().decode())


def alert_figures(samples: dict) -> dict[str, float]:
    """The web timers' claim tries, the alerts each sender pushed first and their lateness to the push, so far."""
    tally = dict.fromkeys(("timer_won", "timer_lost", "run_queue_first", "timer_first", "lateness_sum", "lateness_count"), 0.0)
    for (name, labels), value in samples.items():
        labels = dict(labels)
        if name == "pickup_timer_claims_total":
            tally[f"timer_{labels['outcome']}"] += value
        elif name == "pickup_alert_first_pushes_total":
            tally[f"{labels['sender']}_first"] += value
        elif name == "pickup_alert_lateness_seconds_sum":
            tally["lateness_sum"] += value
        elif name == "pickup_alert_lateness_seconds_count":
            tally["lateness_count"] += value
    return tally


class CpuWatch:
    """CPU seconds each part of the topology used between ``start`` and ``stop``."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.before: dict[tuple[str, int], float] = {}

    def _processes(self) -> list[tuple[str, psutil.Process]]:
        found = []

        def add(role: str, pid: int, children: bool = False) -> None:
            try:
                process = psutil.Process(pid)
                found.append((role, process))
                if children:
                    found.extend((role, child) for child in process.children())
            except psutil.NoSuchProcess:
                pass

        add("nginx", self.cluster.nginx.pid, children=True)
        for web in self.cluster.web.values():
            add("daphne", web.pid)
        for worker in self.cluster.workers:
            add("run_queue", worker.pid)
        for server in self.cluster.redis.processes.values():
            add("redis", server.pid)
        add("client", os.getpid())
        found.extend(("postgres", p) for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres")
        return found

    def _read(self) -> dict[tuple[str, int], float]:
        seconds = {}
        for role, process in self._processes():
            try:
                seconds[(role, process.pid)] = cpu_seconds(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return seconds

    def start(self) -> None:
        self.before = self._read()
        self.started = time.monotonic()

    def stop(self) -> dict[str, float]:
        used = dict.fromkeys(ROLES, 0.0)
        for (role, pid), seconds in self._read().items():
            used[role] += seconds - self.before.get((role, pid), 0.0)
        used["wall"] = time.monotonic() - self.started
        return {role: round(seconds, 2) for role, seconds in used.items()}


def sockets_per_web(cluster: Cluster) -> list[int]:
    """Established connections on each daphne's port: how nginx split the customers."""
    split = []
    for port, web in cluster.web.items():
        connections = psutil.Process(web.pid).net_connections(kind="tcp")
        split.append(sum(1 for c in connections if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED))
    return split


async def all_closed(cluster: Cluster, timeout: float = 120) -> None:
    """Until the web processes have seen every customer socket close (/metrics), so that placement is not
    measured while they still work through a crowd's disconnects."""
    deadline = time.monotonic() + timeout
    while any(value for (name, labels), value in metrics(cluster).items()
              if name == "pickup_sockets_open" and dict(labels)["kind"] == "customer"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"customer sockets still open {timeout} s after the crowd closed them")
        await asyncio.sleep(0.2)


async def rush_on(
    cluster: Cluster, crowd: lateness.Customers, item: int, *, alerts: int, shape: str, window: float, profile: bool = False,
) -> dict:
    """One rush through nginx, with the claims it cost and the CPU it took from a second before the first due time."""
    before = alert_figures(metrics(cluster))
    cpu = CpuWatch(cluster)
    spies = []

    def due_soon() -> None:
        cpu.start()
        if profile:
            pids = {**{f"daphne-{n}": web.pid for n, web in enumerate(cluster.web.values(), start=1)},
                    **{f"run_queue-{n}": worker.pid for n, worker in enumerate(cluster.workers, start=1)}}
            spies.append(Profile(f"topology-{len(cluster.web)}web-{shape}", pids, seconds=window + 1.5))

    delivered = await lateness.rush(crowd, item, alerts=alerts, shape=shape, window=window, before_due=due_soon)
    used = cpu.stop()
    for spy in spies:
        spy.finish(top=20)
    after = alert_figures(metrics(cluster))
    spent = {name: after[name] - before[name] for name in after}
    pushed_ms = 1000 * spent.pop("lateness_sum") / max(1, spent.pop("lateness_count"))
    spent = {name: int(value) for name, value in spent.items()}
    tries = spent["timer_won"] + spent["timer_lost"] + spent["run_queue_first"]
    return {"shape": shape, **delivered, "claims": spent, "claims_per_alert": round(tries / alerts, 3), "cpu_s": used,
            # The servers' own view: due time to the channel layer taking the push (pickup_alert_lateness_seconds).
            "push_mean_ms": round(pushed_ms, 1)}


async def measure(
    *, web: int, customers: int, alerts: int, shapes: list[str], window: float, placement_customers: int, orders_each: int,
    profile: bool = False,
) -> dict:
    with postgres_database(POSTGRES_URL) as database_url, Cluster(
        web=web, workers=web, database_url=database_url, settings=topology_settings(),
        log_dir=Path(os.environ["BENCH_LOG_DIR"]) if os.environ.get("BENCH_LOG_DIR") else None,
    ) as cluster:
        item = prepare(cluster)
        keys = create_sessions(Django(cluster), max(customers, placement_customers))
        crowd = lateness.Customers(cluster.base_url, keys[:customers])
        await crowd.connect_all()
        split = sockets_per_web(cluster)
        rushes = []
        for shape in shapes:
            rushes.append(await rush_on(cluster, crowd, item, alerts=alerts, shape=shape, window=window, profile=profile))
        await crowd.close()
        await all_closed(cluster)
        cpu = CpuWatch(cluster)
        cpu.start()
        placed = await placement.place_all(cluster.base_url, keys[:placement_customers], item, orders_each)
        placed["cpu_s"] = cpu.stop()
        gone = cluster.exited()
        if gone:
            raise RuntimeError(f"{', '.join(gone)} stopped during the benchmark:\n{cluster.logs()}")
        return {"web": web, "run_queue": web, "customers": customers, "sockets_per_web": split,
                "rushes": rushes, "placement": placed}


def table_rows(sizes: list[dict]) -> list[dict]:
    """One row per figure, one column per size ("1 web", "2 web")."""
    def row(figure: str, target: str, value) -> dict:
        return {"figure": figure, **{f"{size['web']} web": value(size) for size in sizes}, "target (2 web)": target}

    rows = [row("customers per web process", "", lambda s: " / ".join(map(str, s["sockets_per_web"])))]
    for n, rush in enumerate(sizes[0]["rushes"]):
        shape = rush["shape"]
        target = {"spread": "p99 ≤ 10", "burst": "max ≤ 200"}[shape]
        for key in ("p50", "p99", "max"):
            rows.append(row(f"{shape}: {key} ms", target if key in target else "",
                            lambda s, n=n, key=key: s["rushes"][n]["lateness_ms"][key]))
        rows.append(row(f"{shape}: mean ms, due → pushed / → on the socket", "",
                        lambda s, n=n: "{:.1f} / {:.1f}".format(s["rushes"][n]["push_mean_ms"], s["rushes"][n]["lateness_ms"]["mean"])))
        rows.append(row(f"{shape}: claims per alert", "≤ 1.1", lambda s, n=n: f"{s['rushes'][n]['claims_per_alert']:.2f}"))
        rows.append(row(f"{shape}: lost / dup / early", "0 / 0 / 0",
                        lambda s, n=n: "{lost} / {duplicates} / {early}".format(**s["rushes"][n])))
        rows.append(row(f"{shape}: CPU s nginx / daphne / run_queue / client in wall s", "",
                        lambda s, n=n: "{nginx} / {daphne} / {run_queue} / {client} in {wall:.1f}".format(**s["rushes"][n]["cpu_s"])))
    rows.append(row("placement: orders/s", "≥ 2,000", lambda s: s["placement"]["orders_per_second"]))
    rows.append(row("placement: reply p50 / p99 ms", "",
                    lambda s: "{p50:.1f} / {p99:.1f}".format(**s["placement"]["reply_ms"])))
    rows.append(row("placement: errors", "0", lambda s: s["placement"]["errors"]))
    rows.append(row("placement: CPU s nginx / daphne / run_queue / client / postgres in wall s", "",
                    lambda s: "{nginx} / {daphne} / {run_queue} / {client} / {postgres} in {wall:.1f}".format(**s["placement"]["cpu_s"])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--web", default="1,2", help="web process counts to measure, in order (each with as many run_queue)")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--window", type=float, default=1.0, help="seconds the spread shape spreads over")
    parser.add_argument("--shape", choices=["spread", "burst", "both"], default="both")
    parser.add_argument("--placement-customers", type=int, default=50)
    parser.add_argument("--orders-each", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="sample daphne and run_queue with py-spy around each due time")
    load.add_argument(parser)
    args = parser.parse_args()
    raise_file_limit()  # the client's sockets, and nginx's and daphne's (they inherit the limit)
    shapes = ["spread", "burst"] if args.shape == "both" else [args.shape]
    sizes = []
    for web in (int(n) for n in args.web.split(",")):
        load_before = os.getloadavg()[0]
        with load.background_load(args.background_load):
            result = asyncio.run(measure(
                web=web, customers=args.customers, alerts=args.alerts, shapes=shapes, window=args.window,
                placement_customers=args.placement_customers, orders_each=args.orders_each, profile=args.profile,
            ))
        sizes.append({**result, "load_average_before": load_before})
    print_table(
        f"The topology through nginx, PostgreSQL, {args.customers:,} customers, {args.alerts:,} alerts, "
        f"background load {args.background_load} (load average before: "
        + ", ".join(f"{s['load_average_before']:.2f}" for s in sizes) + ")",
        table_rows(sizes), ["figure", *(f"{s['web']} web" for s in sizes), "target (2 web)"],
    )
    print(f"results: {write_results('topology', {'background_load': args.background_load, 'sizes': sizes})}")


if __name__ == "__main__":
    main()
