"""run_queue drain rate: N orders all due, processed by one or two run_queue workers.

    .venv/bin/python -m bench.drain                 # 100,000 orders, 1 and 2 workers
    .venv/bin/python -m bench.drain --orders 10000 --workers 2

The orders (and their kitchen-queue entries) are written in bulk straight
into the stack's database and Redis, already due, without alerts, so this
measures the kitchen-queue work alone: claim, compare-and-set, log.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter

from bench import load
from bench.common import print_table, start_stack, write_results

_READY = re.compile(r"\(id (\d+)\): ready,")

_BULK = """
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from orders import kitchen_queue
from orders.models import Order
from orders.services import format_pickup_code
due = timezone.now() - timedelta(seconds=1)
Order.objects.bulk_create(
    (Order(customer_id=f"drain{{n}}", pickup_code=format_pickup_code(n + 1), pickup_date=due.date(), pickup_at=due,
           status=Order.Status.QUEUED, total=Decimal("6.00")) for n in range({count})), batch_size=2000)
kitchen_queue.rebuild(list(Order.objects.values_list("pk", "pickup_at")))
print(Order.objects.count())
"""


def measure(orders: int, workers: int) -> dict:
    stack = start_stack({"LOG_LEVEL": "INFO"})
    try:
        stack.shell(_BULK.format(count=orders), timeout=900)
        started = time.monotonic()
        for _ in range(workers):
            stack.start_run_queue("--interval", "0.2", "--batch", "500")
        while True:
            done = int(stack.shell("from orders.models import Order; print(Order.objects.filter(processed_at__isnull=False).count())"))
            if done >= orders or time.monotonic() - started > 1800:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        counts = Counter(_READY.findall(stack.logs(full=True)))
        return {"orders": orders, "workers": workers, "seconds": round(elapsed, 2),
                "orders_per_second": round(done / elapsed), "processed": done,
                "processed_twice": sum(1 for n in counts.values() if n > 1)}
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--workers", type=int, choices=[1, 2], default=None, help="default: 1 then 2")
    load.add_argument(parser)
    args = parser.parse_args()
    with load.background_load(args.background_load):
        runs = [measure(args.orders, workers) for workers in ([args.workers] if args.workers else [1, 2])]
    print_table(f"run_queue drain (time includes worker start-up, ~1 s), background load {args.background_load}", runs,
                ["orders", "workers", "seconds", "orders_per_second", "processed", "processed_twice"])
    print(f"results: {write_results('drain', {'background_load': args.background_load, 'runs': runs})}")


if __name__ == "__main__":
    main()
