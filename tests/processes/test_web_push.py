"""Web Push from real run_queue processes to a push-service stand-in process.

The customers have no page open (a phone in a pocket): Web Push is the only
way their alerts travel. The stand-in verifies every VAPID signature and
decrypts every payload with the keys of a subscription made as a browser
makes one, so what it counts as received is what a phone would show.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter

import pytest

from tests.processes.clients import Customer, menu_item_id, session_cookie, wait_until
from tests.processes.orders_in_bulk import place_orders
from tests.push_service import HANG
from tests.push_service_process import push_service_process

pytestmark = pytest.mark.processes

CUSTOMERS = 60


@pytest.fixture
def stack_settings():
    # A killed worker's claims run out quickly (a live one renews those it has in flight).
    return {"PICKUP_CLAIM_LEASE_SECONDS": 2}


def subscribe(stack, browsers: dict[str, list]) -> None:
    """Store each customer's subscriptions, as the page does after asking."""
    rows = [
        {"customer_id": customer_id, "endpoint": info["endpoint"], **info["keys"]}
        for customer_id, subscriptions in browsers.items()
        for info in (browser.info() for browser in subscriptions)
    ]
    stack.shell(
        "import json\nfrom notifications.models import PushSubscription\n"
        f"PushSubscription.objects.bulk_create(PushSubscription(**row) for row in json.loads({json.dumps(json.dumps(rows))}))"
    )


def unfinished_web_pushes(stack) -> int:
    return stack.query("SELECT count(*) FROM notifications_webpush WHERE finished_at IS NULL")[0][0]


def wait_until_all_sent(stack, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while unfinished_web_pushes(stack):
        assert time.monotonic() < deadline, f"{unfinished_web_pushes(stack)} Web Pushes unsent after {timeout} s\n{stack.logs()}"
        time.sleep(0.1)


def owed(stack, order_ids: list[int], browsers: dict[str, list]) -> Counter:
    """(subscription, alert) → 1 for every alert each subscription of its customer is owed."""
    marks = ",".join("?" * len(order_ids))
    alerts = stack.query(f"SELECT id, customer_id FROM notifications_alert WHERE order_id IN ({marks})", order_ids)
    return Counter((browser.id, alert_id) for alert_id, customer_id in alerts for browser in browsers[customer_id])


def received(service) -> Counter:
    return Counter((request.subscription_id, request.message["alert"]["id"]) for request in service.received())


# No worker dies here: a lease as long as production's, so a worker the loaded
# machine leaves unscheduled for a second still holds what it is sending.
@pytest.mark.parametrize("stack_settings", [{"PICKUP_CLAIM_LEASE_SECONDS": 30}])
def test_two_workers_send_each_alert_once_to_each_subscription_retrying_failed_attempts(stack):
    with push_service_process() as service:
        browsers = {f"bulk-{n}": [service.new_subscription() for _ in range(2)] for n in range(CUSTOMERS)}
        subscribe(stack, browsers)
        service.answer(500, times=40)  # the push service's bad minute: the first 40 attempts fail
        order_ids = place_orders(stack, count=CUSTOMERS, due_in=2.0)
        for _ in range(2):
            stack.start_run_queue("--interval", "0.2")

        wait_until_all_sent(stack)
        expected = owed(stack, order_ids, browsers)
        assert received(service) == expected  # every one, once
        # No attempt was made twice: the failed ones, then one each that was taken.
        assert len(service.requests()) == sum(expected.values()) + 40
        assert stack.query("SELECT DISTINCT outcome FROM notifications_webpush") == [("delivered",)]


def test_run_queue_killed_mid_send_loses_nothing(stack):
    with push_service_process() as service:
        browsers = {f"bulk-{n}": [service.new_subscription()] for n in range(CUSTOMERS)}
        subscribe(stack, browsers)
        service.answer(HANG)  # the push service takes the requests and says nothing…
        order_ids = place_orders(stack, count=CUSTOMERS, due_in=1.0)
        first = stack.start_run_queue("--interval", "0.2")
        service.wait_for(CUSTOMERS, accepted=False, timeout=60)
        first.kill()  # …and the worker dies waiting for the answers
        first.wait(10)
        service.answer(201)
        service.release()
        assert unfinished_web_pushes(stack) == CUSTOMERS

        stack.start_run_queue("--interval", "0.2")
        wait_until_all_sent(stack)
        assert received(service) == owed(stack, order_ids, browsers)


def subscribe_through_the_site(base_url: str, cookie: str, info: dict) -> int:
    """POST the browser's subscription as the page's push.js does (session cookie, CSRF token)."""
    token = dict(part.split("=", 1) for part in cookie.split("; "))["csrftoken"]
    request = urllib.request.Request(
        base_url + "/push/subscriptions/", data=json.dumps(info).encode(), method="POST",
        headers={"Cookie": cookie, "X-CSRFToken": token, "Content-Type": "application/json", "Origin": base_url},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


async def test_a_customer_who_ordered_on_the_page_then_locked_the_phone_gets_the_alert_by_web_push(stack):
    """Through daphne and run_queue: subscribed on the site, ordered over the socket, page
    closed; the push service is busy once (429) for the phone and has dropped the laptop (410)."""
    base = stack.start_web()
    stack.start_run_queue("--interval", "0.2")
    with push_service_process() as service:
        cookie = session_cookie(base)
        phone, laptop = service.new_subscription(), service.new_subscription()
        assert [subscribe_through_the_site(base, cookie, browser.info()) for browser in (phone, laptop)] == [201, 201]
        service.answer(429, subscription=phone, times=1, retry_after=1)
        service.unsubscribe(laptop, gone=True)

        # A page that never acknowledges: even on a machine so slow that the alert
        # reached the page before it closed, Web Push is still owed.
        customer = Customer(base, cookie, acknowledges=False)
        await customer.connect()
        item = await asyncio.to_thread(menu_item_id, base)
        placed = await customer.place_order(item, seconds=3)
        await customer.disconnect()  # the phone goes into a pocket

        [alert] = service.wait_for(1, phone, timeout=60)
        code = placed["pickup_code"]
        assert alert.message["alert"]["message"] == f"Order {code} is ready, please collect it at the counter."
        assert [request.status for request in service.requests(phone)] == [429, 201]  # tried again, once
        assert [request.status for request in service.requests(laptop)] == [410]
        await wait_until(
            lambda: stack.query("SELECT count(*) FROM notifications_pushsubscription")[0][0] == 1,
            30, "the dropped subscription deleted",
        )
