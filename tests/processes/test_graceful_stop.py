"""SIGTERM stops a web server gracefully: its pages are told to reconnect
elsewhere (close code 1012), and nothing it held waits for a lease.

docs/delivery.md, "Graceful stop", states the promise these tests prove.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from pickup.graceful_stop import CLOSE_SERVICE_RESTART
from tests.processes.clients import Customer, session_cookie, wait_until

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

    assert [customer.close_codes for customer in customers] == [[CLOSE_SERVICE_RESTART]] * 5
    await wait_until(lambda: all(customer.reconnects == 1 for customer in customers), 20, "every page to reconnect")
    for customer in customers:
        assert customer.base_url == staying
        await customer.ping()
        await customer.disconnect()
