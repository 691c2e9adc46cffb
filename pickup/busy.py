"""The one answer for "the server is busy": 503 with ``Retry-After``, in the customer's language.

Two places give it:

- daphne, for a connection accepted with too few file descriptors left
  (pickup/http_connections.py, before Django sees the request);
- Django, for a request that waited the pool's timeout for a database
  connection, or that PostgreSQL refused for having too many
  (pickup/views.py, ``server_error``);
- the order and session limits, while Redis cannot count them (orders/limits.py,
  ``refusal``: on the socket and from ``POST /session/``).

A browser asking for a page gets a short page that reloads itself after
``Retry-After``; everyone else (the page's scripts, a WebSocket handshake)
gets ``{"code": "server_busy", "message": ..., "retry_after": ...}``.
"""

from __future__ import annotations

import json

from django.db import OperationalError
from django.http import HttpRequest
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext_lazy
from psycopg_pool import PoolTimeout

from pickup.errors import PickupError

# Seconds a refused client is asked to wait.
RETRY_AFTER_SECONDS = 5
# PostgreSQL's too_many_connections ("sorry, too many clients already").
TOO_MANY_CONNECTIONS = "53300"
MESSAGE = gettext_lazy("The server is busy. Please try again in a few seconds.")


def refusal() -> PickupError:
    """The busy answer as the error a service raises: ``server_busy`` with ``retry_after``."""
    return PickupError("server_busy", MESSAGE, retry_after=RETRY_AFTER_SECONDS)


def out_of_database_connections(error: BaseException | None) -> bool:
    """Whether Django raised ``error`` because no database connection was to be had."""
    cause = error.__cause__ if isinstance(error, OperationalError) else None
    return isinstance(cause, PoolTimeout) or getattr(cause, "sqlstate", None) == TOO_MANY_CONNECTIONS


def answer(accept_language: str, accept: str) -> tuple[str, bytes]:
    """(content type, body) of the busy answer for a client sending these headers."""
    asked = HttpRequest()
    asked.META["HTTP_ACCEPT_LANGUAGE"] = accept_language
    language = translation.get_language_from_request(asked)
    with translation.override(language):
        body = refusal().as_dict()
    message = body["message"]
    if "text/html" in accept:
        page = (f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<meta http-equiv="refresh" content="{RETRY_AFTER_SECONDS}"><title>{escape(message)}</title></head>'
                f"<body><p>{escape(message)}</p></body></html>")
        return "text/html; charset=utf-8", page.encode()
    return "application/json", json.dumps(body).encode()
