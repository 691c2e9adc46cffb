"""The two screens people use, in a real browser: ordering with an alert, and the live kitchen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, order_breakfast, screenshot_of_the_menu, seed_kitchen, serious_violations, staff_login

pytestmark = pytest.mark.browser

STAFF_SCREEN = {"width": 1280, "height": 800}


def kitchen_screen(browser, site):
    """A staff member's browser, logged in on the live kitchen screen: (context, page)."""
    staff = browser.new_context(viewport=STAFF_SCREEN, locale="en-US")
    kitchen = staff.new_page()
    staff_login(kitchen, site.base_url)
    return staff, kitchen


def kitchen_card(kitchen, order_id: int, section: str | None = None):
    """An order's card on the kitchen screen, found by id: pickup codes start again each day,
    so near midnight two cards may show the same code."""
    within = f"[data-section='{section}'] " if section else ""
    return kitchen.locator(f"{within}.kitchen-order[data-order-id='{order_id}']")


def order_id_of(page) -> int:
    return int(re.search(r"/orders/(\d+)/", page.url).group(1))


def customer_following_a_new_order(browser, site):
    """A customer's phone that has ordered breakfast and follows the order on its own page: (context, page, code)."""
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    page = customer.new_page()
    code = order_breakfast(page, site.base_url)  # the order's page opens
    return customer, page, code


# The opening comes after the clicks, screenshots and review even on a loaded machine, and
# still under a minute from the order: the countdown reads "0:..".
@pytest.mark.parametrize("pickup_soon", [60])
def test_customer_orders_and_sees_the_pickup_alert_at_the_chosen_time(browser, site, screenshot_dir):
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    page = customer.new_page()
    page.goto(site.base_url + "/")
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    page.get_by_role("button", name="One more Breakfast set").click()
    page.get_by_role("button", name="One more Soy milk").click()
    page.get_by_role("button", name="One more Soy milk").click()
    page.get_by_role("button", name="One fewer Soy milk").click()
    expect(page.get_by_label("Soy milk")).to_have_value("1")
    expect(page.locator("#total")).to_have_text("8.50")
    # One phone screen as the customer sees it (this restaurant's odd test hours are further down).
    page.evaluate("document.activeElement.blur(); scrollTo(0, 0)")
    page.screenshot(path=str(screenshot_dir / "ordering-page-phone.png"))
    page.get_by_role("button", name="Review order").click()
    review = page.locator("#review")
    expect(review.get_by_role("heading", name="Review your order")).to_be_focused()
    expect(review.locator(".review-lines li")).to_have_text([re.compile(r"^1 × Breakfast set.* — ¥6\.00$"), "1 × Soy milk — ¥2.50"])
    expect(review.locator(".review-total")).to_have_text("8.50")
    expect(review.locator(".review-when")).to_contain_text("As soon as possible")
    page.screenshot(path=str(screenshot_dir / "ordering-review-phone.png"))
    review.get_by_role("button", name="Confirm and pay").click()

    expect(page.locator("#order-message")).to_have_text("Payment successful, please wait for your pickup alert.")
    expect(page.locator("#code-heading")).to_be_focused()  # the pickup code is the news
    code = page.locator(".pickup-code").inner_text()
    expect(page.locator(".order-detail .lines")).to_contain_text("1 × Soy milk")
    expect(page.locator(".countdown")).to_contain_text("Ready for pickup in 0:")
    banner = page.locator("#alerts .alert-pickup")
    expect(banner).to_contain_text(f"Order {code} is ready, please collect it at the counter.", timeout=75_000)
    expect(page.locator(".countdown")).to_be_hidden()
    page.goto(site.base_url + "/")
    expect(page.locator("#orders li[data-status='ready'] .code", has_text=code)).to_be_visible()
    page.locator("#orders li a").first.click()
    expect(page.locator(".pickup-code")).to_have_text(code)
    page.reload()
    expect(page.locator(".timeline li.current")).to_have_text("Ready")
    customer.close()


@pytest.mark.parametrize("pickup_soon", [90])  # time for staff to act before the pickup time
def test_staff_see_a_new_order_live_and_marking_it_ready_alerts_the_customer(browser, site, screenshot_dir):
    seed_kitchen(site)
    staff, kitchen = kitchen_screen(browser, site)
    customer, page, code = customer_following_a_new_order(browser, site)

    card = kitchen_card(kitchen, order_id_of(page))
    expect(card.locator(".kitchen-code")).to_have_text(code, timeout=5_000)  # no reload: the staff socket said so
    expect(kitchen.locator("#kitchen-status")).to_have_text(f"New orders: {code}")
    kitchen.screenshot(path=str(screenshot_dir / "kitchen-queue.png"), full_page=True)
    card.get_by_role("button", name="Ready").click()

    expect(page.locator("#alerts .alert-ready_early")).to_contain_text(f"order {code} is ready early", timeout=10_000)
    expect(page.locator(".order-detail .status")).to_have_text("Ready", timeout=10_000)
    expect(page.locator(".timeline li.current")).to_have_text("Ready")
    ready_card = kitchen_card(kitchen, order_id_of(page), "ready")
    expect(ready_card).to_be_visible(timeout=5_000)
    page.screenshot(path=str(screenshot_dir / "order-page-with-alert-phone.png"), full_page=True)

    ready_card.get_by_role("button", name="Picked up").click()
    expect(page.locator(".order-detail .status")).to_have_text("Picked up", timeout=10_000)
    expect(page.locator("#order-state")).to_have_text("Picked up. Enjoy your meal!")
    expect(page.locator("#alerts .alert-ready_early")).to_have_count(0)  # "come and collect it" is no longer true
    staff.close()
    customer.close()


@pytest.mark.parametrize("pickup_soon", [90])
def test_customer_reschedules_then_staff_cancel_with_a_reason_the_customer_is_told(browser, site):
    staff, kitchen = kitchen_screen(browser, site)
    customer, page, code = customer_following_a_new_order(browser, site)
    later = page.locator("#pickup-picker .time-chips .chip").nth(1)  # the customer may still move it
    later_time = later.inner_text()
    later.click()
    page.get_by_role("button", name="Change pickup time").click()
    expect(page.locator("#order-message")).to_have_text("Pickup time changed.")
    expect(page.locator(".pickup-when")).to_have_text(re.compile(later_time + "$"))

    card = kitchen_card(kitchen, order_id_of(page))
    card.get_by_role("button", name="Cancel").click()
    dialog = kitchen.get_by_role("dialog")
    reason = dialog.get_by_label("Reason (the customer sees it, in their language)")
    expect(reason).to_be_focused()  # keyboard users choose straight away
    reason.select_option("sold_out")
    dialog.get_by_label("Note to the customer (optional)").fill("No congee left today.")
    kitchen.keyboard.press("Enter")

    expect(page.locator("#alerts .alert-cancelled")).to_contain_text(
        f"Order {code} has been cancelled: Sold out — No congee left today.", timeout=10_000
    )
    expect(page.locator(".order-detail .status")).to_have_text("Cancelled")
    expect(page.locator("#order-state")).to_have_text("Cancelled: Sold out — No congee left today.")
    expect(page.locator("#order-message")).to_have_text("")  # "Pickup time changed." is no longer the news
    expect(page.locator("#order-changes")).to_be_hidden()
    expect(card).to_be_hidden(timeout=5_000)  # gone from the kitchen screen
    staff.close()
    customer.close()


@pytest.mark.parametrize("pickup_soon", [45])  # ordered and offline before the opening, even on a loaded machine
def test_a_pickup_alert_missed_while_offline_shows_after_reconnecting(browser, site):
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    page = customer.new_page()
    code = order_breakfast(page, site.base_url)
    customer.set_offline(True)  # the phone goes into the underground on the way,
    port = int(site.base_url.rsplit(":", 1)[1])
    site.kill_web(port)  # and its connection drops (a restart of the web server cuts it here)
    # The close, as a rule at once; if the offline browser never reads it (once, with three
    # test runs on two cores), the page's own silence check (45 s, on a 20 s tick) says it.
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline", timeout=70_000)
    site.start_web(port)

    pushed = (
        "SELECT COUNT(*) FROM notifications_alert JOIN orders_order ON orders_order.id = notifications_alert.order_id "
        "WHERE notifications_alert.kind = 'pickup' AND notifications_alert.sent_at IS NOT NULL AND orders_order.pickup_code = ?"
    )
    for _ in range(150):  # the record says when it was pushed (to nobody: the phone is offline)
        if site.query(pushed, [code])[0][0]:
            break
        page.wait_for_timeout(500)
    assert site.query(pushed, [code])[0][0] == 1, "the alert never fell due"
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    expect(page.locator("#alerts .alert")).to_have_count(0)  # nothing reached the phone

    customer.set_offline(False)  # back above ground: the page reconnects at once
    missed = page.locator("#alerts .alert-pickup.alert-replayed")
    expect(missed).to_contain_text(f"Order {code} is ready", timeout=10_000)
    expect(missed).to_contain_text("while you were away")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    customer.close()


@pytest.mark.parametrize("pickup_soon", [45])  # ordered before the opening, even on a loaded machine
def test_the_page_speaks_simplified_chinese_to_a_chinese_browser_and_switches_to_english(browser, site):
    customer = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = customer.new_page()
    page.goto(site.base_url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("button", name="去结算")).to_be_visible()
    expect(page.locator(".menu")).to_contain_text("酸菜鸡肉粥")
    code = order_breakfast(page, site.base_url)
    expect(page.locator("#alerts .alert-pickup")).to_contain_text(f"订单 {code}", timeout=60_000)

    page.get_by_label("语言").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".pickup-code-label")).to_have_text("Your pickup code")
    customer.close()


DESKTOP = {"en": ("en-US", "Confirm and pay", "Pickup · kitchen"), "zh": ("zh-CN", "确认并付款", "Pickup · 后厨")}


@pytest.mark.parametrize("pickup_soon", [None])  # open all day, as setup_demo leaves it
@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_customer_pages_read_well_on_a_desktop_in_both_languages(browser, site, language, screenshot_dir):
    locale, confirm, header = DESKTOP[language]
    customer = browser.new_context(viewport=STAFF_SCREEN, locale=locale)
    page = customer.new_page()
    page.goto(site.base_url + "/")
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    page.locator("input.quantity").first.fill("1")
    page.locator("input.quantity").nth(3).fill("2")
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")  # nothing runs off to the side
    assert serious_violations(page) == []
    screenshot_of_the_menu(page, screenshot_dir / f"ordering-page-desktop-{language}.png")

    page.locator("#review-order").click()
    page.get_by_role("button", name=confirm).click()
    expect(page.locator("#code-heading")).to_be_focused()
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    assert serious_violations(page) == []
    page.screenshot(path=str(screenshot_dir / f"order-page-desktop-{language}.png"), full_page=True)
    customer.close()

    staff = browser.new_context(viewport=STAFF_SCREEN, locale=locale)
    kitchen = staff.new_page()
    staff_login(kitchen, site.base_url)
    expect(kitchen.locator(".kitchen-order")).to_have_count(1)
    expect(kitchen.locator("#site-name")).to_have_text(header)  # the admin's own header speaks the staff's language too
    kitchen.screenshot(path=str(screenshot_dir / f"kitchen-queue-desktop-{language}.png"), full_page=True)
    staff.close()
