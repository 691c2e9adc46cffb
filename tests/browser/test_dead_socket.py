"""A socket that stays open but carries nothing is noticed and replaced, on both screens.

A tablet or phone that sleeps, or a proxy that loses the connection, can leave
a WebSocket the browser still thinks is open. The screens ping every 20 s and
give up a socket that has been silent for 45 s. Here the route between page and
server stops passing pings (the server never answers them) and the page's own
clock is run forward, so nothing waits on the wall clock.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, staff_login

pytestmark = pytest.mark.browser


class Line:
    """Every socket the page opens to ``path``, passed through to the real server until told to drop pings."""

    def __init__(self, page, path: str) -> None:
        self.page = page
        self.opened = 0
        self.closed_by_page = 0
        self.pongs = 0
        self.answering = True
        page.route_web_socket(f"**{path}", self._route)

    def _route(self, socket) -> None:
        server = socket.connect_to_server()
        self.opened += 1

        def to_server(message) -> None:
            if self.answering or json.loads(message).get("type") != "ping":
                server.send(message)

        def to_page(message) -> None:
            if json.loads(message).get("type") == "pong":
                self.pongs += 1
            socket.send(message)

        closing = []

        def closed(code, reason) -> None:
            if closing:  # the server's answer to the close below comes back here too: one socket, one close
                return
            closing.append(code)
            self.closed_by_page += 1
            server.close()

        socket.on_message(to_server)
        server.on_message(to_page)
        socket.on_close(closed)

    def run_clock(self, seconds: int) -> None:
        """The (paused) page clock forward, one ping interval at a time, each answered pong
        back before the next (a single jump would fire every ping before any pong arrived).
        The clock stands still while the pong comes: waiting fires no other ping."""
        for _ in range(seconds // PING_EVERY):
            expected = self.pongs + 1
            self.page.clock.run_for(PING_EVERY * 1000)
            if self.answering:
                self.wait_until(lambda: self.pongs >= expected, nudge=False)

    def wait_until(self, condition, *, nudge: bool = True) -> None:
        """Real time (the page's clock is not the test's), nudging the page's clock along for its backoff."""
        for _ in range(300):
            if condition():
                return
            if nudge:
                self.page.clock.run_for(250)
            self.page.wait_for_timeout(100)
        assert condition()


def open_kitchen(page, base_url: str) -> None:
    staff_login(page, base_url)


def open_ordering_page(page, base_url: str) -> None:
    page.goto(base_url + "/")


# The screens' ping interval, in seconds (static/orders/socket.js).
PING_EVERY = 20

SCREENS = {
    "kitchen screen": ("/ws/kitchen/", open_kitchen, "#kitchen-connection", "live"),
    "ordering page": ("/ws/customer/", open_ordering_page, "#connection", "connected"),
}


@pytest.mark.parametrize("screen", SCREENS, ids=list(SCREENS))
def test_a_socket_whose_pings_go_unanswered_is_replaced(screen, browser, site):
    path, open_screen, indicator, live = SCREENS[screen]
    context = browser.new_context(viewport=PHONE, locale="en-US")
    context.clock.install()
    page = context.new_page()
    # Paused before the screen opens (an installed clock still flows): its pings then
    # come only when the test runs the clock, however long loading and waiting take.
    page.clock.pause_at(datetime.now() + timedelta(minutes=1))
    line = Line(page, path)
    open_screen(page, site.base_url)
    expect(page.locator(indicator)).to_have_attribute("data-state", live, timeout=10_000)

    line.run_clock(120)  # two quiet minutes, every ping answered: the socket is kept
    assert (line.opened, line.closed_by_page, line.pongs) == (1, 0, 6)

    line.answering = False  # from now on the server seems to hear nothing
    line.run_clock(60)  # pings at 20 and 40 s go unanswered; at 60 s it has been silent over 45 s
    line.wait_until(lambda: line.opened == 2)  # given up, and connected again after its first backoff
    assert line.closed_by_page == 1
    expect(page.locator(indicator)).to_have_attribute("data-state", live, timeout=10_000)
    context.close()
