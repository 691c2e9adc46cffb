"""SIGTERM stops a web server gracefully: its pages are told to reconnect
elsewhere (close code 1012), and nothing it held waits for a lease.

docs/delivery.md, "Graceful stop", states the promise these tests prove.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta

import pytest

from pickup.graceful_stop import CLOSE_SERVICE_RESTART
from tests.processes.clients import Customer, session_cookie, session_key, wait_until
from tests.processes.orders_in_bulk import fall_due, place_orders
from tests.processes.records import (
    alert_claims,
    all_acknowledged,
    kitchen_queue_leases,
    logged_first_pushes,
    logged_ready_counts,
    pickup_alerts,
    processed_count,
)

pytestmark = pytest.mark.processes


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


async def stop_web(stack, base_url: str) -> int:
    """SIGTERM, as systemd or a rolling deploy sends it; the exit code once the process is gone.

    Waited for on a thread: the customers' sockets must go on reading meanwhile.
    """
    process = stack.web[port_of(base_url)]
    await asyncio.to_thread(stack.kill_web, port_of(base_url), signal.SIGTERM)
    return process.returncode


async def test_sigterm_closes_every_socket_with_service_restart_and_pages_come_back_elsewhere(stack):
    stopping = stack.start_web()
    staying = stack.start_web()  # behind the same load balancer
    customers = [Customer(stopping, session_cookie(stopping), elsewhere=(staying,)) for _ in range(5)]
    for customer in customers:
        await customer.connect()

    assert await stop_web(stack, stopping) == 0

    await wait_until(lambda: all(customer.close_codes for customer in customers), 10, "every page to see its socket close")
    assert [customer.close_codes for customer in customers] == [[CLOSE_SERVICE_RESTART]] * 5
    await wait_until(lambda: all(customer.reconnects == 1 for customer in customers), 20, "every page to reconnect")
    for customer in customers:
        assert customer.base_url == staying
        await customer.ping()
        await customer.disconnect()


async def stop_run_queue(stack, n: int) -> int:
    worker = stack.workers[n]
    worker.send_signal(signal.SIGTERM)
    await asyncio.to_thread(worker.wait, 30)
    return worker.returncode


async def restart(stack, stop, start) -> None:
    """Stop one process by SIGTERM (it must exit 0) and start it again; none of its claims may outlive it."""
    held, leased = alert_claims(stack), kitchen_queue_leases(stack)
    assert await stop() == 0
    await asyncio.to_thread(start)  # the pages go on reading and acknowledging meanwhile

    def left_behind() -> set:
        alerts = {alert_id for alert_id, token in alert_claims(stack).items() if held.get(alert_id) == token}
        return alerts | (kitchen_queue_leases(stack) & leased)

    # Another process's claims in ``held`` end as it pushes them (the rush is
    # due within seconds); the stopped process's would last two hours.
    await wait_until(lambda: not left_behind(), 60, lambda: f"claims {left_behind()} to be released")


class TestRollingRestart:
    """Every process stopped by SIGTERM and started again, one by one, while orders fall due.

    Leases last two hours, and the web timers claim an hour ahead: a claim
    a stopped process left behind would hold its alert (or order) past the
    end of the test, so each one that arrives was handed back, not waited out.
    """

    ORDERS = 40

    @pytest.fixture
    def stack_settings(self):
        return {
            "PICKUP_CLAIM_LEASE_SECONDS": 7200,
            "PICKUP_TIMER_LOOKAHEAD_MS": 3_600_000,
            # Timers re-read the database only on start (and every 150 s): no
            # refill claims what a stopped process released before the test looks.
            "PICKUP_TIMER_HORIZON_SECONDS": 600,
        }

    async def test_a_rolling_restart_during_a_rush_shows_every_alert_once_and_leaves_no_claim_behind(self, stack):
        first = stack.start_web()
        cookies = [session_cookie(first) for _ in range(6)]
        order_ids = place_orders(stack, session_keys=[session_key(cookie) for cookie in cookies], count=self.ORDERS, due_in=None)
        for _ in range(2):
            stack.start_run_queue("--interval", "0.5")
        fall_due(stack, order_ids, first_in=5, step=0.3)  # a rush over the next 17 s
        second = stack.start_web()
        servers = [first, second]
        # Customer n, and order n of every six, on server n % 2.
        customers = [
            Customer(servers[n % 2], cookie, elsewhere=(servers[(n + 1) % 2],)) for n, cookie in enumerate(cookies)
        ]
        for customer in customers:
            await customer.connect()

        # Each web server claims, an hour ahead, the alerts of the customers
        # connected to it (the second one: every other order's). Its claims on
        # alerts not due for a while yet are gone the moment it has exited.
        position = {order_id: n for n, order_id in enumerate(order_ids)}
        theirs = {alert.id for alert in pickup_alerts(stack, order_ids).values() if position[alert.order_id] % 2}
        await wait_until(lambda: theirs & set(alert_claims(stack)), 30, "the second web server to claim its alerts ahead")
        soon = datetime.now(UTC) + timedelta(seconds=2)
        held = {alert_id: token for alert_id, token in alert_claims(stack, due_after=soon).items() if alert_id in theirs}
        assert await stop_web(stack, second) == 0
        assert {alert_id for alert_id, token in alert_claims(stack).items() if held.get(alert_id) == token} == set()
        await asyncio.to_thread(stack.start_web, port_of(second))
        # Then the rest, one by one. Whatever the stopped process held is
        # released (or pushed and written down), so no claim it made is left:
        # with two-hour leases, one it left behind would still be there.
        await restart(stack, lambda: stop_web(stack, first), lambda: stack.start_web(port_of(first)))
        for n in range(2):
            await restart(stack, lambda n=n: stop_run_queue(stack, n), lambda: stack.start_run_queue("--interval", "0.5"))

        owed = pickup_alerts(stack, order_ids)
        await wait_until(lambda: all_acknowledged(stack, order_ids), 60, "every alert to be acknowledged")
        await wait_until(lambda: processed_count(stack, order_ids) == self.ORDERS, 30, "every order made ready")
        pushed_first = await logged_first_pushes(stack, owed)
        assert {alert_id: pushed_first[alert_id] for alert_id in owed} == dict.fromkeys(owed, 1)
        assert await logged_ready_counts(stack, order_ids) == dict.fromkeys(order_ids, 1)
        for customer in customers:
            await customer.ping()
        shown = [alert_id for customer in customers for alert_id in customer.shown]
        assert sorted(shown) == sorted(owed)  # each alert shown once, by its own customer's page
        assert sum(customer.close_codes.count(CLOSE_SERVICE_RESTART) for customer in customers) >= len(customers)
        for customer in customers:
            await customer.disconnect()
