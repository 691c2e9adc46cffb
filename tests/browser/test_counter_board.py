"""Staff screens in a real browser: the counter board on the TV, the kitchen screen on the wall, and axe-core on both."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import seed_kitchen, serious_violations

pytestmark = pytest.mark.browser

TV = {"width": 1920, "height": 1080}
STAFF_SCREEN = {"width": 1280, "height": 800}
STEPS_BY_STATUS = {"queued": ["start", "ready", "cancel"], "preparing": ["ready", "cancel"], "ready": ["picked-up"]}


def log_in(page, base_url: str, next_path: str) -> None:
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.fill("#id_username", "kitchen")
    page.fill("#id_password", "kitchen-demo")
    page.click("input[type=submit]")


def staff_page(browser, site, next_path: str = "/kitchen/"):
    staff = browser.new_context(viewport=STAFF_SCREEN, locale="en-US")
    page = staff.new_page()
    log_in(page, site.base_url, next_path)
    return staff, page


def make_board_link(page, base_url: str) -> str:
    """Staff add a board link in the admin; returns the board's URL as the admin shows it."""
    page.goto(base_url + "/admin/orders/boardlink/add/")
    page.get_by_label("Screen").fill("TV above the counter")
    page.get_by_role("button", name="Save", exact=True).click()
    link = page.locator("#result_list a[href^='/board/']").first
    return base_url + link.get_attribute("href")


def preparing_order(site) -> str:
    """A customer's order the kitchen has started; returns its pickup code."""
    return site.shell(
        "from orders import pickup_offers, services\n"
        "from orders.models import MenuItem, Order, Restaurant\n"
        "item = MenuItem.objects.order_by('position', 'pk').first()\n"
        "start = pickup_offers.offered_times(Restaurant.current())[1].start\n"
        "order = services.place_order(customer_id='customer-with-a-secret', lines=[(item.pk, 2)], pickup_at=start)\n"
        "services.change_status(order, Order.Status.PREPARING)\n"
        "print(order.pickup_code)\n"
    ).strip()


def board_frames(page) -> list[str]:
    """Every WebSocket frame the page receives, as text, from now on."""
    frames: list[str] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda payload: frames.append(str(payload))))
    return frames


@pytest.mark.parametrize("pickup_soon", [90])  # the clock must not make the order ready before staff do
def test_the_board_moves_a_code_from_preparing_to_ready_when_staff_mark_it_ready(browser, site):
    code = preparing_order(site)
    staff, kitchen = staff_page(browser, site)
    board_url = make_board_link(kitchen, site.base_url)
    tv = browser.new_context(viewport=TV, locale="en-US").new_page()
    frames = board_frames(tv)
    tv.goto(board_url)
    expect(tv.locator("#board-preparing .board-code", has_text=code)).to_be_visible(timeout=10_000)
    expect(tv.locator("h2").nth(1)).to_have_text("Ready请取餐")  # both languages at once

    kitchen.goto(site.base_url + "/kitchen/")
    expect(kitchen.locator("#kitchen-connection")).to_have_attribute("data-state", "live", timeout=10_000)
    kitchen.locator(".kitchen-order", has_text=code).get_by_role("button", name="Ready").click()

    expect(tv.locator("#board-ready .board-code", has_text=code)).to_be_visible(timeout=10_000)
    expect(tv.locator("#board-preparing .board-code", has_text=code)).to_have_count(0)
    expect(tv.locator("#board-ready .board-waited")).to_have_text("0 min · 0 分钟")
    pushed = [json.loads(frame) for frame in frames if '"board.state"' in frame]
    assert pushed, "the board heard nothing over its socket"
    for message in pushed:
        for entry in message["board"]["preparing"] + message["board"]["ready"]:
            assert set(entry) <= {"code", "status", "ready_at"}  # codes and states, no customer data
    text = tv.content() + "".join(frames)
    for private in ("customer-with-a-secret", "Breakfast", "congee", "total"):
        assert private not in text
    staff.close()
    tv.context.close()


def test_a_revoked_link_closes_the_open_board_and_says_why(browser, site):
    staff, admin = staff_page(browser, site, "/admin/")
    board_url = make_board_link(admin, site.base_url)
    tv = browser.new_context(viewport=TV, locale="en-US").new_page()
    tv.goto(board_url)
    expect(tv.locator("#board-connection")).to_be_hidden(timeout=10_000)

    admin.goto(site.base_url + "/admin/orders/boardlink/")
    admin.locator("#result_list input.action-select").first.check()
    admin.select_option("select[name=action]", "revoke")
    admin.get_by_role("button", name="Go").click()
    expect(admin.locator(".messagelist")).to_contain_text("1 board link revoked.")

    refusal = tv.locator("#board-refusal")
    expect(refusal).to_contain_text("This board link was revoked.", timeout=10_000)
    expect(refusal).to_contain_text("此取餐屏链接已被撤销。")
    expect(tv.locator("#board")).to_be_hidden()
    tv.reload()
    expect(tv.get_by_role("alert")).to_contain_text("This board link was revoked.")
    staff.close()
    tv.context.close()


@pytest.mark.parametrize("pickup_soon", [90])
def test_the_kitchen_screen_shows_only_the_steps_the_server_allows_with_room_for_a_thumb(browser, site):
    seed_kitchen(site)
    staff, kitchen = staff_page(browser, site)
    expect(kitchen.locator("#kitchen-connection")).to_have_attribute("data-state", "live", timeout=10_000)
    expect(kitchen.locator(".breadcrumbs")).to_have_count(0)  # the admin's chrome stays in the admin
    cards = kitchen.locator(".kitchen-order")
    expect(cards).to_have_count(3)
    statuses = set()
    for index in range(cards.count()):
        card = cards.nth(index)
        status = card.get_attribute("data-status")
        statuses.add(status)
        steps = [button.get_attribute("data-step") for button in card.locator(".kitchen-actions button").all()]
        assert steps == STEPS_BY_STATUS[status], status
    assert statuses == set(STEPS_BY_STATUS)
    targets = kitchen.locator(".kitchen-actions button, .kitchen-toolbar a, .kitchen-toolbar label, .kitchen-toolbar button:visible")
    for index in range(targets.count()):
        box = targets.nth(index).bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, (targets.nth(index).inner_text(), box)
    staff.close()


@pytest.mark.parametrize("pickup_soon", [90])
def test_staff_screens_have_no_serious_accessibility_violations(browser, site):
    seed_kitchen(site)
    visitor = browser.new_context(viewport=STAFF_SCREEN, locale="en-US").new_page()
    visitor.goto(site.base_url + "/admin/login/")
    found = {"admin login": serious_violations(visitor)}
    staff, page = staff_page(browser, site)
    expect(page.locator("#kitchen-connection")).to_have_attribute("data-state", "live", timeout=10_000)
    found["kitchen screen"] = serious_violations(page)
    page.goto(site.base_url + "/admin/orders/order/kitchen/")
    expect(page.locator("#kitchen-connection")).to_have_attribute("data-state", "live", timeout=10_000)
    found["kitchen in the admin"] = serious_violations(page)
    board_url = make_board_link(page, site.base_url)
    tv = browser.new_context(viewport=TV, locale="zh-CN").new_page()
    tv.goto(board_url)
    expect(tv.locator("#board-ready .board-code")).to_have_count(1, timeout=10_000)
    found["counter board"] = serious_violations(tv)
    assert found == {name: [] for name in found}
    staff.close()
    visitor.context.close()
    tv.context.close()


def test_thirty_codes_fit_on_the_board_without_scrolling(browser, site, screenshot_dir):
    site.shell(
        "from orders import pickup_offers, services\n"
        "from orders.models import BoardLink, MenuItem, Order, Restaurant\n"
        "item = MenuItem.objects.order_by('position', 'pk').first()\n"
        "times = [offer.start for offer in pickup_offers.offered_times(Restaurant.current())]\n"
        "for n in range(30):  # ten to a slot: the test restaurant's slots hold twelve\n"
        "    order = services.place_order(customer_id=f'regular-{n}', lines=[(item.pk, 1)], pickup_at=times[2 + n // 10])\n"
        "    services.change_status(order, Order.Status.PREPARING if n % 3 else Order.Status.READY)\n"
        "BoardLink.objects.create(name='TV')\n"
    )
    token = site.query("SELECT token FROM orders_boardlink")[0][0]
    tv = browser.new_context(viewport=TV, locale="en-US").new_page()
    tv.goto(f"{site.base_url}/board/{token}/")
    expect(tv.locator(".board-code")).to_have_count(30, timeout=10_000)
    for code in tv.locator(".board-code").all():
        expect(code).to_be_in_viewport()
    assert tv.evaluate("document.scrollingElement.scrollHeight <= innerHeight")
    assert tv.evaluate("parseFloat(getComputedStyle(document.querySelector('.board-code')).fontSize)") >= 48
    tv.screenshot(path=str(screenshot_dir / "counter-board.png"))
    tv.context.close()
