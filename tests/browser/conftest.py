"""Browser tests: Playwright driving Debian's Chromium against the real system.

Playwright cannot download its own browser here; scripts/test.sh installs
Debian's ``chromium`` and these tests launch /usr/bin/chromium. In CI a
missing browser fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from pickup.testing import Stack

CHROMIUM = os.environ.get("PICKUP_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    """One Chromium per module. Playwright's sync API runs an event loop of its
    own while it is open, so it must be closed before the async tests run."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium) or set PICKUP_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync"],
        )
        watched = PolicyWatch(browser)
        yield watched
        browser.close()


class PolicyWatch:
    """The browser, noting every Content-Security-Policy violation any of its pages reports."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.violations: list[str] = []

    def new_context(self, **options):
        context = self.browser.new_context(**options)
        context.on("console", self._note)
        return context

    def new_page(self, **options):
        page = self.browser.new_page(**options)
        page.on("console", self._note)
        return page

    def _note(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(f"{message.location.get('url')}: {message.text}")

    def __getattr__(self, name):
        return getattr(self.browser, name)


@pytest.fixture(autouse=True)
def no_policy_violations(request):
    """Every browser test also proves the pages it visited broke no Content-Security-Policy rule."""
    yield
    if "browser" in request.fixturenames:
        watch = request.getfixturevalue("browser")
        violations, watch.violations[:] = list(watch.violations), []
        assert not violations, violations


@pytest.fixture
def screenshot_dir(tmp_path):
    """docs/screenshots when PICKUP_UPDATE_SCREENSHOTS=1, else the test's own tmp_path (the tree stays clean)."""
    if os.environ.get("PICKUP_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path


@pytest.fixture
def pickup_soon():
    """Seconds from now to the first pickup slot the restaurant will offer; None: the demo's
    whole-day hours and a minute's notice (for tests the clock does not drive, so the page
    reads as a customer sees it)."""
    return 14


@pytest.fixture
def site(tmp_path, prepared_database, pickup_soon):
    """daphne + run_queue with the demo staff account, and a restaurant whose first pickup
    slot starts a few seconds from now (it "opens" then), or, pickup_soon None, open all day."""
    with Stack(log_dir=str(tmp_path)) as stack:
        stack.prepare(template=prepared_database)
        stack.manage("setup_demo")
        if pickup_soon is None:
            stack.shell("from orders.models import Restaurant\n"  # a minute's notice: time to cancel
                        "Restaurant.objects.update(min_notice_minutes=1, preparation_minutes=0, slot_minutes=5, slot_capacity=12)\n")
            stack.base_url = stack.start_web()
            stack.start_run_queue("--interval", "0.5")
            yield stack
            return
        stack.base_url = stack.start_web()
        stack.start_run_queue("--interval", "0.5")
        # The restaurant opens ``pickup_soon`` seconds after the processes are
        # up, however long starting them took (its rules are cached 5 s at most).
        stack.shell(
            "from datetime import time, timedelta\n"
            "from django.utils import timezone\n"
            "from orders.models import OpeningHours, Restaurant\n"
            "now = timezone.localtime()\n"
            f"opens = (now + timedelta(seconds={pickup_soon})).replace(microsecond=0)\n"
            "restaurant = Restaurant.current()\n"
            # Today's hours go too: near midnight ``opens`` is tomorrow, and the rest of
            # today must not offer a time before it.
            "OpeningHours.objects.filter(weekday__in={now.weekday(), opens.weekday()}).delete()\n"
            "OpeningHours.objects.create(restaurant=restaurant, weekday=opens.weekday(), opens=opens.time(), closes=time(0))\n"
            "Restaurant.objects.filter(pk=restaurant.pk).update(preparation_minutes=0, slot_minutes=5, slot_capacity=12)\n"
        )
        yield stack


def screenshot_of_the_menu(page, path) -> None:
    """The ordering page in one picture, read to its end: the sticky cart bar sits where the form
    ends instead of over the menu, where the first screen's worth of scrolling would leave it."""
    page.evaluate("document.activeElement.blur(); scrollTo(0, document.scrollingElement.scrollHeight)")
    page.screenshot(path=str(path), full_page=True)


def serious_violations(page) -> list[str]:
    """What axe-core (shipped inside the axe-playwright-python wheel) finds serious or critical on the page.

    Without preloading: axe reads an @import-ed stylesheet (the admin's forms.css imports
    widgets.css) by inserting a <style> element, which the site's CSP rightly refuses; only the
    css-orientation-lock rule reads what preloading fetches."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"resultTypes": ["violations"], "preload": False})
    return [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']]}"
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def order_breakfast(page, base_url: str) -> str:
    """Order one breakfast set "as soon as possible" (the first offered pickup time), through the
    review step; the page goes straight to the order's own page. Returns the pickup code."""
    page.goto(base_url + "/")
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    page.locator("input.quantity").first.fill("1")
    expect(page.locator("#pickup-picker [data-asap]")).to_be_checked()  # the picker's default
    chinese = page.evaluate("document.documentElement.lang").startswith("zh")
    page.get_by_role("button", name="去结算" if chinese else "Review order").click()
    page.get_by_role("button", name="确认并付款" if chinese else "Confirm and pay").click()
    page.locator("#order-message").filter(has_text="支付成功" if chinese else "Payment successful").wait_for(timeout=10_000)
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    return page.locator(".pickup-code").inner_text()


def staff_login(page, base_url: str) -> None:
    page.goto(base_url + "/admin/login/?next=/admin/orders/order/kitchen/")
    page.fill("#id_username", "kitchen")
    page.fill("#id_password", "kitchen-demo")
    page.click("input[type=submit]")
    page.locator("#kitchen-connection[data-state='live']").wait_for(timeout=10_000)


def seed_kitchen(stack: Stack) -> None:
    """Three more customers' orders, so the kitchen screen looks like a morning: one being
    prepared, one waiting, one ready for collection (through the same services as the site)."""
    stack.shell(
        "from orders import pickup_offers, services\n"
        "from orders.models import MenuItem, Order, Restaurant\n"
        "items = list(MenuItem.objects.order_by('position', 'pk').values_list('pk', flat=True))\n"
        "times = [offer.start for offer in pickup_offers.offered_times(Restaurant.current())]\n"
        "baskets = [[(items[1], 2), (items[3], 2)], [(items[4], 3), (items[3], 1)], [(items[0], 1), (items[2], 1)]]\n"
        "orders = [services.place_order(customer_id=f'regular-{n}', lines=basket, pickup_at=times[n + 1])\n"
        "          for n, basket in enumerate(baskets)]\n"
        "services.change_status(orders[0], Order.Status.PREPARING)\n"
        "services.change_status(orders[2], Order.Status.READY)\n"
    )
