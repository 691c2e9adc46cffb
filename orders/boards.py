"""The counter screen: which pickup codes it shows, and the links that open it.

A board shows pickup codes and their state, nothing else: no names, items,
prices or customer ids, because it hangs where every customer can read it
and its link opens it without a login. Links are revoked here, and a
revoked link's open boards are told to close after commit.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from notifications.sender import publish
from orders import selectors
from orders.models import BoardLink

# Sent in the close frame of a board whose link is unknown or revoked.
CLOSE_BOARD_UNKNOWN = 4404
CLOSE_BOARD_REVOKED = 4410


def board_group(link_id: int) -> str:
    """The channel-layer group of every open board opened with one link."""
    return f"counter.board.{link_id}"


def find_link(token: str) -> BoardLink | None:
    """The link with this token, revoked or not; None for a token nobody made."""
    if not token:
        return None
    return BoardLink.objects.filter(token=token).first()


def revoke_links(links: list[BoardLink]) -> int:
    """Revoke links that are still valid; their open boards close after commit. Returns how many."""
    ids = [link.pk for link in links if link.revoked_at is None]
    with transaction.atomic():
        revoked = BoardLink.objects.filter(pk__in=ids, revoked_at=None).update(revoked_at=timezone.now())
        messages = [(board_group(link_id), {"type": "board.revoked"}) for link_id in ids]
        transaction.on_commit(lambda: publish(messages))
    return revoked


def board_payload(now: datetime | None = None) -> dict:
    """What a board shows: pickup codes being prepared, and codes ready with when they became ready.

    Codes and states only (the module docstring says why).
    """
    now = now or timezone.now()
    preparing, ready = selectors.counter_board(now)
    return {
        "now": timezone.localtime(now).isoformat(),
        "preparing": [{"code": order.pickup_code, "status": order.status} for order in preparing],
        "ready": [
            {
                "code": order.pickup_code,
                "status": order.status,
                "ready_at": timezone.localtime(order.ready_at or order.pickup_at).isoformat(),
            }
            for order in ready
        ],
    }


def board_state(token: str) -> dict | None:
    """The board for a valid link, or None when the link is unknown or revoked."""
    link = find_link(token)
    if link is None or link.is_revoked:
        return None
    return board_payload()

