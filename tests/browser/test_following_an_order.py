"""A customer's phone follows its order live: every change shows without a reload, in one language.

The kitchen's clock alone moves the order here (run_queue's lead time and
pickup time); nobody touches the page.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, order_breakfast

pytestmark = pytest.mark.browser

# The ways a phone's notification API fails the page: Android Chrome refuses the page's
# Notification constructor though permission is granted; some browsers (iOS Safari outside
# a home-screen app) have no Notification at all; the customer may have said no.
NOTIFICATIONS = {
    "refused": """
      window.Notification = class {
        constructor() {
          throw new TypeError("Failed to construct 'Notification': Illegal constructor. "
                              + "Use ServiceWorkerRegistration.showNotification() instead.");
        }
        static get permission() { return "granted"; }
        static requestPermission() { return Promise.resolve("granted"); }
      };
    """,
    "missing": "delete window.Notification;",
    "denied": """
      window.Notification = class {
        constructor() { throw new TypeError("permission denied"); }
        static get permission() { return "denied"; }
        static requestPermission() { return Promise.resolve("denied"); }
      };
    """,
}

# The sound and vibration are counted so the test can see they still happen.
COUNT_SOUND_AND_VIBRATION = """
(() => {
  window.pickupSounds = 0;
  window.pickupVibrations = 0;
  navigator.vibrate = () => { window.pickupVibrations += 1; return true; };
  let tone = null;
  Object.defineProperty(window, "pickupTone", {
    configurable: true,
    get() { return (...args) => { window.pickupSounds += 1; return tone && tone(...args); }; },
    set(value) { tone = value; },
  });
})();
"""

LATIN = re.compile(r"[A-Za-z]+")


def follow_order(page, base_url: str) -> str:
    """Order breakfast for the first pickup time; the order's page opens. Returns the pickup code."""
    return order_breakfast(page, base_url)


def start_preparation_in_a_moment(site, code: str) -> None:
    """The preparation lead time comes one second from now (minutes would be too long for a test)."""
    site.shell(
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from orders.models import Order\n"
        f"Order.objects.filter(pickup_code='{code}').update(preparation_at=timezone.now() + timedelta(seconds=1))\n"
    )


def english_words(page, code: str) -> list[str]:
    """Latin words in what the customer reads about the order (the pickup code aside)."""
    shown = page.locator("#alerts").inner_text() + "\n" + page.locator(".order-detail").inner_text()
    return LATIN.findall(shown.replace(code, ""))


# Ordered, the shell run and five checks made before the pickup time, even on a loaded machine.
@pytest.mark.parametrize("pickup_soon", [60])
def test_a_chinese_customer_sees_preparing_then_ready_by_the_clock_alone(browser, site):
    customer = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = customer.new_page()
    code = follow_order(page, site.base_url)
    status = page.locator(".order-detail .status")
    expect(status).to_have_text("排队中")
    expect(page.locator("#order-changes")).to_be_visible()

    start_preparation_in_a_moment(site, code)
    expect(status).to_have_text("制作中", timeout=10_000)
    expect(page.locator(".timeline li.current")).to_have_text("制作中")
    expect(page.locator("#order-changes")).to_be_hidden()
    expect(page.locator("#order-state")).to_have_text("后厨已开始制作您的订单，不能再修改或取消。")
    assert english_words(page, code) == []

    expect(status).to_have_text("已做好", timeout=75_000)  # the pickup time comes
    expect(page.locator(".timeline li.current")).to_have_text("已做好")
    expect(page.locator("#order-state")).to_have_text(f"已做好 — 请在取餐台出示 {code}。")
    expect(page.locator("#alerts .alert-pickup")).to_contain_text(f"订单 {code}")
    assert english_words(page, code) == []

    page.reload()  # the ready state is the order's, not the alert's: it stays
    expect(page.locator("#order-state")).to_have_text(f"已做好 — 请在取餐台出示 {code}。")
    expect(page.locator("#order-state")).to_have_attribute("data-status", "ready")
    expect(page.locator(".pickup-when")).to_have_text(re.compile(r"^\d+月\d+日 周[一二三四五六日] \d\d:\d\d$"))
    assert english_words(page, code) == []
    customer.close()


# Both tabs open and the order placed before the restaurant opens, even on a loaded machine.
@pytest.mark.parametrize("pickup_soon", [40])
def test_a_second_tab_learns_of_a_new_order_and_its_progress(browser, site):
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    ordering, watching = customer.new_page(), customer.new_page()
    watching.goto(site.base_url + "/")
    watching.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    code = order_breakfast(ordering, site.base_url)

    listed = watching.locator("#orders li", has=watching.locator(".code", has_text=code))
    expect(listed.locator(".status")).to_have_text("Queued", timeout=5_000)  # no reload
    expect(ordering.locator(".pickup-code")).to_have_text(code)  # the ordering tab went to the order's page
    expect(listed.locator(".status")).to_have_text("Ready", timeout=55_000)
    customer.close()


@pytest.mark.parametrize("pickup_soon", [30])  # ordered before the restaurant opens, even on a loaded machine
@pytest.mark.parametrize("notifications", sorted(NOTIFICATIONS))
def test_a_refused_missing_or_denied_notification_api_still_gives_banner_sound_and_vibration(browser, site, notifications):
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    customer.add_init_script(NOTIFICATIONS[notifications])
    customer.add_init_script(COUNT_SOUND_AND_VIBRATION)
    page = customer.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    code = follow_order(page, site.base_url)

    banner = page.locator("#alerts .alert-pickup")
    expect(banner).to_contain_text(f"Order {code} is ready", timeout=55_000)
    page.wait_for_function("window.pickupSounds >= 1 && window.pickupVibrations >= 1")
    expect(page.locator("#order-state")).to_have_text(f"Ready — show {code} at the counter.")
    acknowledged = (
        "SELECT COUNT(*) FROM notifications_alert JOIN orders_order ON orders_order.id = notifications_alert.order_id "
        "WHERE notifications_alert.kind = 'pickup' AND notifications_alert.acknowledged_at IS NOT NULL "
        "AND orders_order.pickup_code = ?"
    )
    for _ in range(40):  # the server records it as it arrives
        if site.query(acknowledged, [code])[0][0]:
            break
        page.wait_for_timeout(250)
    assert site.query(acknowledged, [code])[0][0] == 1, "the page never acknowledged the alert"
    assert errors == []
    customer.close()
