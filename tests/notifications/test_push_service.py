"""The push service stand-in takes what a real push service takes and refuses what it refuses.

Other tests rely on it to prove Web Push delivery, so each check is shown
to fail a request that breaks it, with the status FCM or autopush would give.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPusher, webpush_async

from tests.push_checks import BrowserSubscription, b64url, b64url_decode
from tests.push_service import HANG, PushService
from tests.push_service_process import push_service_process

CONTACT = "mailto:kitchen@pickup.example"
ALERT = json.dumps({"type": "pickup.alert", "code": "A7", "text": "Commande prête ✓ 取餐"}, ensure_ascii=False).encode()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client:
        yield client


def new_vapid() -> Vapid:
    key = Vapid()
    key.generate_keys()
    return key


def public_key(vapid: Vapid) -> str:
    point = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(point)


def vapid_headers(service, vapid: Vapid, **claims) -> dict[str, str]:
    """The Authorization header a sender signs for this service (aud = its origin, 12 h ahead)."""
    return vapid.sign({"aud": service.url, "sub": CONTACT, "exp": int(time.time()) + 12 * 3600, **claims})


def raw_headers(service, vapid: Vapid, **changes: str | None) -> dict[str, str]:
    """A valid push's headers, with some changed (None: left out)."""
    headers = {**vapid_headers(service, vapid), "TTL": "60", "Content-Encoding": "aes128gcm", **changes}
    return {name: value for name, value in headers.items() if value is not None}


def encrypted(subscription, payload: bytes) -> bytes:
    return WebPusher(subscription.info()).encode(payload)["body"]


async def post(session, subscription, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with session.post(subscription.endpoint, data=body, headers=headers) as response:
        return response.status, await response.text()


async def send(session, service, subscription, vapid: Vapid, payload: bytes = ALERT, **options):
    """What the restaurant's sender does: pywebpush over a shared aiohttp session."""
    return await WebPusher(subscription.info(), aiohttp_session=session).send_async(
        payload, vapid_headers(service, vapid), ttl=60, **options
    )


# ------------------------------------------------------------------ taken

def test_a_subscription_carries_what_a_browser_gives_the_page(push_service):
    subscription = push_service.new_subscription()
    info = subscription.info()

    assert info["endpoint"].startswith(push_service.url + "/push/")
    assert set(info) == {"endpoint", "keys"} and set(info["keys"]) == {"p256dh", "auth"}
    point = b64url_decode(info["keys"]["p256dh"])
    assert len(point) == 65 and point[0] == 4  # uncompressed P-256
    assert len(b64url_decode(info["keys"]["auth"])) == 16
    assert "=" not in info["keys"]["p256dh"] + info["keys"]["auth"]


async def test_a_message_sent_with_pywebpush_is_accepted_and_decrypts_to_the_exact_bytes_sent(
    push_service, vapid, session
):
    subscription = push_service.new_subscription()

    response = await webpush_async(
        subscription.info(), ALERT.decode(), vapid_private_key=vapid, vapid_claims={"sub": CONTACT},
        ttl=3600, headers={"Urgency": "high", "Topic": "order-A7"}, aiohttp_session=session,
    )

    assert response.status == 201
    assert response.headers["Location"].startswith(push_service.url + "/message/")
    [message] = push_service.received(subscription)
    assert message.payload == ALERT
    assert message.message["code"] == "A7"
    assert (message.ttl, message.urgency, message.topic) == (3600, "high", "order-A7")
    assert push_service.rejected() == []


async def test_a_subscription_made_with_an_application_server_key_takes_only_pushes_signed_with_it(
    push_service, vapid, session
):
    subscription = push_service.new_subscription(application_server_key=public_key(vapid))

    refused = await send(session, push_service, subscription, new_vapid())
    taken = await send(session, push_service, subscription, vapid)

    assert refused.status == 403 and "applicationServerKey" in await refused.text()
    assert taken.status == 201
    assert [request.payload for request in push_service.received(subscription)] == [ALERT]


async def test_a_body_of_4096_bytes_is_taken_and_one_byte_more_is_413(push_service, vapid, session):
    subscription = push_service.new_subscription()

    largest = await send(session, push_service, subscription, vapid, payload=b"x" * 3993)  # 86 header + 1 + 16 tag
    too_large = await send(session, push_service, subscription, vapid, payload=b"x" * 3994)

    assert largest.status == 201
    assert too_large.status == 413
    assert [request.status for request in push_service.requests(subscription)] == [201, 413]


# ------------------------------------------------------------------ refused

@pytest.mark.parametrize("tamper", ["flip a ciphertext bit", "encrypted for another subscription"])
async def test_a_body_the_browser_could_not_decrypt_is_400(push_service, vapid, session, tamper):
    subscription = push_service.new_subscription()
    if tamper == "flip a ciphertext bit":
        body = bytearray(encrypted(subscription, ALERT))
        body[-20] ^= 1
    else:
        body = encrypted(push_service.new_subscription(), ALERT)

    status, reason = await post(session, subscription, bytes(body), raw_headers(push_service, vapid))

    assert status == 400 and "decrypt" in reason
    assert push_service.received() == []
    assert [(request.status, request.payload) for request in push_service.rejected()] == [(400, None)]


async def test_a_token_signed_by_another_key_than_k_is_403(push_service, vapid, session):
    subscription = push_service.new_subscription()
    token = vapid_headers(push_service, new_vapid())["Authorization"].removeprefix("vapid t=").split(",k=")[0]
    forged = f"vapid t={token}, k={public_key(vapid)}"

    status, reason = await post(session, subscription, encrypted(subscription, ALERT),
                                raw_headers(push_service, vapid, Authorization=forged))

    assert (status, reason) == (403, "JWT signature does not verify with k")
    assert push_service.received() == []


@pytest.mark.parametrize(
    "claims, reason",
    [
        ({"aud": "http://127.0.0.1:1"}, "is not this push service's origin"),
        ({"aud": "https://fcm.googleapis.com"}, "is not this push service's origin"),
        ({"exp": -60}, "JWT expired"),
        ({"exp": 25 * 3600}, "JWT exp more than 24 hours ahead"),
        ({"sub": "kitchen@pickup.example"}, "JWT sub is not a mailto: or https: URI"),
    ],
)
async def test_a_token_with_wrong_claims_is_403(push_service, session, claims, reason):
    if "exp" in claims:
        claims = {"exp": int(time.time()) + claims["exp"]}  # seconds from now
    vapid = Vapid(conf={"no-strict": True})  # py_vapid itself refuses to sign a sub without mailto:
    vapid.generate_keys()
    subscription = push_service.new_subscription()
    headers = {**raw_headers(push_service, vapid), **vapid_headers(push_service, vapid, **claims)}

    status, text = await post(session, subscription, encrypted(subscription, ALERT), headers)

    assert status == 403 and reason in text
    assert push_service.received() == []


@pytest.mark.parametrize(
    "changes, status, reason",
    [
        ({"Authorization": None}, 401, "Authorization header missing"),
        ({"Authorization": "WebPush eyJ0eXAi.eyJhdWQi.c2ln"}, 401, "not the vapid scheme"),
        ({"TTL": None}, 400, "TTL header missing"),
        ({"TTL": "-1"}, 400, "not a non-negative integer"),
        ({"TTL": "1.5"}, 400, "not a non-negative integer"),
        ({"Urgency": "urgent"}, 400, "Urgency"),
        ({"Topic": "o" * 33}, 400, "Topic"),
        ({"Topic": "order 7"}, 400, "Topic"),
        ({"Content-Encoding": "aesgcm"}, 400, "Content-Encoding is not aes128gcm"),
        ({"Content-Encoding": None}, 400, "Content-Encoding is not aes128gcm"),
    ],
)
async def test_a_push_with_bad_headers_is_refused(push_service, vapid, session, changes, status, reason):
    subscription = push_service.new_subscription()

    headers = raw_headers(push_service, vapid, **changes)

    answer = await post(session, subscription, encrypted(subscription, ALERT), headers)

    assert answer[0] == status and reason in answer[1]
    assert [(request.status, request.reason) for request in push_service.requests()] == [answer]


async def test_an_unknown_or_expired_subscription_is_404_and_one_unsubscribed_is_410(push_service, vapid, session):
    expired, unsubscribed = push_service.new_subscription(), push_service.new_subscription()
    unknown = BrowserSubscription.create(push_service.url + "/push/never-made")
    push_service.unsubscribe(expired)
    push_service.unsubscribe(unsubscribed, gone=True)

    statuses = [(await send(session, push_service, s, vapid)).status for s in (unknown, expired, unsubscribed)]

    assert statuses == [404, 404, 410]
    assert push_service.received() == []


# ------------------------------------------------------------------ scripted answers

async def test_scripted_answers_come_back_as_scripted_and_then_the_default(push_service, vapid, session):
    leaving, staying = push_service.new_subscription(), push_service.new_subscription()
    push_service.answer(429, retry_after=7, times=2)  # for every subscription
    push_service.answer(410, subscription=leaving, times=1)  # its own script comes first

    gone = await send(session, push_service, leaving, vapid)
    slow_down = [await send(session, push_service, s, vapid) for s in (leaving, staying)]
    taken = await send(session, push_service, staying, vapid)
    push_service.answer(500)  # until changed
    failing = [await send(session, push_service, staying, vapid) for _ in range(2)]
    push_service.answer(201)
    taken_again = await send(session, push_service, staying, vapid)

    assert gone.status == 410
    assert [(r.status, r.headers.get("Retry-After")) for r in slow_down] == [(429, "7"), (429, "7")]
    assert [r.status for r in failing] == [500, 500]
    assert taken.status == taken_again.status == 201 and "Retry-After" not in taken.headers
    assert [(r.status, r.reason) for r in push_service.requests(leaving)] == [
        (410, "scripted 410"), (429, "scripted 429"),
    ]
    assert len(push_service.received(staying)) == 2
    assert {r.payload for r in push_service.rejected()} == {ALERT}  # scripted answers go to valid pushes only


async def test_a_held_push_times_a_client_out_and_is_answered_once_released(push_service, vapid, session):
    subscription = push_service.new_subscription()
    push_service.answer(HANG, times=2)

    short_timeout = aiohttp.ClientTimeout(total=0.5)
    impatient = asyncio.create_task(send(session, push_service, subscription, vapid, timeout=short_timeout))
    await push_service.wait_for_async(1, accepted=False)  # it reached the service, which holds it
    with pytest.raises(TimeoutError):
        await impatient
    waiting = asyncio.create_task(send(session, push_service, subscription, vapid))
    await push_service.wait_for_async(2, accepted=False)
    assert not waiting.done()
    push_service.release()

    assert (await waiting).status == 503
    assert (await send(session, push_service, subscription, vapid)).status == 201
    assert [request.status for request in push_service.requests()] == [None, None, 201]


# ------------------------------------------------------------------ topics, light mode, process

async def test_topics_are_recorded_and_an_offline_browser_gets_only_the_latest_of_each(push_service, vapid, session):
    subscription = push_service.new_subscription()
    pusher = WebPusher(subscription.info(), aiohttp_session=session)
    for payload, topic in [(b"ready", "order-7"), (b"hello", None), (b"ready, hurry", "order-7")]:
        headers = {**vapid_headers(push_service, vapid), **({"Topic": topic} if topic else {})}
        assert (await pusher.send_async(payload, headers, ttl=60)).status == 201

    assert [r.topic for r in push_service.received(subscription)] == ["order-7", None, "order-7"]
    assert [r.payload for r in push_service.as_if_offline(subscription)] == [b"hello", b"ready, hurry"]


async def test_without_decryption_every_other_check_still_holds(vapid, session):
    with PushService(decrypt=False) as service:
        subscription = service.new_subscription()
        taken = await send(session, service, subscription, vapid)
        restricted = service.new_subscription(application_server_key=public_key(new_vapid()))
        other_key = await send(session, service, restricted, vapid)
        no_ttl = await post(session, subscription, encrypted(subscription, ALERT),
                            raw_headers(service, vapid, TTL=None))

        assert taken.status == 201
        assert other_key.status == 403
        assert no_ttl[0] == 400
        assert [request.payload for request in service.received()] == [None]


@pytest.mark.processes
async def test_the_service_as_a_process_reports_what_it_received(vapid, session, tmp_path):
    with open(tmp_path / "push-service.log", "wb") as log, push_service_process(log=log) as service:
        subscription = service.new_subscription()
        taken = await send(session, service, subscription, vapid)
        service.answer(429, subscription=subscription, retry_after=3, times=1)
        refused = await send(session, service, subscription, vapid)
        service.unsubscribe(subscription, gone=True)
        gone = await send(session, service, subscription, vapid)

        [message] = service.wait_for(1, subscription)
        assert [taken.status, refused.status, gone.status] == [201, 429, 410]
        assert message.payload == ALERT and message.ttl == 60
        assert [request.status for request in service.requests(subscription)] == [201, 429, 410]
