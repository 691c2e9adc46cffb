"""What orders, sockets and run_queue count for /metrics (pickup/metrics.py serves them)."""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally

from django.conf import settings
from django.db import transaction
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from orders import kitchen_queue
from pickup.errors import PickupError
from pickup.metrics import LATENCY_BUCKETS

logger = logging.getLogger(__name__)

orders_placed = Counter("pickup_orders_placed_total", "Orders placed (paid and stored).")
orders_refused = Counter(
    "pickup_orders_refused_total",
    "Orders refused when placed, by reason: the PickupError code the customer got (slot_full, rate_limited, …).",
    ["reason"],
)
# Added up over the processes that are running; a dead process's sockets drop out.
sockets_open = Gauge(
    "pickup_sockets_open", "WebSockets open, by kind (customer, kitchen, board).", ["kind"], multiprocess_mode="livesum"
)
customer_sockets = sockets_open.labels("customer")
kitchen_sockets = sockets_open.labels("kitchen")
board_sockets = sockets_open.labels("board")  # counter screens
# Counted by pickup/websocket_pacing.py as daphne reads frames, before any consumer.
frames_dropped = Counter(
    "pickup_websocket_frames_dropped_total",
    "Frames of sockets over their message budget dropped as they were read (the first over it goes on to be answered).",
)
sockets_closed_flooding = Counter(
    "pickup_websocket_flooding_closed_total", "Sockets closed with 4429 for flooding, as their frames were read."
)
run_queue_pass = Histogram(
    "pickup_run_queue_pass_seconds",
    "How long one run_queue pass took (kitchen work and alert sweeps), idle passes included.",
    buckets=LATENCY_BUCKETS,
)

# An order still queued this long after its pickup time has waited for run_queue
# longer than the kitchen's own delay (PICKUP_KITCHEN_DELAY_MS) and a pass allow.
OVERDUE_MS = 10_000


def count_placement(results: list) -> None:
    """Count one batch of placements: refusals now, placed orders once they are committed."""
    refused = Tally(result.code for result in results if isinstance(result, PickupError))
    for reason, count in refused.items():
        orders_refused.labels(reason).inc(count)
    placed = len(results) - sum(refused.values())
    if placed:
        transaction.on_commit(lambda: orders_placed.inc(placed))


class KitchenQueueDepth:
    """Read at scrape time from the sorted set: one reading, however many workers run."""

    def collect(self):
        overdue_before_ms = int(time.time() * 1000) - max(OVERDUE_MS, settings.PICKUP_KITCHEN_DELAY_MS)
        try:
            queued, overdue = kitchen_queue.depth(overdue_before_ms=overdue_before_ms)
        except Exception as error:  # Redis is away: the other figures still go out
            logger.warning("metrics: could not read the kitchen queue (%s)", error.__class__.__name__)
            return
        yield GaugeMetricFamily("pickup_kitchen_queue_orders", "Orders in the kitchen queue (Redis), not yet claimed by run_queue.", value=queued)
        yield GaugeMetricFamily(
            "pickup_kitchen_queue_overdue_orders",
            f"Orders in the kitchen queue whose pickup time passed more than {OVERDUE_MS // 1000} s ago (0 unless run_queue is behind or down).",
            value=overdue,
        )
