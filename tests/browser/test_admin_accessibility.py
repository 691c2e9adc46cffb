"""The Django admin pages kitchen staff use, in a real browser: axe-core finds nothing serious or critical.

The admin's own stylesheet tells breadcrumb and link text apart by colour
alone; templates/admin/base_site.html adds pickup's override (static/admin-overrides.css).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import serious_violations

pytestmark = pytest.mark.browser

STAFF_SCREEN = {"width": 1280, "height": 800}


def one_order(site) -> int:
    """A customer's order, so the order pages have something to show; returns its id."""
    return int(site.shell(
        "from orders import pickup_offers, services\n"
        "from orders.models import MenuItem, Restaurant\n"
        "item = MenuItem.objects.order_by('position', 'pk').first()\n"
        "start = pickup_offers.offered_times(Restaurant.current())[1].start\n"
        "print(services.place_order(customer_id='a-regular', lines=[(item.pk, 2)], pickup_at=start).pk)\n"
    ).strip())


@pytest.mark.parametrize("pickup_soon", [None])
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_the_admin_pages_staff_use_have_no_serious_accessibility_violations(browser, site, locale):
    order_id = one_order(site)
    page = browser.new_context(viewport=STAFF_SCREEN, locale=locale).new_page()
    page.goto(site.base_url + "/admin/login/?next=/admin/")
    found = {"login": serious_violations(page)}
    page.fill("#id_username", "kitchen")
    page.fill("#id_password", "kitchen-demo")
    page.click("input[type=submit]")
    expect(page.locator("#content-main")).to_be_visible()
    found["index"] = serious_violations(page)
    pages = {
        "order list": "/admin/orders/order/",
        "order": f"/admin/orders/order/{order_id}/change/",
        "restaurant": "/admin/orders/restaurant/1/change/",
        "board links": "/admin/orders/boardlink/",
        "new board link": "/admin/orders/boardlink/add/",
    }
    for name, path in pages.items():
        page.goto(site.base_url + path)
        expect(page.locator("#content")).to_be_visible()
        found[name] = serious_violations(page)
        expect(page.locator(".breadcrumbs a").first).to_have_css("text-decoration-line", "underline")  # not colour alone
    assert found == {name: [] for name in found}
    page.context.close()
