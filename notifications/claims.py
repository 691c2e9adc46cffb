"""Leases: how exactly one of several senders takes a row to send.

Alerts (pushed to the customer's sockets) and Web Pushes (handed to a push
service) are both sent under a claim: a conditional UPDATE that writes a
fresh token and a lease end on the rows nobody holds, and that only one
sender wins. A sender that dies holding a claim loses it when the lease runs
out, and another sends the row again; a sender that stalled past its lease
finds its token gone when it comes to write the outcome, and writes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet


def unclaimed(rows: QuerySet, now: datetime) -> QuerySet:
    """Rows no sender holds: never claimed, or their holder's lease has run out."""
    return rows.filter(Q(claimed_until=None) | Q(claimed_until__lt=now))


def claim(rows: QuerySet, candidates: list[int], *, now: datetime, until: datetime) -> str | None:
    """Claim those of ``candidates`` in ``rows`` that nobody holds; the token of the claim, or None.

    The conditions of ``rows`` are repeated on the UPDATE itself so that,
    under any isolation level, a row another sender claimed meanwhile is not
    taken. Read the won rows back by primary key and token.
    """
    token = uuid.uuid4().hex
    won = unclaimed(rows, now).filter(pk__in=candidates).update(claim_token=token, claimed_until=until)
    return token if won else None


def backoff(base: timedelta, attempts: int, *, doublings: int = 6) -> timedelta:
    """1×, 2×, 4×… ``base`` after each attempt, capped at ``2**doublings`` ×."""
    return base * (2 ** min(attempts, doublings))
