"""Both ends of a Web Push subscription, for the push service stand-in.

``BrowserSubscription`` is what a browser makes on ``pushManager.subscribe()``
(a P-256 key pair and a 16-byte auth secret) and how it decrypts a message
(RFC 8291). The ``check_*`` functions are what a push service verifies before
it takes a message (RFC 8030 headers, RFC 8292 VAPID); each failure raises
``Refused`` with the status a real service answers and a reason.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_BODY_BYTES = 4096  # RFC 8030 §7.2: services must take at least this; FCM and autopush take no more
MAX_EXP_AHEAD_SECONDS = 24 * 3600  # RFC 8292 §2
URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 §5.3
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 §5.4
_HEADER_BYTES = 16 + 4 + 1 + 65  # salt, record size, key id length, key id (RFC 8188 §2.1)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*=*")


class Refused(Exception):
    """A push request a real push service would turn away: its status and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Base64url (padding optional); ValueError for anything else, '+' and '/' included."""
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@dataclass
class BrowserSubscription:
    """A browser's push subscription: the endpoint the service gave it and the keys only the browser holds.

    ``application_server_key`` is the VAPID public key (base64url) the page
    subscribed with, or None for an unrestricted subscription.
    """

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    application_server_key: str | None = None

    @classmethod
    def create(cls, endpoint: str, application_server_key: str | None = None) -> BrowserSubscription:
        if application_server_key is not None and b64url_decode(application_server_key)[:1] != b"\x04":
            raise ValueError("applicationServerKey is not an uncompressed P-256 point")  # subscribe() refuses it too
        return cls(endpoint, ec.generate_private_key(ec.SECP256R1()), os.urandom(16), application_server_key)

    @property
    def id(self) -> str:
        return self.endpoint.rsplit("/", 1)[1]

    def info(self) -> dict:
        """Exactly what ``PushSubscription.toJSON()`` gives the page (and pywebpush takes)."""
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": b64url(_public_point(self.private_key)), "auth": b64url(self.auth_secret)},
        }

    def decrypt(self, body: bytes) -> bytes:
        """The plaintext of an RFC 8291 aes128gcm body; raises (ValueError, InvalidTag, ECEException…) if it
        was not encrypted to this subscription's keys or was changed on the way."""
        return http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm")

    def to_json(self) -> dict:
        """With the private key, for handing a subscription from the service's process to a test's."""
        scalar = self.private_key.private_numbers().private_value.to_bytes(32, "big")
        return {
            "endpoint": self.endpoint,
            "private_key": b64url(scalar),
            "auth_secret": b64url(self.auth_secret),
            "application_server_key": self.application_server_key,
        }

    @classmethod
    def from_json(cls, data: dict) -> BrowserSubscription:
        key = ec.derive_private_key(int.from_bytes(b64url_decode(data["private_key"]), "big"), ec.SECP256R1())
        return cls(data["endpoint"], key, b64url_decode(data["auth_secret"]), data["application_server_key"])


# ------------------------------------------------------------------ VAPID (RFC 8292)

def check_vapid(authorization: str | None, *, audience: str, now: float, restricted_to: str | None) -> str:
    """Check ``Authorization: vapid t=<JWT>, k=<key>``; returns the key k.

    401 when the header is absent or not the vapid scheme; 403 when the token's
    signature or claims are invalid (§2) or k is not the key the subscription
    was restricted to (§4.2).
    """
    token, key = _vapid_parameters(authorization)
    claims = _verified_claims(token, key)
    if claims.get("aud") != audience:
        raise Refused(403, f"JWT aud {claims.get('aud')!r} is not this push service's origin {audience!r}")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise Refused(403, "JWT exp missing or not a number")
    if exp <= now:
        raise Refused(403, "JWT expired")
    if exp > now + MAX_EXP_AHEAD_SECONDS:
        raise Refused(403, "JWT exp more than 24 hours ahead")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
        raise Refused(403, "JWT sub is not a mailto: or https: URI")
    if restricted_to is not None and b64url_decode(key) != b64url_decode(restricted_to):
        raise Refused(403, "VAPID key is not the applicationServerKey the subscription was made with")
    return key


def _vapid_parameters(authorization: str | None) -> tuple[str, str]:
    scheme, _, rest = (authorization or "").strip().partition(" ")
    if scheme.lower() != "vapid":
        raise Refused(401, "Authorization header missing or not the vapid scheme")
    parameters = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        parameters[name.strip().lower()] = value.strip()
    if not parameters.get("t") or not parameters.get("k"):
        raise Refused(401, "vapid Authorization without t= and k=")
    return parameters["t"], parameters["k"]


@functools.lru_cache(maxsize=4096)
def _verified_claims(token: str, key: str) -> dict:
    """The JWT's claims once its ES256 signature checks out against k. Cached:
    senders reuse a token for many messages, and a signature stays valid;
    the claims are still checked on every request."""
    try:
        header, claims, signature = (b64url_decode(part) for part in token.split("."))
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
        if json.loads(header).get("alg") != "ES256":
            raise Refused(403, "JWT alg is not ES256")
        if len(signature) != 64:  # JWS ES256 is r || s, 32 bytes each (RFC 7518 §3.4), not DER
            raise Refused(403, "JWT signature is not 64 bytes (r || s)")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        public_key.verify(der, token.rsplit(".", 1)[0].encode(), ec.ECDSA(hashes.SHA256()))
        parsed = json.loads(claims)
    except InvalidSignature:
        raise Refused(403, "JWT signature does not verify with k") from None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Refused(403, "JWT or k malformed") from None
    if not isinstance(parsed, dict):
        raise Refused(403, "JWT claims are not an object")
    return parsed


# ------------------------------------------------------------------ headers and body (RFC 8030, 8291)

def check_headers(headers: Mapping[str, str]) -> tuple[int, str | None, str | None]:
    """TTL (required), Urgency and Topic (optional), as (ttl, urgency, topic); 400 when malformed."""
    ttl = headers.get("TTL")
    if ttl is None:
        raise Refused(400, "TTL header missing")  # RFC 8030 §5.2: MUST be a 400
    if not re.fullmatch(r"[0-9]+", ttl.strip()):
        raise Refused(400, f"TTL {ttl!r} is not a non-negative integer")
    urgency = headers.get("Urgency")
    if urgency is not None and urgency not in URGENCIES:
        raise Refused(400, f"Urgency {urgency!r} is not one of {', '.join(URGENCIES)}")
    topic = headers.get("Topic")
    if topic is not None and not _TOPIC.fullmatch(topic):
        raise Refused(400, "Topic is not 1 to 32 characters of the base64url alphabet")
    return int(ttl), urgency, topic


def check_body(headers: Mapping[str, str], body: bytes) -> None:
    """Size and shape of the encrypted body, without decrypting it: 413 when too large,
    400 unless it is one aes128gcm record carrying the sender's P-256 key (RFC 8291 §4)."""
    if len(body) > MAX_BODY_BYTES:
        raise Refused(413, f"body of {len(body)} bytes is over {MAX_BODY_BYTES}")
    if not body:
        return  # a push without payload (RFC 8030 §5) needs no encryption
    if headers.get("Content-Encoding", "").strip().lower() != "aes128gcm":
        raise Refused(400, "Content-Encoding is not aes128gcm")
    if len(body) < _HEADER_BYTES + 17 or body[20] != 65 or body[21] != 4:
        raise Refused(400, "aes128gcm header does not carry an uncompressed P-256 key id")
    record_size = int.from_bytes(body[16:20], "big")
    if record_size < 18 or len(body) - _HEADER_BYTES > record_size:
        raise Refused(400, "body is not a single aes128gcm record")
