"""The pickup-time picker on a phone: "as soon as possible", a day, a handful of time chips.

The server sends one day at a time; the picker is a radio group, so the
keyboard and screen readers get the same choices as a thumb.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE

pytestmark = pytest.mark.browser

WORDS = {
    "en": {"locale": "en-US", "asap": "As soon as possible", "tomorrow": "Tomorrow", "later": "Later times", "earlier": "Earlier times",
           "review": "Review order", "order": "Confirm and pay", "move": "Change pickup time", "moved": "Pickup time changed."},
    "zh": {"locale": "zh-CN", "asap": "尽快取餐", "tomorrow": "明天", "later": "更晚的时间", "earlier": "更早的时间",
           "review": "去结算", "order": "确认并付款", "move": "修改取餐时间", "moved": "取餐时间已修改。"},
}


def tap_heights(page, selector: str) -> list[float]:
    return page.locator(selector).evaluate_all("els => els.map(el => el.getBoundingClientRect().height)")


# Opens after the test: "as soon as possible" stays the time the order's page offered.
@pytest.mark.parametrize("pickup_soon", [120])
@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_customer_picks_tomorrow_at_a_later_time_then_moves_it_to_as_soon_as_possible(browser, site, language, screenshot_dir):
    words = WORDS[language]
    customer = browser.new_context(viewport=PHONE, locale=words["locale"])
    page = customer.new_page()
    page.goto(site.base_url + "/")
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    picker = page.locator("#pickup-picker")
    asap = picker.get_by_role("radio", name=re.compile(words["asap"]))
    expect(asap).to_be_checked()
    assert picker.locator(".time-chips .chip").count() <= 8  # a handful, not hundreds
    assert min(tap_heights(page, "#pickup-picker .chip span, #pickup-picker button:visible")) >= 44

    asap.focus()  # a keyboard moves through the group with the arrow keys
    page.keyboard.press("ArrowDown")
    first_chip = picker.locator(".time-chips input").first
    expect(first_chip).to_be_checked()
    expect(asap).not_to_be_checked()
    chosen = first_chip.get_attribute("value")
    later = picker.get_by_role("button", name=words["later"])
    if later.is_visible():  # today has more than eight times left (not so after 23:20)
        later.click()  # the server rendered eight; the rest of the day comes now
        expect(picker.locator(".time-chips input").first).not_to_have_attribute("value", chosen)
        picker.get_by_role("button", name=words["earlier"]).click()
        expect(picker.locator(".time-chips input").first).to_have_attribute("value", chosen)
        expect(picker.locator(".time-chips input").first).to_be_checked()  # still the customer's choice

    with page.expect_response(lambda response: "/pickup-times/?day=" in response.url):
        picker.get_by_text(words["tomorrow"], exact=True).click()  # one day at a time from the server
    expect(picker.locator(".time-chips .chip").first).to_have_text("00:00")
    picker.get_by_role("button", name=words["later"]).click()
    expect(picker.locator(".time-chips .chip").first).to_have_text("00:40")  # 5-minute slots, 8 a page
    picker.get_by_text("00:45", exact=True).click()
    picker.screenshot(path=str(screenshot_dir / f"pickup-time-picker-phone-{language}.png"))

    page.locator("input.quantity").first.fill("1")
    page.get_by_role("button", name=words["review"]).click()
    expect(page.locator("#review .review-when")).to_have_text(f"{words['tomorrow']} 00:45")
    page.get_by_role("button", name=words["order"]).click()

    expect(page.locator(".pickup-when")).to_have_text(re.compile("00:45$"), timeout=10_000)  # the order's page
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    earliest = page.locator("#pickup-picker .asap-time").inner_text()
    expect(page.locator("#pickup-picker [data-asap]")).to_be_checked()  # the same picker reschedules
    page.get_by_role("button", name=words["move"]).click()
    expect(page.locator("#order-message")).to_have_text(words["moved"])
    expect(page.locator(".pickup-when")).to_have_text(re.compile(earliest + "$"))
    customer.close()


def test_the_picker_asks_the_server_again_only_while_it_is_on_screen(browser, site):
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    page = customer.new_page()
    page.clock.install()  # fake timers; installed time still flows with the machine's, and run_for jumps ahead
    asked = []
    page.on("request", lambda request: asked.append(request.url) if "/pickup-times/" in request.url else None)
    page.goto(site.base_url + "/")
    picker = page.locator("#pickup-picker")
    expect(picker).not_to_be_in_viewport()  # below the menu on a phone

    page.clock.run_for("02:00")
    assert asked == []  # two minutes, and not one request for a picker nobody sees

    # Overdue: it asks as soon as it is seen. The question may leave while the
    # scroll is still being answered, so the test listens before it scrolls.
    with page.expect_request("**/pickup-times/**"):
        picker.scroll_into_view_if_needed()
    expect(picker).to_be_in_viewport()
    page.clock.run_for("00:05")  # and not again before 30 s
    assert len(asked) == 1
    customer.close()


@pytest.mark.parametrize("pickup_soon", [None])
def test_choosing_another_day_cancels_the_question_about_the_day_before(browser, site):
    """Tomorrow's answer is slow; the customer has moved on to the day after. Were
    that answer let through last, tomorrow's times would sit under the day now
    chosen, and a tap would order for the wrong day."""
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    page = customer.new_page()
    page.goto(site.base_url + "/")
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    picker = page.locator("#pickup-picker")
    picker.scroll_into_view_if_needed()
    days = picker.locator('.picker-days input[name="pickup_day"]')
    tomorrow, day_after = days.nth(1).get_attribute("value"), days.nth(2).get_attribute("value")
    held = []
    page.route(f"**/pickup-times/?day={tomorrow}", lambda route: held.append(route))  # never answered while held
    with page.expect_request(f"**/pickup-times/?day={tomorrow}"):
        picker.locator("label.chip", has=page.locator(f'input[value="{tomorrow}"]')).click()

    with page.expect_event("requestfailed", lambda request: f"day={tomorrow}" in request.url):  # cancelled
        with page.expect_response(lambda response: f"day={day_after}" in response.url):
            picker.locator("label.chip", has=page.locator(f'input[value="{day_after}"]')).click()
    assert held  # the slow question was asked, and is gone
    expect(picker.locator(".time-chips input").first).to_have_attribute("value", re.compile("^" + day_after))
    times = picker.locator(".time-chips input").evaluate_all("inputs => inputs.map(input => input.value)")
    assert times and all(time.startswith(day_after) for time in times)
    expect(picker.locator(f'input[name="pickup_day"][value="{day_after}"]')).to_be_checked()
    customer.close()


LEFT = {"en": ("en-US", "2 left", "{time}, only 2 places left"), "zh": ("zh-CN", "剩 2 个", "{time}，仅剩 2 个名额")}


@pytest.mark.parametrize("pickup_soon", [None])
@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_nearly_full_time_says_how_many_places_are_left(browser, site, language):
    locale, left, spoken = LEFT[language]
    nearly_full = site.shell(  # of the first day's chips, one has two places left of twelve
        "from datetime import datetime\n"
        "from orders.models import PickupSlot, Restaurant\n"
        "from orders.picker import picker_times\n"
        "times = picker_times(Restaurant.current())['times']\n"
        "time = times[min(2, len(times) - 1)]\n"
        "PickupSlot.objects.create(start=datetime.fromisoformat(time['value']), taken=10)\n"
        "print(time['label'])\n"
    ).strip()
    customer = browser.new_context(viewport=PHONE, locale=locale)
    page = customer.new_page()
    page.goto(site.base_url + "/")
    chips = page.locator("#pickup-picker .time-chips .chip")
    expect(chips.filter(has_text=left)).to_have_count(1)
    chip = chips.filter(has_text=nearly_full)
    expect(chip.locator(".places-left")).to_have_text(left)
    expect(page.get_by_role("radio", name=spoken.format(time=nearly_full))).to_have_count(1)  # said to a screen reader too

    days = page.locator("#pickup-picker .picker-days .chip")
    with page.expect_response(lambda response: "/pickup-times/?day=" in response.url):
        days.nth(1).click()
    with page.expect_response(lambda response: "/pickup-times/?day=" in response.url):
        days.first.click()  # back to the first day, its chips drawn by the script this time
    expect(page.get_by_role("radio", name=spoken.format(time=nearly_full))).to_have_count(1)
    chip.click()
    page.locator("input.quantity").first.fill("1")
    page.get_by_role("button", name=WORDS[language]["review"]).click()
    expect(page.locator("#review .review-when")).to_have_text(re.compile(f"{nearly_full}$"))  # the time, not "2 left"
    customer.close()


@pytest.mark.parametrize("pickup_soon", [None])
def test_as_soon_as_possible_means_the_earliest_time_when_the_customer_confirms(browser, site):
    """The earliest time on the page stops being offered when its notice runs out at a
    slot's edge, however recently the page asked. Confirming asks again, so the order
    is placed for the earliest time then, never refused as too soon."""
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    page = customer.new_page()
    page.goto(site.base_url + "/")
    page.locator("#connection[data-state='connected']").wait_for(timeout=10_000)
    asap = page.locator("#pickup-picker [data-asap]")
    offered = asap.get_attribute("value")
    # The page as it is a moment after the notice for its earliest time ran out.
    asap.evaluate("input => { input.value = new Date(Date.now() + 1000).toISOString(); }")
    page.locator("input.quantity").first.fill("1")
    page.get_by_role("button", name="Review order").click()
    with page.expect_request("**/pickup-times/**"):
        page.get_by_role("button", name="Confirm and pay").click()
    expect(page.locator("#order-message")).to_have_text("Payment successful, please wait for your pickup alert.")
    placed_for = datetime.fromisoformat(page.locator(".pickup-when").get_attribute("datetime"))
    assert placed_for >= datetime.fromisoformat(offered)  # the earliest now: the one offered, or the next once it ran out
    customer.close()
