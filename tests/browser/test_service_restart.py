"""A page whose server says it is restarting (close code 1012) reconnects at once, without backoff.

A web server that gets SIGTERM closes its sockets with 1012, "service
restart" (pickup/graceful_stop.py); the page then opens a new socket within
a quarter second of jitter, where any other drop waits out its backoff
(half a second, doubling). The page's clock is paused and run forward by
hand, so nothing waits on the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE

pytestmark = pytest.mark.browser

SERVICE_RESTART = 1012
# Longer than a restart's jitter, shorter than the backoff's first wait.
JITTER_MS = 260


class Sockets:
    """Every customer socket the page opens, passed through to the real server."""

    def __init__(self, page) -> None:
        self.page = page
        self.opened = []
        page.route_web_socket("**/ws/customer/", self._route)

    def _route(self, socket) -> None:
        socket.connect_to_server()
        self.opened.append(socket)

    def wait_for(self, count: int) -> None:
        for _ in range(100):
            if len(self.opened) >= count:
                return
            self.page.wait_for_timeout(100)
        assert len(self.opened) >= count


def test_a_page_told_its_server_is_restarting_reconnects_at_once(browser, site):
    context = browser.new_context(viewport=PHONE, locale="en-US")
    context.clock.install()
    page = context.new_page()
    # Paused before the page opens (an installed clock still flows), a minute ahead so the
    # jump is never into the past, however late the browser hears of it.
    page.clock.pause_at(datetime.now() + timedelta(minutes=1))
    sockets = Sockets(page)
    page.goto(site.base_url + "/")
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "connected", timeout=10_000)
    sockets.wait_for(1)

    sockets.opened[0].close(code=SERVICE_RESTART, reason="service restart")
    expect(connection).to_have_attribute("data-state", "offline", timeout=10_000)
    page.clock.run_for(JITTER_MS)
    sockets.wait_for(2)
    expect(connection).to_have_attribute("data-state", "connected", timeout=10_000)

    # Any other drop still waits out the backoff.
    sockets.opened[1].close(code=4000, reason="something else")
    expect(connection).to_have_attribute("data-state", "offline", timeout=10_000)
    page.clock.run_for(JITTER_MS)
    page.wait_for_timeout(500)
    assert len(sockets.opened) == 2
    page.clock.run_for(1000)
    sockets.wait_for(3)
    expect(connection).to_have_attribute("data-state", "connected", timeout=10_000)
    context.close()
