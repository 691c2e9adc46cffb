"""The VAPID keys (RFC 8292) that sign Web Push requests: the one place that reads them.

The private key is the raw P-256 scalar and the public key the uncompressed
point, both base64url without padding: the form the browser's
``applicationServerKey`` takes and ``py_vapid.Vapid.from_string`` reads.
``manage.py vapid_keys`` makes a pair, ``make run`` makes one for development,
and the deploy check (``notifications/checks.py``) says when they are missing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings

# What push services are told when the operator gave no subject (DEBUG only).
DEVELOPMENT_SUBJECT = "mailto:pickup@localhost"
_SUBJECT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^/\s]+(/\S*)?)$")


class KeyPair(NamedTuple):
    private_key: str
    public_key: str


def b64url_decode(text: str) -> bytes:
    """base64url with or without padding; ValueError on anything else."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def new_key_pair() -> KeyPair:
    """A fresh P-256 key pair in the form the settings take."""
    key = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(b64url_encode(key.private_numbers().private_value.to_bytes(32, "big")), b64url_encode(_public_point(key)))


def _private_key_from(text: str) -> ec.EllipticCurvePrivateKey:
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise ValueError("not 32 bytes")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def key_problems(private_key: str, public_key: str, subject: str) -> list[str]:
    """What is wrong with these settings, in words for the operator; empty when they can sign pushes."""
    problems = []
    if not private_key or not public_key:
        problems.append("VAPID_PRIVATE_KEY and VAPID_PUBLIC_KEY are not both set")
    else:
        try:
            derived = _public_point(_private_key_from(private_key))
        except ValueError:
            problems.append("VAPID_PRIVATE_KEY is not a base64url P-256 private key (32 bytes)")
        else:
            try:
                given = b64url_decode(public_key)
            except ValueError:
                given = b""
            if len(given) != 65 or given[0] != 4:
                problems.append("VAPID_PUBLIC_KEY is not a base64url uncompressed P-256 point (65 bytes)")
            elif given != derived:
                problems.append("VAPID_PUBLIC_KEY does not belong to VAPID_PRIVATE_KEY")
    if not _SUBJECT.match(subject):
        problems.append("VAPID_SUBJECT is not a mailto: or https: address")
    return problems


def configured() -> bool:
    """True when Web Push can be offered and sent: both keys set, a pair, and a subject (never missing in DEBUG)."""
    return not key_problems(settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY, subject())


def private_key() -> str:
    """The private key as ``py_vapid.Vapid.from_string`` (and pywebpush's ``vapid_private_key``) takes it."""
    return settings.VAPID_PRIVATE_KEY


def signer():
    """A ``py_vapid.Vapid`` (RFC 8292 ``vapid t=…, k=…``) holding the private key."""
    return _signer_for(settings.VAPID_PRIVATE_KEY)


@functools.cache
def _signer_for(private_key: str):
    from py_vapid import Vapid

    return Vapid.from_string(private_key)


def public_key() -> str:
    """The page's ``applicationServerKey``."""
    return settings.VAPID_PUBLIC_KEY


def subject() -> str:
    """The ``sub`` claim: the operator's contact address."""
    return settings.VAPID_SUBJECT or (DEVELOPMENT_SUBJECT if settings.DEBUG else "")
