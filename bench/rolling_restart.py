"""Alert lateness through a rolling restart: every process stopped by SIGTERM and started again, during a rush.

    .venv/bin/python -m bench.rolling_restart
    .venv/bin/python -m bench.rolling_restart --customers 200 --alerts 400 --window 20

Two web servers and two run_queue workers; C customers, half on each web
server, reconnecting to the other one when theirs closes (as behind a load
balancer). N orders are placed over their sockets, due evenly over W
seconds. In the "rolling restart" run each process in turn (web 1, web 2,
run_queue 1, run_queue 2) gets SIGTERM at an even step of the window and is
started again once it has exited; the "steady" run restarts nothing. The
figure is what the restart adds: lateness from each alert's due time to its
first arrival on one of its customer's sockets, alerts lost, and alerts
that arrived more than once (replay and push; the page shows them once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import websockets

from bench import load
from bench.common import create_sessions, percentiles, print_table, raise_file_limit, start_stack, write_results


class Crowd:
    """Customers that stay connected to one of the web servers, acknowledging every alert."""

    def __init__(self, servers: list[str], session_keys: list[str]):
        self.servers = servers
        self.session_keys = session_keys
        self.sockets: dict[int, object] = {}
        self.arrivals: dict[int, list[float]] = {}  # alert id -> arrival times
        self.due: dict[int, float] = {}
        self.close_codes: Counter = Counter()
        self.replies: dict[str, asyncio.Future] = {}
        self.closing = False
        self.tasks = [asyncio.create_task(self._stay_connected(n, key)) for n, key in enumerate(session_keys)]

    async def _stay_connected(self, index: int, key: str) -> None:
        server = index % len(self.servers)
        while not self.closing:
            base = self.servers[server]
            try:
                socket = await websockets.connect(
                    base.replace("http://", "ws://") + "/ws/customer/",
                    additional_headers={"Cookie": f"sessionid={key}", "Origin": base}, max_queue=None, ping_interval=None,
                )
            except (OSError, websockets.InvalidHandshake):
                server = (server + 1) % len(self.servers)
                await asyncio.sleep(0.05)
                continue
            self.sockets[index] = socket
            try:
                async for raw in socket:
                    self._receive(socket, json.loads(raw))
            except websockets.ConnectionClosed:
                pass
            self.sockets.pop(index, None)
            if not self.closing:
                self.close_codes[socket.close_code] += 1
            server = (server + 1) % len(self.servers)  # the load balancer sends it to the other one
            await asyncio.sleep(random.random() * 0.25)  # as the page does (static/orders/socket.js)

    def _receive(self, socket, message: dict) -> None:
        waiting = self.replies.pop(message.get("request_id") or "", None)
        if waiting is not None and not waiting.done():
            waiting.set_result(message)
        if message["type"] == "alert":
            alert = message["alert"]
            self.arrivals.setdefault(alert["id"], []).append(time.time())
            self.due[alert["id"]] = datetime.fromisoformat(alert["due_at"]).timestamp()
            asyncio.ensure_future(socket.send(json.dumps({"type": "alert.ack", "alert_id": alert["id"]})))

    async def place(self, index: int, item: int, due: datetime) -> dict:
        while index not in self.sockets:
            await asyncio.sleep(0.05)
        request_id = f"place-{index}-{time.monotonic_ns()}"
        reply = asyncio.get_running_loop().create_future()
        self.replies[request_id] = reply
        await self.sockets[index].send(json.dumps({
            "type": "order.place", "request_id": request_id, "items": [{"menu_item": item, "quantity": 1}],
            "pickup_at": due.isoformat(),
        }))
        answer = await asyncio.wait_for(reply, 60)
        assert answer["type"] == "order.accepted", answer
        return answer["order"]

    async def close(self) -> None:
        self.closing = True
        for socket in list(self.sockets.values()):
            await socket.close()
        for task in self.tasks:
            task.cancel()


async def measure(*, customers: int, alerts: int, window: float, rolling: bool) -> dict:
    stack = start_stack()
    try:
        keys = create_sessions(stack, customers)
        servers = [stack.start_web(), stack.start_web()]
        for _ in range(2):
            stack.start_run_queue()
        item = int(stack.shell("from orders.models import MenuItem; print(MenuItem.objects.first().pk)").strip())
        crowd = Crowd(servers, keys)
        start = datetime.now(timezone.utc) + timedelta(seconds=8 + alerts / 100)
        dues = [start + timedelta(seconds=window * n / alerts) for n in range(alerts)]
        gate = asyncio.Semaphore(50)

        async def place(n):
            async with gate:
                return await crowd.place(n % customers, item, dues[n])

        await asyncio.gather(*(place(n) for n in range(alerts)))
        if datetime.now(timezone.utc) >= start:
            raise RuntimeError("placing took longer than the margin; lower --alerts")
        stops: list[tuple[str, float, float]] = []  # (process, SIGTERM sent, started again)
        if rolling:
            steps = [("web 1", servers[0]), ("web 2", servers[1]), ("run_queue 1", 0), ("run_queue 2", 1)]
            for n, (name, which) in enumerate(steps, start=1):
                await asyncio.sleep(max(0.0, start.timestamp() + window * n / (len(steps) + 1) - time.time()))
                signalled = time.time()
                await asyncio.to_thread(_restart, stack, name.split()[0], which)
                stops.append((name, signalled, time.time()))
        deadline = dues[-1].timestamp() + 30
        while len(crowd.arrivals) < alerts and time.time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(3)  # room for duplicates to show
        late = {alert_id: (crowd.due[alert_id], (min(times) - crowd.due[alert_id]) * 1000) for alert_id, times in crowd.arrivals.items()}
        lateness_ms = [ms for _due, ms in late.values()]
        await crowd.close()
        return {
            "run": "rolling restart" if rolling else "steady", "customers": customers, "alerts": alerts, "window_s": window,
            "lost": alerts - len(crowd.arrivals),
            "arrived_twice": sum(1 for times in crowd.arrivals.values() if len(times) > 1),
            "closed_1012": crowd.close_codes.get(1012, 0), "closed_otherwise": sum(crowd.close_codes.values()) - crowd.close_codes.get(1012, 0),
            "lateness_ms": percentiles(lateness_ms),
            # The worst alert due from each SIGTERM until the process was up again, and in the 3 s after.
            "around_each_stop": [
                {
                    "process": name, "restart_s": round(up - signalled, 2),
                    "max_ms_while_down": max((ms for due, ms in late.values() if signalled <= due < up), default=None),
                    "max_ms_3s_after": max((ms for due, ms in late.values() if up <= due < up + 3), default=None),
                }
                for name, signalled, up in stops
            ],
        }
    finally:
        stack.stop()


def _restart(stack, kind: str, which) -> None:
    """SIGTERM one process, wait for it to exit, start it again (a web server on its own port)."""
    if kind == "web":
        port = int(which.rsplit(":", 1)[1])
        stack.kill_web(port, signal.SIGTERM)
        stack.start_web(port)
        return
    worker = stack.workers[which]  # the restarted ones are appended after the first two
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    stack.start_run_queue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--alerts", type=int, default=400)
    parser.add_argument("--window", type=float, default=20.0, help="seconds the alerts fall due over")
    load.add_argument(parser)
    args = parser.parse_args()
    raise_file_limit()
    runs = []
    for rolling in (False, True):
        with load.background_load(args.background_load):
            runs.append(asyncio.run(measure(customers=args.customers, alerts=args.alerts, window=args.window, rolling=rolling)))
    rows = [{"run": r["run"], "alerts": r["alerts"], **{k: r["lateness_ms"][k] for k in ("p50", "p90", "p99", "max")},
             "lost": r["lost"], "twice": r["arrived_twice"], "1012": r["closed_1012"], "other": r["closed_otherwise"]} for r in runs]
    print_table(f"Alert lateness through a rolling restart (ms), background load {args.background_load}", rows,
                ["run", "alerts", "p50", "p90", "p99", "max", "lost", "twice", "1012", "other"])
    for run in runs:
        for stop in run["around_each_stop"]:
            print("  ", stop)
    print(f"results: {write_results('rolling_restart', {'background_load': args.background_load, 'runs': runs})}")


if __name__ == "__main__":
    main()
