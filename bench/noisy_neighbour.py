"""The noisy neighbour: one customer's script floods its socket while everybody else waits for their alert.

    .venv/bin/python -m bench.noisy_neighbour                  # 1,000 customers, 1,000 alerts over 1 s, load 1
    .venv/bin/python -m bench.noisy_neighbour --customers 200 --alerts 200 --runs 1

C honest customers connect and each places orders due evenly over W
seconds, as in bench/lateness.py. From two seconds before the first is due
until two seconds after the last, a flooder in a process of its own sends
frames on one socket as fast as the connection takes them, and opens a new
socket whenever one is closed (as a script would). The per-socket message
budget is the shipped one (``PICKUP_MESSAGES_PER_SECOND_PER_SOCKET``); the
per-address socket cap is off, since every customer is on loopback.

Reported: the honest customers' alert lateness, lost and doubled alerts, the
flooder's frames and sockets, and daphne's memory (RSS) before, at its peak,
and a minute after the flood stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import psutil

from bench import load
from bench.common import create_sessions, percentiles, print_table, raise_file_limit, start_stack, write_results
from bench.lateness import Customers

MB = 1024 * 1024
FLOOD = "bench.flood"


class MemoryWatch:
    """Samples a process's resident memory every ``every`` seconds on a thread."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def rss(self) -> int:
        return self.process.memory_info().rss

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> MemoryWatch:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


async def measure(*, customers: int, alerts: int, window: float, settle_seconds: float = 60) -> dict:
    stack = start_stack(env={"PICKUP_MESSAGES_PER_SECOND_PER_SOCKET": "10", "PICKUP_SOCKETS_PER_SESSION": "20"})
    try:
        keys = create_sessions(stack, customers + 1)
        flooder_key, keys = keys[-1], keys[:-1]
        base = stack.start_web()
        stack.start_run_queue()
        daphne = next(iter(stack.web.values())).pid
        item = int(stack.shell("from orders.models import MenuItem; print(MenuItem.objects.first().pk)").strip())
        crowd = Customers(base, keys)
        await crowd.connect_all()
        start = datetime.now(timezone.utc) + timedelta(seconds=8 + alerts / 100)
        dues = [start + timedelta(seconds=window * n / alerts) for n in range(alerts)]
        gate = asyncio.Semaphore(50)

        async def place(n):
            async with gate:
                return await crowd.place(n, item, dues[n])

        orders = await asyncio.gather(*(place(n) for n in range(alerts)))
        if datetime.now(timezone.utc) >= start - timedelta(seconds=2):
            raise RuntimeError("placing took longer than the margin; lower --alerts")
        order_ids = {order["id"] for order in orders}
        watch = MemoryWatch(daphne)
        rss_before = watch.rss()
        await asyncio.sleep(max(0.0, start.timestamp() - 2 - time.time()))
        flood_seconds = window + 4
        flooder = subprocess.Popen(
            [sys.executable, "-m", FLOOD, base, flooder_key, str(flood_seconds)], stdout=subprocess.PIPE, text=True
        )
        with watch:
            deadline = dues[-1].timestamp() + 30
            while len(crowd.received) < alerts and time.time() < deadline:
                await asyncio.sleep(0.05)
            flood = await asyncio.to_thread(flooder.communicate, timeout=flood_seconds + 60)
            flood_ended = time.monotonic()
            await asyncio.sleep(3)  # room for duplicates to show
        lateness_ms = [(min(times) - crowd.due[order_id]) * 1000 for order_id, times in crowd.received.items()]
        duplicates = sum(len(times) - 1 for times in crowd.received.values())
        await crowd.close()
        await asyncio.sleep(max(0.0, settle_seconds - (time.monotonic() - flood_ended)))
        frames, sockets, closes = flood[0].split()[:3]
        return {
            "customers": customers, "alerts": alerts, "window_s": window,
            "lost": len(order_ids - set(crowd.received)), "duplicates": duplicates,
            "lateness_ms": percentiles(lateness_ms),
            "flood_frames": int(frames), "flood_sockets": int(sockets), "flood_close_codes": closes,
            "rss_mb": {"before": round(rss_before / MB), "peak": round(watch.peak / MB),
                       f"after_{settle_seconds:.0f}s": round(watch.rss() / MB)},
        }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--window", type=float, default=1.0, help="seconds the alerts are due over")
    parser.add_argument("--runs", type=int, default=1)
    load.add_argument(parser)
    args = parser.parse_args()
    raise_file_limit()
    runs = []
    with load.background_load(args.background_load):
        for _ in range(args.runs):
            runs.append(asyncio.run(measure(customers=args.customers, alerts=args.alerts, window=args.window)))
    rows = [
        {**{k: r["lateness_ms"][k] for k in ("p50", "p99", "max")}, "lost": r["lost"], "dup": r["duplicates"],
         "flood_frames": r["flood_frames"], "flood_sockets": r["flood_sockets"], "closes": r["flood_close_codes"],
         **{f"rss_{k}_mb": v for k, v in r["rss_mb"].items()}}
        for r in runs
    ]
    print_table(
        f"Honest customers' alert lateness (ms) while one socket floods, {args.customers} customers, "
        f"background load {args.background_load}", rows, list(rows[0]),
    )
    print(f"results: {write_results('noisy_neighbour', {'background_load': args.background_load, 'runs': runs})}")


if __name__ == "__main__":
    main()
