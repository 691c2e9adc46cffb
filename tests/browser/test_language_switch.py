"""The language switch: a keyboard user can step through it without the page reloading each step."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE

pytestmark = pytest.mark.browser


def test_arrow_keys_step_through_the_languages_and_enter_switches(browser, site):
    context = browser.new_context(viewport=PHONE, locale="en-US")
    page = context.new_page()
    page.goto(site.base_url + "/")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    switch = page.get_by_label("Language")
    switch.focus()
    switch.press("ArrowDown")
    expect(switch).to_have_value("zh-hans")
    assert page.evaluate("window.sameDocument === true")  # stepping did not reload
    switch.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    context.close()
