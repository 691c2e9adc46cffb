"""A customer's Web Push subscriptions: kept, checked, capped, ended, and owed the alerts still pending.

The page sends what the browser's ``PushSubscription.toJSON()`` gave it.
Nothing is stored unless all of it is usable: an endpoint a push service
answers at, a P-256 public key and a 16-byte auth secret (RFC 8291).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from notifications import vapid, web_pushes
from notifications.models import PushSubscription
from pickup.errors import PickupError

# A customer's phones and laptops; past this the oldest subscription goes.
SUBSCRIPTIONS_PER_CUSTOMER = 10
# Push services are reached over HTTPS; the local stand-in of the tests and
# of development answers on loopback over plain HTTP.
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_ENDPOINT_LENGTH = PushSubscription._meta.get_field("endpoint").max_length
MAX_USER_AGENT_LENGTH = PushSubscription._meta.get_field("user_agent").max_length


def _invalid(message, field: str) -> PickupError:
    return PickupError("invalid_subscription", message, field=field)


def _endpoint(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ENDPOINT_LENGTH:
        raise _invalid(_("The subscription's endpoint is missing or too long."), "endpoint")
    parts = urlsplit(value)
    loopback_allowed = settings.DEBUG or getattr(settings, "PICKUP_PUSH_ALLOW_LOOPBACK", False)
    on_loopback = parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS
    try:
        URLValidator(schemes=["https", "http"] if loopback_allowed and on_loopback else ["https"])(value)
    except ValidationError:
        raise _invalid(_("The subscription's endpoint must be an https:// address."), "endpoint") from None
    if on_loopback and not loopback_allowed:
        raise _invalid(_("The subscription's endpoint must be an https:// address."), "endpoint")
    return value


def _key(keys: dict, name: str, length: int) -> str:
    value = keys.get(name)
    try:
        raw = vapid.b64url_decode(value) if isinstance(value, str) and len(value) <= 200 else b""
    except ValueError:
        raw = b""
    if len(raw) != length:
        raise _invalid(_("The subscription's keys are not the ones a browser makes."), f"keys.{name}")
    return value


def parse_subscription(data: object) -> tuple[str, str, str]:
    """(endpoint, p256dh, auth) from a ``PushSubscription.toJSON()``; PickupError naming the bad field."""
    if not isinstance(data, dict):
        raise _invalid(_("Send the subscription as the browser gives it."), "subscription")
    endpoint = _endpoint(data.get("endpoint"))
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise _invalid(_("The subscription's keys are not the ones a browser makes."), "keys")
    p256dh = _key(keys, "p256dh", 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), vapid.b64url_decode(p256dh))
    except ValueError:
        raise _invalid(_("The subscription's keys are not the ones a browser makes."), "keys.p256dh") from None
    return endpoint, p256dh, _key(keys, "auth", 16)


def subscribe(*, customer_id: str, data: object, user_agent: str = "") -> tuple[PushSubscription, bool]:
    """Keep a browser's subscription for this customer; (subscription, created).

    The same endpoint sent again (the page does on every load) refreshes its
    keys. An endpoint that belonged to another customer belongs to this one
    now: it is the same browser, and whoever uses it now gets the alerts.
    A new subscription is owed the customer's pending alerts.
    """
    if not vapid.configured():
        raise PickupError("web_push_off", _("Alerts on a locked phone are not available here."))
    endpoint, p256dh, auth = parse_subscription(data)
    with transaction.atomic():
        PushSubscription.objects.filter(endpoint=endpoint).exclude(customer_id=customer_id).delete()
        subscription, created = PushSubscription.objects.update_or_create(
            endpoint=endpoint,
            defaults={"customer_id": customer_id, "p256dh": p256dh, "auth": auth, "user_agent": user_agent[:MAX_USER_AGENT_LENGTH]},
        )
        if created:
            _drop_oldest(customer_id)
            web_pushes.owe_pending(subscription)
    return subscription, created


def _drop_oldest(customer_id: str) -> None:
    keep = PushSubscription.objects.filter(customer_id=customer_id).order_by("-created_at", "-pk")[:SUBSCRIPTIONS_PER_CUSTOMER]
    PushSubscription.objects.filter(customer_id=customer_id).exclude(pk__in=list(keep.values_list("pk", flat=True))).delete()


def unsubscribe(*, customer_id: str, endpoint: object) -> None:
    """End this customer's subscription at ``endpoint``; another customer's looks the same as none."""
    if not isinstance(endpoint, str) or not endpoint:
        raise _invalid(_("The subscription's endpoint is missing or too long."), "endpoint")
    deleted, _rows = PushSubscription.objects.filter(customer_id=customer_id, endpoint=endpoint).delete()
    if not deleted:
        raise PickupError("subscription_not_found", _("There is no such subscription for you."), field="endpoint")
