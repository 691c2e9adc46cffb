"""Alert lateness: from each alert's due time to its arrival on the customer's WebSocket.

    .venv/bin/python -m bench.lateness                       # both shapes, both paths
    .venv/bin/python -m bench.lateness --shape burst --path run_queue --customers 200 --alerts 200

C customers connect; N orders are placed over their sockets, due evenly over
W seconds (spread) or all at one instant (burst). "timers" is the normal
system (web timers and run_queue both running, the claim decides); "run_queue"
turns the web timers off (the setting PICKUP_WEB_TIMERS), as after a web crash:
run_queue then pushes at the due time itself (after a real crash it first
leaves PICKUP_RUN_QUEUE_GRACE_MS to the dead timers, docs/delivery.md) and
makes the orders ready PICKUP_KITCHEN_DELAY_MS later, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import datetime, timedelta, timezone

import psutil
import websockets

from bench import core_time, load
from bench.common import Profile, cpu_seconds, create_sessions, percentiles, print_table, raise_file_limit, start_stack, write_results
from pickup.testing import metric_samples


class Customers:
    def __init__(self, base_url: str, session_keys: list[str]):
        self.base_url = base_url
        self.session_keys = session_keys
        self.sockets: list = []
        self.received: dict[int, list[float]] = {}  # order id -> arrival times
        self.due: dict[int, float] = {}
        self.replies: dict[str, asyncio.Future] = {}
        self.tasks: list[asyncio.Task] = []

    async def connect_all(self, concurrency: int = 100) -> None:
        ws_url = self.base_url.replace("http://", "ws://") + "/ws/customer/"
        gate = asyncio.Semaphore(concurrency)

        async def one(key: str):
            async with gate:
                socket = await websockets.connect(
                    ws_url, additional_headers={"Cookie": f"sessionid={key}", "Origin": self.base_url},
                    max_queue=None, ping_interval=None,
                )
                await socket.recv()  # session.ready
                return socket

        self.sockets = list(await asyncio.gather(*(one(key) for key in self.session_keys)))
        self.tasks = [asyncio.create_task(self.read(socket)) for socket in self.sockets]

    async def read(self, socket) -> None:
        try:
            async for raw in socket:
                arrived = time.time()
                message = json.loads(raw)
                if message["type"] == "alert":
                    alert = message["alert"]
                    self.received.setdefault(alert["order_id"], []).append(arrived)
                    self.due.setdefault(alert["order_id"], datetime.fromisoformat(alert["due_at"]).timestamp())
                    await socket.send(json.dumps({"type": "alert.ack", "alert_id": alert["id"]}))
                elif message.get("request_id") in self.replies:
                    self.replies.pop(message["request_id"]).set_result(message)
        except websockets.ConnectionClosed:
            pass

    async def place(self, index: int, item: int, due: datetime) -> dict:
        socket = self.sockets[index % len(self.sockets)]
        request_id = f"p{index}"
        reply = asyncio.get_running_loop().create_future()
        self.replies[request_id] = reply
        await socket.send(json.dumps({"type": "order.place", "request_id": request_id,
                                      "items": [{"menu_item": item, "quantity": 1}], "pickup_at": due.isoformat()}))
        message = await asyncio.wait_for(reply, 60)
        if message["type"] != "order.accepted":
            raise RuntimeError(message)
        return message["order"]

    async def close(self) -> None:
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)
        for task in self.tasks:
            task.cancel()


async def rush(crowd: Customers, item: int, *, alerts: int, shape: str, window: float, before_due=None,
               all_arrived=None) -> dict:
    """Place ``alerts`` orders over the crowd's sockets, due spread over ``window`` or all at once, and wait
    for their alerts: lost, duplicates, early and lateness from due time to arrival on a socket (ms).

    ``before_due``, if given, is called a second before the first alert falls due (to start a profiler
    or a CPU count); ``all_arrived`` once every alert has arrived (or the wait has given up).
    """
    # Leave enough time to place every order before the first falls due.
    start = datetime.now(timezone.utc) + timedelta(seconds=8 + alerts / 100)
    dues = [start + timedelta(seconds=(window * n / alerts) if shape == "spread" else 0) for n in range(alerts)]
    gate = asyncio.Semaphore(50)

    async def place(n):
        async with gate:
            return await crowd.place(n, item, dues[n])

    orders = await asyncio.gather(*(place(n) for n in range(alerts)))
    if datetime.now(timezone.utc) >= start:
        raise RuntimeError("placing took longer than the margin; lower --alerts")
    order_ids = {order["id"] for order in orders}
    if before_due is not None:
        await asyncio.sleep(max(0.0, start.timestamp() - time.time() - 1))
        before_due()
    deadline = dues[-1].timestamp() + 30
    while not order_ids <= set(crowd.received) and time.time() < deadline:
        await asyncio.sleep(0.05)
    if all_arrived is not None:
        all_arrived()
    await asyncio.sleep(3)  # room for duplicates to show
    arrived = {order_id: times for order_id, times in crowd.received.items() if order_id in order_ids}
    lateness_ms = [(min(times) - crowd.due[order_id]) * 1000 for order_id, times in arrived.items()]
    return {
        "alerts": alerts, "window_s": window,
        "lost": len(order_ids - set(arrived)), "duplicates": sum(len(times) - 1 for times in arrived.values()),
        "early": sum(1 for value in lateness_ms if value < 0),
        "lateness_ms": percentiles(lateness_ms),
    }


# The tests' settings also drop the kitchen delay to 0 when the timers are off
# (tests/settings.py, for quick tests); production keeps it, so that making the
# orders ready does not share the alerts' second: the benchmark keeps it too.
RUN_QUEUE_ALONE = {"PICKUP_WEB_TIMERS": False, "PICKUP_KITCHEN_DELAY_MS": 1000}


async def measure(*, customers: int, alerts: int, shape: str, path: str, window: float, profile: bool = False) -> dict:
    stack = start_stack(settings={"PICKUP_WEB_TIMERS": True} if path == "timers" else RUN_QUEUE_ALONE)
    try:
        keys = create_sessions(stack, customers)
        base = stack.start_web()
        stack.start_run_queue()
        item = int(stack.shell("from orders.models import MenuItem; print(MenuItem.objects.first().pk)").strip())
        crowd = Customers(base, keys)
        await crowd.connect_all()
        spies = []
        # The web server's CPU from a second before the due time (the timers
        # claim ahead) until every alert arrived: unlike lateness, a figure
        # the rest of the machine barely moves, to compare commits with.
        daphne = psutil.Process(next(iter(stack.web.values())).pid)
        daphne_cpu = []
        event_loop = core_time.EventLoopTrace(daphne.pid) if core_time.available(daphne.pid) else None

        def before_due():
            daphne_cpu.append(cpu_seconds(daphne))
            if event_loop is not None:
                event_loop.start()
            if profile:
                pids = {"daphne": daphne.pid, "run_queue": stack.workers[0].pid, "client": os.getpid()}
                spies.append(Profile(f"{path}-{shape}", pids, seconds=window + 1.5))

        def all_arrived():
            daphne_cpu.append(cpu_seconds(daphne))
            if event_loop is not None:
                event_loop.stop()

        delivered = await rush(crowd, item, alerts=alerts, shape=shape, window=window, before_due=before_due,
                               all_arrived=all_arrived)
        first_pushes = first_pushes_by_sender(stack.metrics(base))
        await crowd.close()
        for spy in spies:
            spy.finish()
        return {
            "shape": shape, "path": path, "customers": customers, **delivered,
            "first_pushes": first_pushes,
            "daphne_cpu_ms": round((daphne_cpu[1] - daphne_cpu[0]) * 1000, 1),
            "by_timers_percent": round(100 * first_pushes["timer"] / max(1, sum(first_pushes.values())), 1),
            **(where_the_time_went(event_loop, crowd) if event_loop is not None else {}),
        }
    finally:
        stack.stop()


def where_the_time_went(event_loop: core_time.EventLoopTrace, crowd: Customers) -> dict:
    """The web server's event loop from due time to arrival (bench/core_time.py): lateness counted in its
    CPU, and how long, from the first due time to the last arrival, it waited for a core."""
    arrivals = {order_id: min(times) for order_id, times in crowd.received.items()}
    cpu_to_arrival = [event_loop.between(crowd.due[order_id], arrived)[0] for order_id, arrived in arrivals.items()]
    first_due, last_arrival = min(crowd.due.values()), max(arrivals.values())
    cpu, waiting = event_loop.between(first_due, last_arrival)
    return {
        "cpu_to_arrival_ms": percentiles(cpu_to_arrival),
        "event_loop_window_ms": {"wall": round((last_arrival - first_due) * 1000, 1), "cpu": round(cpu, 1),
                                 "waiting_for_a_core": round(waiting, 1)},
    }


def first_pushes_by_sender(metrics: str) -> dict[str, int]:
    """Alerts first pushed by the web timers and by run_queue, as /metrics counts them (all processes)."""
    counts = {"timer": 0, "run_queue": 0}  # the senders notifications/metrics.py names
    for (name, labels), value in metric_samples(metrics).items():
        if name == "pickup_alert_first_pushes_total":
            counts[dict(labels)["sender"]] += int(value)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--window", type=float, default=1.0, help="seconds the spread shape spreads over")
    parser.add_argument("--shape", choices=["spread", "burst", "both"], default="both")
    parser.add_argument("--path", choices=["timers", "run_queue", "both"], default="both")
    parser.add_argument("--profile", action="store_true", help="sample daphne and run_queue with py-spy around the due time")
    load.add_argument(parser)
    args = parser.parse_args()
    raise_file_limit()
    shapes = ["spread", "burst"] if args.shape == "both" else [args.shape]
    paths = ["timers", "run_queue"] if args.path == "both" else [args.path]
    runs = []
    for path in paths:
        for shape in shapes:
            with load.background_load(args.background_load):
                runs.append(asyncio.run(measure(customers=args.customers, alerts=args.alerts, shape=shape, path=path,
                                                 window=args.window, profile=args.profile)))
    rows = [{"path": r["path"], "shape": r["shape"], "alerts": r["alerts"], **{k: r["lateness_ms"][k] for k in ("p50", "p90", "p99", "max")},
             "lost": r["lost"], "dup": r["duplicates"], "early": r["early"], "by_timers_%": r["by_timers_percent"],
             "daphne_cpu_ms": r["daphne_cpu_ms"],
             "cpu_to_arrival_p50": r.get("cpu_to_arrival_ms", {}).get("p50"),
             "cpu_to_arrival_max": r.get("cpu_to_arrival_ms", {}).get("max"),
             "waited_for_core_ms": r.get("event_loop_window_ms", {}).get("waiting_for_a_core")}
            for r in runs]
    print_table(f"Alert lateness, due time → arrival on the customer's socket (ms), background load {args.background_load}", rows,
                ["path", "shape", "alerts", "p50", "p90", "p99", "max", "lost", "dup", "early", "by_timers_%", "daphne_cpu_ms",
                 "cpu_to_arrival_p50", "cpu_to_arrival_max", "waited_for_core_ms"])
    print("cpu_to_arrival: the web server's event-loop CPU between an alert's due time and its arrival; "
          "waited_for_core: the event loop ready to run with no core free, first due time to last arrival (bench/core_time.py)")
    print(f"results: {write_results('lateness', {'background_load': args.background_load, 'runs': runs})}")


if __name__ == "__main__":
    main()
