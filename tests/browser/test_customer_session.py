"""Looking costs the restaurant no stored session; ordering starts one, and the customer keeps it."""

from __future__ import annotations

import time
import urllib.request

import pytest
import redis
from playwright.sync_api import expect

from orders.limits import WINDOW_SECONDS
from tests.browser.conftest import PHONE, order_breakfast
from tests.processes.clients import session_cookie

pytestmark = pytest.mark.browser


def a_visitor_reviewing_a_first_order(browser, site):
    """A new visitor on a phone with one breakfast in the cart, at the review step: "Confirm and pay" next."""
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    page = customer.new_page()
    page.goto(site.base_url + "/")
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    page.locator("input.quantity").first.fill("1")
    page.get_by_role("button", name="Review order").click()
    return customer, page


def stored_sessions(site) -> int:
    return site.query("SELECT COUNT(*) FROM django_session")[0][0]


def session_cookies(context) -> list[dict]:
    return [cookie for cookie in context.cookies() if cookie["name"] == "sessionid"]


@pytest.mark.parametrize("pickup_soon", [120])  # opens after the test: the earliest time stays what the page offered
def test_a_visitor_stores_no_session_until_the_first_order_then_keeps_it_and_their_orders(browser, site):
    for _ in range(20):  # a script, or twenty first visits: the page and its pickup times
        for path in ("/", "/pickup-times/"):
            with urllib.request.urlopen(site.base_url + path, timeout=10) as response:
                assert response.status == 200
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    page = customer.new_page()
    page.goto(site.base_url + "/")
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)  # its socket is up
    expect(page.locator("#pickup-picker [data-asap]")).to_be_checked()  # and its pickup times are there
    assert stored_sessions(site) == 0 and session_cookies(customer) == []

    code = order_breakfast(page, site.base_url)
    assert stored_sessions(site) == 1
    [cookie] = session_cookies(customer)

    page.goto(site.base_url + "/")
    expect(page.locator("#orders li .code")).to_have_text([code])
    page.reload()
    expect(page.locator("#orders li .code")).to_have_text([code])
    assert session_cookies(customer) == [cookie] and stored_sessions(site) == 1
    customer.close()


def test_a_customer_whose_network_started_too_many_sessions_is_told_when_to_try_again(browser, site):
    customer, page = a_visitor_reviewing_a_first_order(browser, site)
    # The limit counts per clock minute: the thirty sessions and the order must fall in one,
    # so they start with at least half a minute of it left, right before the order.
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < 30:
        page.wait_for_timeout(left * 1000 + 100)
    for _ in range(30):  # PICKUP_SESSIONS_PER_MINUTE_PER_ADDRESS's default, all from this address
        session_cookie(site.base_url)
    page.get_by_role("button", name="Confirm and pay").click()
    expect(page.locator("#review-error")).to_contain_text("Too many new visits from your network. Please try again in")
    assert session_cookies(customer) == []
    assert site.query("SELECT COUNT(*) FROM orders_order")[0][0] == 0
    customer.close()


@pytest.mark.parametrize("pickup_soon", [120])  # the earliest time the page offered stays open through the retry
def test_a_first_order_while_redis_cannot_count_new_sessions_is_told_to_try_again_then_goes_through(browser, site):
    """A failover's seconds: the session limit cannot be counted, so POST /session/ answers 503 server_busy;
    the page says so in the server's words, stores nothing, and the same tap a moment later orders."""
    customer, page = a_visitor_reviewing_a_first_order(browser, site)
    writes = redis.Redis.from_url(site.redis.url)
    writes.client_pause(120_000, all=False)  # Redis takes no writes: counting a session times out (5 s)
    try:
        page.get_by_role("button", name="Confirm and pay").click()
        expect(page.locator("#review-error")).to_have_text(
            "The server is busy. Please try again in a few seconds.", timeout=30_000
        )
        assert session_cookies(customer) == [] and stored_sessions(site) == 0
        assert site.query("SELECT COUNT(*) FROM orders_order")[0][0] == 0
    finally:
        writes.client_unpause()
    page.get_by_role("button", name="Confirm and pay").click()
    page.locator("#order-message").filter(has_text="Payment successful").wait_for(timeout=30_000)
    assert site.query("SELECT COUNT(*) FROM orders_order")[0][0] == 1 and stored_sessions(site) == 1
    customer.close()
