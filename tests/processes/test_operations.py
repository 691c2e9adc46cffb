"""What an operator reads from real processes: one /metrics for every process, readiness that follows Redis, JSON logs."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest

from pickup.testing import Stack, metric_samples
from tests.processes.clients import Customer, menu_item_id, pickup_at, session_cookie, session_key, wait_until
from tests.processes.orders_in_bulk import fall_due, place_orders
from tests.processes.records import all_acknowledged, all_sent, first_push_senders, processed_count

pytestmark = pytest.mark.processes


@pytest.fixture
def stack_settings():
    # A web server arms the timers of its customers' pending alerts when they
    # connect and then only every quarter of this: an alert brought forward in
    # the database during the test reaches run_queue alone.
    return {"PICKUP_TIMER_HORIZON_SECONDS": 3600}



def by_sender(page: dict, name: str) -> dict[str, float]:
    return {labels[0][1]: value for (sample, labels), value in page.items() if sample == name and len(labels) == 1}


def finished_passes(stack: Stack, web: str) -> float:
    return metric_samples(stack.metrics(web)).get(("pickup_run_queue_pass_seconds_count", ()), 0)


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_metrics_add_up_what_the_web_server_and_run_queue_pushed(stack):
    web = stack.start_web()
    cookie = session_cookie(web)
    customer = Customer(web, cookie)
    await customer.connect()
    # Placed on the customer's socket, before any run_queue runs: the web server's timers push them.
    # Their timers are armed as they are placed (a move in the database would reach run_queue alone,
    # see stack_settings), so the due time has room for placing three on a busy machine.
    item = await asyncio.to_thread(menu_item_id, web)
    placed = await customer.place_orders(item, 3, at=pickup_at(3.0))
    by_timers = [order["id"] for order in placed]
    await wait_until(lambda: all_sent(stack, by_timers), 30, "the web server's timers to push their alerts")
    # Not armed by the web server (placed elsewhere, half an hour ahead); brought forward with run_queue running.
    by_worker = await asyncio.to_thread(place_orders, stack, session_keys=[session_key(cookie)], count=2, due_in=None)
    stack.start_run_queue("--interval", "0.5")
    await asyncio.to_thread(fall_due, stack, by_worker, first_in=0)
    await customer.wait_until_shown(5, timeout=30)
    await wait_until(lambda: all_acknowledged(stack, by_timers + by_worker), 30, "the tab's acknowledgements to be recorded")
    await wait_until(lambda: processed_count(stack, by_timers + by_worker) == 5, 30, "run_queue to make all five ready")
    # A pass is counted once it has finished: the one that made them ready may still be pushing.
    await wait_until(lambda: finished_passes(stack, web) >= 1, 30, "run_queue's pass to be counted")

    page = metric_samples(await asyncio.to_thread(stack.metrics, web))

    # The logs say who pushed each alert first; the one scrape of the web server says the same for both processes.
    assert first_push_senders(stack) == {"timer": 3, "run_queue": 2}
    assert by_sender(page, "pickup_alert_first_pushes_total") == {"timer": 3, "run_queue": 2}
    assert by_sender(page, "pickup_alert_lateness_seconds_count") == {"timer": 3, "run_queue": 2}
    delivered_by_worker = page[("pickup_alert_pushes_total", (("outcome", "delivered"), ("sender", "run_queue"), ("transport", "socket")))]
    assert delivered_by_worker >= 2
    assert page[("pickup_alerts_acknowledged_total", ())] == 5
    assert page[("pickup_orders_placed_total", ())] == 5  # three by the web server, two by a shell, now ended
    assert page[("pickup_sockets_open", (("kind", "customer"),))] == 1
    assert page[("pickup_run_queue_pass_seconds_count", ())] >= 1
    assert page[("pickup_kitchen_queue_orders", ())] == 0

    # kill -9: the dead server's counts stay, its open socket does not.
    stack.kill_web(int(web.rsplit(":", 1)[1]))
    await customer.disconnect()
    after = metric_samples(stack.metrics(stack.start_web()))
    assert by_sender(after, "pickup_alert_first_pushes_total") == {"timer": 3, "run_queue": 2}
    assert after[("pickup_sockets_open", (("kind", "customer"),))] == 0


async def test_ready_while_redis_answers_not_while_it_is_stopped_and_alive_throughout(stack):
    web = stack.start_web()
    answers = []
    await wait_until(lambda: answers.append(get(web + "/readyz")) or answers[-1][0] == 200, 30, lambda: f"ready: {answers[-1]}")
    assert answers[-1][1] == {"status": "ready", "failed": [], "checks": {"database": "ok", "redis": "ok", "process": "ok"}}

    stack.redis.stop()
    status, body = get(web + "/readyz")
    assert status == 503 and "redis" in body["failed"], body
    assert body["checks"]["redis"] != "ok"
    assert get(web + "/healthz") == (200, {"status": "alive"})  # nothing to restart: it waits for Redis

    stack.redis.start()
    await wait_until(lambda: get(web + "/readyz")[0] == 200, 30, "the web server to be ready again")


async def test_with_json_logs_every_line_of_every_process_is_one_json_object(tmp_path, prepared_database):
    with Stack(log_dir=str(tmp_path), env={"LOG_FORMAT": "json"}) as stack:
        stack.prepare(template=prepared_database)
        order_ids = place_orders(stack, count=2, due_in=0.5)
        stack.start_web()  # pushes their alerts as it starts
        stack.start_run_queue("--interval", "0.5")
        await wait_until(lambda: processed_count(stack, order_ids) == 2, 30, "run_queue to make both orders ready")
        await wait_until(lambda: all_sent(stack, order_ids), 30, "both alerts to be pushed")
    # Stopped: every line is written.
    lines = [line for log in sorted(tmp_path.glob("*.log")) for line in log.read_text().splitlines() if line]

    records = [json.loads(line) for line in lines]  # each line, whole
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    loggers = {record["logger"] for record in records}
    assert {"pickup.run_queue", "notifications.delivery", "daphne.server"} <= loggers, loggers
