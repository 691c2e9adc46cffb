"""Web Push throughput: N alerts due at once, each owed to one subscription, sent by one run_queue.

    .venv/bin/python -m bench.web_push                      # 5,000 alerts, background load 1
    .venv/bin/python -m bench.web_push --alerts 2000 --background-load 0 --decrypt

The push service is the test suite's stand-in (tests/push_service.py) in a
process of its own on loopback: it verifies every VAPID signature and, with
--decrypt, decrypts every payload too (that costs the shared CPU as much as
the sending does; without it the figure is the sender's). The alerts are
written in bulk as already sent to sockets and never acknowledged (a phone
in a pocket), so run_queue's only work is Web Push: claim, encrypt, sign
(one VAPID signature per push service an hour), POST, write down the answer.
Rate = accepted messages over the time from the first to the last.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter

import psutil

from bench import load
from bench.common import bench_database, print_table, start_stack, write_results
from tests.push_service_process import push_service_process

_BULK = """
import json
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from notifications.models import Alert, PushSubscription, WebPush
from orders.models import Order
from orders.services import format_pickup_code
now = timezone.now()
subscriptions = json.load(open({path!r}))
orders = Order.objects.bulk_create(
    (Order(customer_id=f"push{{n}}", pickup_code=format_pickup_code(n + 1), pickup_date=now.date(), pickup_at=now,
           status=Order.Status.READY, ready_at=now, processed_at=now, total=Decimal("6.00"))
     for n in range(len(subscriptions))), batch_size=2000)
alerts = Alert.objects.bulk_create(
    (Alert(order=order, kind=Alert.Kind.PICKUP, customer_id=order.customer_id, due_at=now, sent_at=now, send_count=1)
     for order in orders), batch_size=2000)
stored = PushSubscription.objects.bulk_create(
    (PushSubscription(customer_id=f"push{{n}}", endpoint=info["endpoint"], **info["keys"])
     for n, info in enumerate(subscriptions)), batch_size=2000)
WebPush.objects.bulk_create(
    (WebPush(alert=alert, subscription=subscription, send_after=now) for alert, subscription in zip(alerts, stored)),
    batch_size=2000)
print(WebPush.objects.count())
"""


def _per_cpu_second(service, processes: list[psutil.Process], alerts: int) -> list[int | None]:
    """Wait for every alert; return, for each process, the alerts sent per second of its own CPU time.

    Counted from the first accepted message to the last (start-up excluded),
    user and system time of all its threads: a figure of each side's cost
    that does not move with what else the machine is doing, beside the rate,
    which does.
    """
    deadline = time.monotonic() + 600
    first: tuple[int, list[float]] | None = None
    while time.monotonic() < deadline:
        accepted = service.counts()["accepted"]
        if first is None and accepted:
            first = (accepted, [_cpu_seconds(process) for process in processes])
        if accepted >= alerts:
            break
        time.sleep(0.02)
    else:
        return [None for _ in processes]
    used = [_cpu_seconds(process) - before for process, before in zip(processes, first[1])]
    return [round((accepted - first[0]) / seconds) if seconds > 0 else None for seconds in used]


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measure(alerts: int, *, decrypt: bool, postgres: bool) -> dict:
    with push_service_process(decrypt=decrypt) as service, bench_database(postgres) as database:
        stack = start_stack(database)
        try:
            path = stack.dir / "subscriptions.json"
            path.write_text(json.dumps([service.new_subscription().info() for _ in range(alerts)]))
            stack.shell(_BULK.format(path=str(path)), timeout=900)
            load_average = os.getloadavg()[0]
            worker = psutil.Process(stack.start_run_queue("--interval", "0.2").pid)
            sender_cpu, service_cpu = _per_cpu_second(service, [worker, psutil.Process(service.pid)], alerts)
            received = service.received()
            requests = service.requests()
        finally:
            stack.stop()
    times = sorted(request.received_at for request in received)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    per_topic = Counter(request.topic for request in received)
    return {
        "alerts": alerts, "decrypt": decrypt, "database": "postgresql" if postgres else "sqlite",
        "accepted": len(received), "requests": len(requests), "seconds": round(span, 2),
        "alerts_per_second": round((len(times) - 1) / span) if span else None,
        "per_sender_cpu_second": sender_cpu, "per_service_cpu_second": service_cpu, "load_average": round(load_average, 1),
        "doubled": sum(1 for count in per_topic.values() if count > 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--decrypt", action="store_true", help="the stand-in decrypts every payload too")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (PICKUP_TEST_POSTGRES_URL) instead of SQLite")
    load.add_argument(parser)
    args = parser.parse_args()
    with load.background_load(args.background_load):
        runs = [measure(args.alerts, decrypt=args.decrypt, postgres=args.postgres) for _ in range(args.runs)]
    print_table(f"Web Push from one run_queue, background load {args.background_load}", runs,
                ["alerts", "database", "decrypt", "load_average", "accepted", "requests", "doubled", "seconds",
                 "alerts_per_second", "per_sender_cpu_second", "per_service_cpu_second"])
    print(f"results: {write_results('web_push', {'background_load': args.background_load, 'runs': runs})}")


if __name__ == "__main__":
    main()
