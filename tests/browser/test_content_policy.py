"""The watch that fails every browser test on a Content-Security-Policy violation really sees one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_an_inline_script_under_the_policy_is_reported(browser):
    context = browser.new_context()
    page = context.new_page()
    page.route(
        "http://pickup.test/",
        lambda route: route.fulfill(
            status=200,
            headers={"Content-Type": "text/html", "Content-Security-Policy": "script-src 'self'"},
            body="<!doctype html><title>t</title><script>document.title = 'ran'</script>",
        ),
    )
    page.goto("http://pickup.test/")
    page.wait_for_timeout(0)  # let the console message arrive
    assert page.title() == "t"  # the inline script was refused
    for _ in range(50):
        if browser.violations:
            break
        page.wait_for_timeout(100)
    assert any("script-src" in violation for violation in browser.violations)
    browser.violations.clear()  # seen on purpose: not a failure of this page
    context.close()
