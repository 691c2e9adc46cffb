"""The ordering page and the order page on a phone, in both languages: the restaurant says who and
where it is, axe-core finds nothing serious, taps land on 44 px targets, focus follows ordering and cancelling.

axe-core comes inside the axe-playwright-python wheel; nothing is downloaded when the tests run.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, order_breakfast, screenshot_of_the_menu, serious_violations

pytestmark = pytest.mark.browser

WORDS = {
    "en": {"locale": "en-US", "hours": "Open 24 hours", "counter": "The pickup shelf left of the door",
           "name": "Pickup breakfast bar", "review": "Review order", "more": "One more Breakfast set",
           "fewer": "One fewer Breakfast set", "asap": "As soon as possible", "item": "1 × Breakfast set", "cancel": "Cancel order", "cancelled": "Order cancelled."},
    "zh": {"locale": "zh-CN", "hours": "24小时营业", "counter": "进门左手边的取餐架",
           "name": "Pickup 早餐铺", "review": "去结算", "more": "增加一份早餐套餐",
           "fewer": "减少一份早餐套餐", "asap": "尽快取餐", "item": "1 × 早餐套餐", "cancel": "取消订单", "cancelled": "订单已取消。"},
}

# Everything a thumb presses on the customer pages (the push panel is another's and checked there).
TAP_TARGETS = "main button:visible, main .chip span, main input.quantity, #language-select"


def small_targets(page) -> list[str]:
    return page.locator(TAP_TARGETS).evaluate_all(
        """els => els.map(el => [el, el.getBoundingClientRect()])
                     .filter(([el, box]) => box.width > 0 && (box.height < 44 || box.width < 44))
                     .map(([el, box]) => `${el.outerHTML.slice(0, 80)}: ${box.width}x${box.height}`)"""
    )


@pytest.mark.parametrize("pickup_soon", [None])  # open all day, as setup_demo leaves it
@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_customer_pages_are_usable_with_a_thumb_a_keyboard_and_a_screen_reader(browser, site, language, screenshot_dir):
    words = WORDS[language]
    customer = browser.new_context(viewport=PHONE, locale=words["locale"])
    page = customer.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "Cancel this order?" — yes
    page.goto(site.base_url + "/")
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)

    card = page.locator(".restaurant-card")  # what staff entered in the admin (setup_demo's)
    expect(card.get_by_role("heading")).to_have_text(words["name"])
    expect(card.locator(".restaurant-counter")).to_have_text(words["counter"])
    expect(card.locator(".opening-hours tr")).to_have_count(1)  # "Every day", not a row of odd hours for today
    expect(card.locator(".opening-hours")).to_contain_text(words["hours"])
    expect(page.locator(".brand")).to_have_text(words["name"])
    favicon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(site.base_url + favicon).ok

    assert serious_violations(page) == []
    assert small_targets(page) == []
    screenshot_of_the_menu(page, screenshot_dir / f"menu-and-restaurant-phone-{language}.png")
    page.get_by_role("button", name=words["more"]).click()  # the steppers, named for a screen reader
    page.get_by_role("button", name=words["more"]).click()
    page.get_by_role("button", name=words["fewer"]).click()
    expect(page.locator("input.quantity").first).to_have_value("1")
    expect(page.locator(".cart-bar #total")).to_have_text("6.00")
    page.get_by_role("button", name=words["review"]).click()
    expect(page.locator("#review-heading")).to_be_focused()
    expect(page.locator("#review .review-lines li")).to_have_count(1)
    expect(page.locator("#review .review-lines li")).to_contain_text(words["item"])
    expect(page.locator("#review .review-when")).to_contain_text(words["asap"])
    expect(page.locator("#review .review-total")).to_have_text("6.00")
    assert serious_violations(page) == []

    code = order_breakfast(page, site.base_url)
    expect(page.locator("#code-heading")).to_be_focused()  # after ordering: the pickup code
    expect(page.locator(".collect-at .restaurant-counter")).to_have_text(words["counter"])
    expect(page.locator(".countdown")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / f"order-page-after-paying-phone-{language}.png"), full_page=True)
    assert serious_violations(page) == []
    assert small_targets(page) == []

    page.get_by_role("button", name=words["cancel"]).click()
    expect(page.locator("#order-message")).to_have_text(words["cancelled"])
    expect(page.locator("#order-state")).to_be_focused()  # after cancelling: what the order now is
    expect(page.locator(".countdown")).to_be_hidden()
    assert code in page.locator(".pickup-code").inner_text()
    assert serious_violations(page) == []
    customer.close()
