"""A customer's Web Push subscriptions over HTTP: kept only when usable, theirs alone, capped, owed pending alerts."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.test import Client
from django.utils import timezone

from notifications.models import Alert, PushSubscription, WebPush
from notifications.subscriptions import SUBSCRIPTIONS_PER_CUSTOMER
from notifications.vapid import b64url_encode
from notifications.web_pushes import WAIT_FOR_PAGE, owe_pending
from orders import services as order_services
from orders.customers import SESSION_KEY
from tests.conftest import pickup_in

URL = "/push/subscriptions/"


def browser_subscription(endpoint: str | None = None) -> dict:
    """What PushSubscription.toJSON() gives a page: an endpoint, a P-256 public key and a 16-byte auth secret."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return {
        "endpoint": endpoint or f"https://push.example.net/wpush/v2/{secrets.token_urlsafe(24)}",
        "expirationTime": None,
        "keys": {
            "p256dh": b64url_encode(key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)),
            "auth": b64url_encode(secrets.token_bytes(16)),
        },
    }


def customer(menu) -> tuple[Client, str]:
    """A browser that opened the ordering page and ordered: (its client, its customer id)."""
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14; Pixel 7) Chrome/156.0 Mobile")
    assert client.get("/").status_code == 200
    assert client.post("/session/").status_code == 204
    return client, client.session[SESSION_KEY]


def post(client: Client, body) -> tuple[int, dict]:
    text = body if isinstance(body, (str, bytes)) else json.dumps(body)
    response = client.post(URL, text, content_type="application/json")
    return response.status_code, response.json()


def delete(client: Client, endpoint: str) -> tuple[int, dict]:
    response = client.delete(URL, json.dumps({"endpoint": endpoint}), content_type="application/json")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_a_customers_subscription_is_kept_with_their_browser(menu):
    client, customer_id = customer(menu)
    subscription = browser_subscription()
    status, answer = post(client, subscription)
    assert status == 201
    assert answer["endpoint"] == subscription["endpoint"]
    stored = PushSubscription.objects.get()
    assert (stored.customer_id, stored.p256dh, stored.auth) == (customer_id, subscription["keys"]["p256dh"], subscription["keys"]["auth"])
    assert "Pixel 7" in stored.user_agent


@pytest.mark.django_db
def test_the_page_sending_its_subscription_again_keeps_one(menu):
    client, _customer_id = customer(menu)
    subscription = browser_subscription()
    assert post(client, subscription)[0] == 201
    assert post(client, subscription)[0] == 200
    assert PushSubscription.objects.count() == 1


def _replace(subscription: dict, path: str, value) -> dict:
    if path == "keys":
        return {**subscription, "keys": value}
    if path.startswith("keys."):
        return {**subscription, "keys": {**subscription["keys"], path[5:]: value}}
    return {**subscription, path: value}


NOT_ON_THE_CURVE = b64url_encode(b"\x04" + b"\x01" * 64)
COMPRESSED_POINT = b64url_encode(b"\x02" + secrets.token_bytes(64))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field, value",
    [
        ("endpoint", None),
        ("endpoint", ""),
        ("endpoint", 42),
        ("endpoint", "http://push.example.net/wpush/abc"),
        ("endpoint", "ftp://push.example.net/wpush/abc"),
        ("endpoint", "javascript:alert(1)"),
        ("endpoint", "https://" + "a" * 1000 + ".example.net/"),
        ("keys", None),
        ("keys", ["p256dh", "auth"]),
        ("keys.p256dh", None),
        ("keys.p256dh", "not base64url!"),
        ("keys.p256dh", b64url_encode(secrets.token_bytes(64))),
        ("keys.p256dh", NOT_ON_THE_CURVE),
        ("keys.p256dh", COMPRESSED_POINT),
        ("keys.auth", b64url_encode(secrets.token_bytes(15))),
        ("keys.auth", b64url_encode(secrets.token_bytes(17))),
        ("keys.auth", "%%%%"),
        ("keys.auth", 16),
    ],
)
def test_a_subscription_a_browser_could_not_have_made_is_refused_and_nothing_stored(menu, field, value):
    client, _customer_id = customer(menu)
    status, answer = post(client, _replace(browser_subscription(), field, value))
    assert status == 400
    assert answer["code"] == "invalid_subscription"
    assert answer["field"] == field
    assert answer["message"]
    assert not PushSubscription.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"endpoint"', b"\xff\xfe", "{" * 5000])
def test_a_body_that_is_not_a_subscription_gets_a_json_error(menu, body):
    client, _customer_id = customer(menu)
    status, answer = post(client, body)
    assert status == 400
    assert answer["code"] in {"invalid_json", "invalid_subscription"}
    assert not PushSubscription.objects.exists()


@pytest.mark.django_db
def test_the_local_push_service_on_loopback_is_accepted_only_where_allowed(menu, settings):
    client, _customer_id = customer(menu)
    local = browser_subscription("http://127.0.0.1:8765/push/one")
    assert post(client, local)[0] == 201
    settings.PICKUP_PUSH_ALLOW_LOOPBACK = False
    status, answer = post(client, browser_subscription("http://127.0.0.1:8765/push/two"))
    assert (status, answer["field"]) == (400, "endpoint")
    assert PushSubscription.objects.count() == 1


@pytest.mark.django_db
def test_without_a_customer_session_the_answer_says_so(menu):
    status, answer = post(Client(), browser_subscription())
    assert status == 403
    assert answer["code"] == "no_session"
    assert not PushSubscription.objects.exists()


@pytest.mark.django_db
def test_subscribing_needs_the_pages_csrf_token(menu):
    strict = Client(enforce_csrf_checks=True)
    page = strict.get("/")
    token = page.context["csrf_token"]
    assert strict.post("/session/", headers={"X-CSRFToken": str(token)}).status_code == 204  # the first order's
    body = json.dumps(browser_subscription())
    assert strict.post(URL, body, content_type="application/json").status_code == 403
    assert strict.post(URL, body, content_type="application/json", headers={"X-CSRFToken": str(token)}).status_code == 201


@pytest.mark.django_db
def test_another_customer_cannot_end_your_subscription(menu):
    owner, _owner_id = customer(menu)
    stranger, _stranger_id = customer(menu)
    subscription = browser_subscription()
    post(owner, subscription)
    status, answer = delete(stranger, subscription["endpoint"])
    assert (status, answer["code"]) == (404, "subscription_not_found")
    assert PushSubscription.objects.filter(endpoint=subscription["endpoint"]).exists()
    assert delete(owner, subscription["endpoint"])[0] == 200
    assert not PushSubscription.objects.exists()


@pytest.mark.django_db
def test_ending_a_subscription_without_its_endpoint_is_a_json_error(menu):
    client, _customer_id = customer(menu)
    response = client.delete(URL, "[]", content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_subscription")


@pytest.mark.django_db
def test_a_customer_keeps_their_latest_subscriptions_the_oldest_goes(menu):
    client, customer_id = customer(menu)
    endpoints = []
    for _ in range(SUBSCRIPTIONS_PER_CUSTOMER + 1):
        subscription = browser_subscription()
        endpoints.append(subscription["endpoint"])
        assert post(client, subscription)[0] == 201
    kept = set(PushSubscription.objects.filter(customer_id=customer_id).values_list("endpoint", flat=True))
    assert kept == set(endpoints[1:])


@pytest.mark.django_db
def test_a_browser_that_changed_hands_sends_alerts_to_its_new_customer(menu):
    first, _first_id = customer(menu)
    second, second_id = customer(menu)
    subscription = browser_subscription()
    post(first, subscription)
    assert post(second, subscription)[0] == 201
    assert list(PushSubscription.objects.values_list("customer_id", flat=True)) == [second_id]


@pytest.mark.django_db
def test_without_vapid_keys_nothing_is_stored(menu, settings):
    settings.VAPID_PRIVATE_KEY = ""
    client, _customer_id = customer(menu)
    status, answer = post(client, browser_subscription())
    assert (status, answer["code"]) == (503, "web_push_off")
    assert not PushSubscription.objects.exists()


def _order_with_alert(menu, customer_id: str, **alert_fields) -> Alert:
    order = order_services.place_order(customer_id=customer_id, lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(3600))
    alert = Alert.objects.get(order=order)
    Alert.objects.filter(pk=alert.pk).update(**alert_fields)
    alert.refresh_from_db()
    return alert


@pytest.mark.django_db
def test_a_new_subscription_is_owed_the_alerts_still_pending(menu):
    client, customer_id = customer(menu)
    now = timezone.now()
    due_later = _order_with_alert(menu, customer_id, due_at=now + timedelta(minutes=30))
    missed = _order_with_alert(menu, customer_id, due_at=now - timedelta(hours=1))
    _order_with_alert(menu, customer_id, due_at=now - timedelta(minutes=5), acknowledged_at=now)
    _order_with_alert(menu, customer_id, due_at=now + timedelta(minutes=5), cancelled_at=now)
    _order_with_alert(menu, customer_id, due_at=now - timedelta(hours=13))
    _order_with_alert(menu, "someone-else", due_at=now + timedelta(minutes=30))

    assert post(client, browser_subscription())[0] == 201
    owed = {push.alert_id: push.send_after for push in WebPush.objects.all()}
    assert owed == {due_later.pk: due_later.due_at + WAIT_FOR_PAGE, missed.pk: missed.due_at + WAIT_FOR_PAGE}

    subscription = PushSubscription.objects.get()
    assert owe_pending(subscription) == 2  # again: nothing doubles
    assert WebPush.objects.count() == 2


@pytest.mark.django_db
def test_the_service_worker_is_served_from_the_root_fresh_and_under_the_policy(client, menu):
    response = client.get("/service-worker.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert b'addEventListener("push"' in response.content


@pytest.mark.django_db
def test_the_page_offers_alerts_with_the_servers_public_key(client, menu, settings):
    page = client.get("/").content.decode()
    assert f'data-public-key="{settings.VAPID_PUBLIC_KEY}"' in page
    assert "/static/notifications/push.js" in page
    settings.VAPID_PUBLIC_KEY = ""
    assert 'id="push-panel"' not in client.get("/").content.decode()


@pytest.mark.django_db
def test_staff_see_subscriptions_in_the_admin_but_cannot_change_them(admin_client, menu):
    client, customer_id = customer(menu)
    post(client, browser_subscription())
    listing = admin_client.get("/admin/notifications/pushsubscription/")
    assert listing.status_code == 200
    assert customer_id in listing.content.decode() and "push.example.net" in listing.content.decode()
    assert admin_client.get("/admin/notifications/pushsubscription/add/").status_code == 403
