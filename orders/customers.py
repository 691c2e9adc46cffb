"""Who the customer is, without sign-up: an id kept in the Django session.

A visitor who only looks (the ordering page, the pickup times) has no
session: a stored session per page load let one script fill the session
table. The page starts one (``POST /session/``) just before the customer's
first order; the WebSocket reads it from the same session cookie, so every
tab of one browser is one customer.
"""

from __future__ import annotations

import secrets

SESSION_KEY = "pickup_customer_id"


def start_customer(request) -> str:
    """The customer id of this browser, created (with its session) if it has none."""
    customer_id = request.session.get(SESSION_KEY)
    if not customer_id:
        customer_id = secrets.token_hex(16)
        request.session[SESSION_KEY] = customer_id
    return customer_id


def existing_customer_id(request) -> str | None:
    """The customer id of this browser if it started one; None, never a new one."""
    return request.session.get(SESSION_KEY) or None


def customer_id_from_scope(scope) -> str | None:
    session = scope.get("session")
    if session is None:
        return None
    return session.get(SESSION_KEY)


LANGUAGE_KEY = "pickup_language"


def remember_language(request) -> bool:
    """Keep the page's language so alerts and socket errors use it too; True when it changed.

    Only for a customer: a visitor's language is the page's own, and
    writing it down would store a session for them.
    """
    if SESSION_KEY in request.session and request.session.get(LANGUAGE_KEY) != request.LANGUAGE_CODE:
        request.session[LANGUAGE_KEY] = request.LANGUAGE_CODE
        return True
    return False


def language_from_scope(scope, default: str) -> str:
    session = scope.get("session")
    return (session.get(LANGUAGE_KEY) if session is not None else None) or default
