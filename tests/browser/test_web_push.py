"""Alerts on a locked phone, in Chromium: turned on after the first order, shown by the service
worker in the customer's language when no page is on screen, and a tap opens the order.

What is real and what stands in:
- The service worker, its registration, Chromium's notifications and the tap are real. A push
  reaches the worker through the DevTools protocol (``ServiceWorker.deliverPushMessage``), the
  path Chromium's push service would take after decrypting; the payload is the one the server
  makes for the alert and the subscription (``notifications.web_pushes.message``).
- Notifications are seen, and tapped, through a desktop notification server on a private D-Bus
  (tests/browser/desktop_notifications.py): headless Chromium shows them through it, and a tap
  reaches the worker as a trusted ``notificationclick``.
- ``pushManager.subscribe`` cannot reach Chromium's push service here (no internet: it never
  settles), so an init script stands in for the PushManager: it records what the page asked
  for and gives a subscription made as a browser makes one (a P-256 key and a 16-byte secret).
  The page's POST, the CSRF check, the validation and the database row are real.
- The Chromium profile is a persistent one, as a phone's is: Chromium offers no Push API in
  incognito-like contexts and does not route a tap back to them.
"""

from __future__ import annotations

import json
import re
import tempfile

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, PHONE, order_breakfast
from tests.browser.desktop_notifications import DesktopNotifications

pytestmark = pytest.mark.browser

STAND_IN_PUSH_MANAGER = """
(() => {
  const STORE = "test.pushSubscription";
  const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const unb64 = (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  function wrap(stored) {
    return {
      endpoint: stored.endpoint,
      expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: unb64(stored.applicationServerKey).buffer },
      toJSON() { return { endpoint: stored.endpoint, expirationTime: null, keys: stored.keys }; },
      async unsubscribe() { localStorage.removeItem(STORE); return true; },
    };
  }
  PushManager.prototype.subscribe = async function (options) {
    const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
    const stored = {
      endpoint: "http://127.0.0.1:9/push/" + b64(crypto.getRandomValues(new Uint8Array(16))),
      applicationServerKey: b64(options.applicationServerKey),
      userVisibleOnly: options.userVisibleOnly,
      keys: { p256dh: b64(await crypto.subtle.exportKey("raw", pair.publicKey)),
              auth: b64(crypto.getRandomValues(new Uint8Array(16))) },
    };
    localStorage.setItem(STORE, JSON.stringify(stored));
    return wrap(stored);
  };
  PushManager.prototype.getSubscription = async function () {
    const stored = localStorage.getItem(STORE);
    return stored ? wrap(JSON.parse(stored)) : null;
  };
})();
"""

OFFER = {"en-US": "Get the “ready” alert even when your phone is locked.", "zh-CN": "即使手机锁屏，也能收到“已做好”提醒。"}
TURN_ON = {"en-US": "Turn on alerts", "zh-CN": "开启提醒"}
ON = {"en-US": "Alerts are on", "zh-CN": "提醒已开启"}
READY = {"en-US": "Order {code} is ready, please collect it at the counter.", "zh-CN": "订单 {code} 已做好"}


@pytest.fixture
def desktop():
    with DesktopNotifications() as notifications:
        yield notifications


@pytest.fixture
def phone(request, desktop, tmp_path):
    """A phone's Chromium profile (persistent), its notifications shown on ``desktop``; no CSP violation allowed."""
    from playwright.sync_api import sync_playwright

    locale = getattr(request, "param", "en-US")
    violations: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(dir=tmp_path, prefix="profile-"),
            executable_path=CHROMIUM, env=desktop.env, locale=locale, viewport=PHONE,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync"],
        )
        context.on("console", lambda message: violations.append(message.text)
                   if "Content Security Policy" in message.text else None)
        context.add_init_script(STAND_IN_PUSH_MANAGER)
        context.locale = locale
        yield context
        context.close()
    assert violations == []


class Worker:
    """The site's service worker as DevTools sees it: its registrations, and pushes delivered to it."""

    def __init__(self, page, origin: str) -> None:
        self.origin = origin
        self.registrations: dict[str, str] = {}
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.on("ServiceWorker.workerRegistrationUpdated", self._note)
        self.cdp.send("ServiceWorker.enable")

    def _note(self, event) -> None:
        for registration in event["registrations"]:
            if not registration["isDeleted"]:
                self.registrations[registration["scopeURL"]] = registration["registrationId"]

    def push(self, page, payload: dict) -> None:
        page.wait_for_timeout(0)  # lets Playwright hand over the DevTools events received so far
        self.cdp.send("ServiceWorker.deliverPushMessage", {
            "origin": self.origin, "registrationId": self.registrations[self.origin + "/"], "data": json.dumps(payload),
        })


def push_payload(site, code: str) -> dict:
    """What run_queue sends by Web Push for the order's pickup alert to the customer's subscription."""
    printed = site.shell(
        "import json\n"
        "from django.utils import timezone\n"
        "from notifications.models import Alert, PushSubscription\n"
        "from notifications.web_pushes import message\n"
        f"alert = Alert.objects.select_related('order').get(order__pickup_code='{code}', kind='pickup')\n"
        "subscription = PushSubscription.objects.get(customer_id=alert.customer_id)\n"
        "print(json.dumps(message(alert, subscription, timezone.now()).payload))\n"
    )
    return json.loads(printed.strip().splitlines()[-1])


def turn_on_alerts(page, site, locale: str) -> tuple[str, str]:
    """Order breakfast on a fresh page, then turn alerts on; returns (pickup code, the stored endpoint).

    The customer allows notifications when the browser asks (granted up front: headless Chromium shows no prompt).
    """
    page.context.grant_permissions(["notifications"], origin=site.base_url)
    page.goto(site.base_url + "/")
    expect(page.locator("#push-panel")).to_be_hidden()  # nothing to offer before an order
    code = order_breakfast(page, site.base_url)
    panel = page.locator("#push-panel")
    expect(panel).to_contain_text(OFFER[locale], use_inner_text=True)
    panel.get_by_role("button", name=TURN_ON[locale]).click()
    expect(panel).to_contain_text(ON[locale], use_inner_text=True)
    asked = json.loads(page.evaluate("localStorage.getItem('test.pushSubscription')"))
    assert asked["userVisibleOnly"] is True
    assert asked["applicationServerKey"] == settings.VAPID_PUBLIC_KEY  # the server's public key, from the page
    rows = site.query(
        "SELECT s.endpoint, s.user_agent FROM notifications_pushsubscription s "
        "JOIN orders_order o ON o.customer_id = s.customer_id WHERE o.pickup_code = ?", [code],
    )
    assert [row[0] for row in rows] == [asked["endpoint"]]
    assert "Chrome" in rows[0][1]
    return code, asked["endpoint"]


@pytest.mark.parametrize("phone", ["en-US", "zh-CN"], indirect=True)
@pytest.mark.parametrize("pickup_soon", [60])
def test_a_push_to_a_locked_phone_shows_the_alert_in_its_language_and_a_tap_opens_the_order(phone, desktop, site):
    locale = phone.locale
    page = phone.new_page()
    worker = Worker(page, site.base_url)
    code, _endpoint = turn_on_alerts(page, site, locale)
    assert page.evaluate("navigator.serviceWorker.getRegistration().then(r => r.scope)") == site.base_url + "/"
    assert site.base_url + "/" in worker.registrations

    payload = push_payload(site, code)
    assert READY[locale].format(code=code) in payload["alert"]["message"]
    page.goto("about:blank")  # the phone is locked: no page of the site on screen
    worker.push(page, payload)

    shown = desktop.wait_for(payload["alert"]["message"])
    assert shown.title == payload["title"]
    check = phone.new_page()  # a page of the site that does not show alerts itself
    check.goto(site.base_url + "/healthz")
    notifications = check.evaluate(
        "navigator.serviceWorker.ready.then(r => r.getNotifications())"
        ".then(all => all.map(n => ({title: n.title, body: n.body, tag: n.tag, url: n.data.url})))"
    )
    assert notifications == [{"title": payload["title"], "body": payload["alert"]["message"],
                              "tag": f"alert-{payload['alert']['id']}", "url": payload["url"]}]
    check.close()

    with phone.expect_page() as opened:
        desktop.tap(shown)
    order_page = opened.value
    order_page.wait_for_load_state()
    assert order_page.url == site.base_url + payload["url"]
    expect(order_page.locator(".pickup-code")).to_have_text(code)
    assert desktop.shown() == []  # the tapped notification is gone


@pytest.mark.parametrize("pickup_soon", [60])
def test_a_push_while_the_page_is_on_screen_shows_there_and_never_again_as_a_notification(phone, desktop, site):
    page = phone.new_page()
    worker = Worker(page, site.base_url)
    code, _endpoint = turn_on_alerts(page, site, "en-US")
    payload = push_payload(site, code)

    worker.push(page, payload)  # the page is on screen: the worker hands the alert to it
    expect(page.locator(f'#alerts .alert[data-alert-id="{payload["alert"]["id"]}"]')).to_contain_text(
        payload["alert"]["message"])
    assert page.evaluate("navigator.serviceWorker.ready.then(r => r.getNotifications()).then(all => all.length)") == 0
    # The page told the worker it showed the alert; the worker notes it (Cache API) in its own time.
    noted = f"caches.open('pickup-shown-alerts').then(c => c.match('{site.base_url}/pickup-shown-alert/{payload['alert']['id']}')).then(Boolean)"
    for _ in range(100):
        if page.evaluate(noted):
            break
        page.wait_for_timeout(100)
    assert page.evaluate(noted), "the worker never noted the alert the page showed"

    page.goto("about:blank")
    worker.push(page, payload)  # a retried push of the alert the page showed: not shown again
    other = {**payload, "alert": {**payload["alert"], "id": payload["alert"]["id"] + 1000, "message": "Second alert"}}
    worker.push(page, other)
    desktop.wait_for("Second alert")
    assert [notification.body.split("\n")[-1] for notification in desktop.notifications] == ["Second alert"]


@pytest.mark.parametrize("pickup_soon", [60])
def test_opening_the_page_that_shows_the_alert_takes_its_notification_away(phone, desktop, site):
    page = phone.new_page()
    worker = Worker(page, site.base_url)
    code, _endpoint = turn_on_alerts(page, site, "en-US")
    payload = push_payload(site, code)
    page.goto("about:blank")
    worker.push(page, payload)
    desktop.wait_for(payload["alert"]["message"])

    # The alert comes due, and the customer opens the order without tapping the notification.
    site.shell(
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from notifications.models import Alert\n"
        f"Alert.objects.filter(pk={payload['alert']['id']}).update(due_at=timezone.now() - timedelta(seconds=1))\n"
    )
    page.goto(site.base_url + payload["url"])
    expect(page.locator(f'#alerts .alert[data-alert-id="{payload["alert"]["id"]}"]')).to_be_visible(timeout=15_000)
    for _ in range(300):  # the page closes it once it has shown the alert
        if not desktop.shown():
            break
        page.wait_for_timeout(100)
    assert desktop.shown() == []
    assert page.evaluate("navigator.serviceWorker.ready.then(r => r.getNotifications()).then(all => all.length)") == 0


@pytest.mark.parametrize("pickup_soon", [60])
def test_alerts_turned_off_end_the_subscription_and_stay_off(phone, desktop, site):
    page = phone.new_page()
    code, endpoint = turn_on_alerts(page, site, "en-US")
    panel = page.locator("#push-panel")
    panel.get_by_role("button", name="Turn off alerts").click()
    expect(panel).to_contain_text("Alerts on a locked phone are off.", use_inner_text=True)
    assert site.query("SELECT COUNT(*) FROM notifications_pushsubscription WHERE endpoint = ?", [endpoint]) == [(0,)]

    page.reload()
    expect(panel.get_by_role("button", name="Turn on alerts")).to_be_visible()
    expect(panel).not_to_contain_text(OFFER["en-US"], use_inner_text=True)  # the choice is remembered: no second pitch
    height = panel.get_by_role("button", name="Turn on alerts").bounding_box()["height"]
    assert height >= 44


REFUSING = """
Notification.requestPermission = () => Promise.resolve("denied");
Object.defineProperty(Notification, "permission", { get: () => localStorage.getItem("test.permission") || "default" });
"""


@pytest.mark.parametrize("pickup_soon", [60])
def test_a_refusal_is_explained_once_and_never_asked_again(browser, site):
    customer = browser.new_context(viewport=PHONE, locale="en-US")
    customer.add_init_script(REFUSING)
    page = customer.new_page()
    order_breakfast(page, site.base_url)
    panel = page.locator("#push-panel")
    page.evaluate("localStorage.setItem('test.permission', 'denied')")
    panel.get_by_role("button", name="Turn on alerts").click()
    expect(panel).to_contain_text(re.compile("blocked for this site.*allow notifications for this site"), use_inner_text=True)
    page.reload()
    expect(panel).to_be_hidden()
    customer.close()
