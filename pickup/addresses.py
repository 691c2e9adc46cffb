"""The client's address, the one the order limits, the socket caps and the admin-login throttle count.

Each proxy in front of daphne appends the address it heard from to
``X-Forwarded-For`` (nginx's ``$proxy_add_x_forwarded_for``), after whatever
the client itself wrote there. Only the last ``PICKUP_TRUSTED_PROXIES``
entries were written by our own proxies, so the client is the N-th entry
from the right; anything to its left is the client's own word. With no proxy
(0) the header is ignored and the socket's peer is the client. daphne's
``--proxy-headers`` takes the leftmost entry instead, which is why the
address is read here and not from what daphne made of the header.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def address_from(peer: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The client's address given the socket's ``peer``, the ``X-Forwarded-For``
    value and how many proxies we run in front.

    A request that came through fewer proxies than that (one sent to daphne
    directly) or whose entry is not an address is counted under the peer.
    """
    if trusted_proxies <= 0 or not forwarded_for:
        return peer
    entries = [entry.strip() for entry in forwarded_for.split(",")]
    if len(entries) < trusted_proxies:
        return peer
    try:
        return str(ipaddress.ip_address(entries[-trusted_proxies]))
    except ValueError:
        return peer


def client_address(request: HttpRequest) -> str:
    """The client's address for an HTTP request (also django-axes' ``AXES_CLIENT_IP_CALLABLE``)."""
    return address_from(
        request.META.get("REMOTE_ADDR") or "", request.META.get("HTTP_X_FORWARDED_FOR"), settings.PICKUP_TRUSTED_PROXIES
    )


def client_address_from_scope(scope: dict) -> str:
    """The client's address for an ASGI scope (a WebSocket's, in the consumers)."""
    peer = (scope.get("client") or [""])[0] or ""
    # Repeated headers count as one list, as Django's ASGI request joins them.
    forwarded_for = ",".join(
        value.decode("latin-1") for name, value in scope.get("headers") or [] if name.lower() == b"x-forwarded-for"
    )
    return address_from(peer, forwarded_for, settings.PICKUP_TRUSTED_PROXIES)
