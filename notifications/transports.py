"""The seam between the delivery bookkeeping and the ways an alert travels.

"Push this alert to this customer" has two implementations: the customer's
open sockets (``notifications.sender``, through the channel layer) and Web
Push (``notifications.webpush``, through the browser's push service). Each
answers every push with a ``Result``; the claims, the retry schedule and the
acknowledgements are kept once, by their callers (``notifications.services``
for the sockets, ``notifications.web_pushes`` for Web Push).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    # Taken by the transport: Redis queued it for every socket of the customer,
    # or the push service answered 201.
    DELIVERED = "delivered"
    # Not taken now, nothing wrong with it: try again soon (a full channel
    # layer inbox, Redis away, a push service's 429).
    REFUSED = "refused"
    # The attempt failed (timeout, connection error, 5xx): try again with back-off.
    FAILED = "failed"
    # The destination is gone for good (404/410): never again.
    GONE = "gone"
    # The push service will never take it (400, 401, 403, 413): never again, an operator should look.
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        """Whether this push is over, one way or another: nothing to try again."""
        return self in (Outcome.DELIVERED, Outcome.GONE, Outcome.REJECTED)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    # Seconds the other side asked us to wait before trying again (Retry-After).
    retry_after: float | None = None
    detail: str = ""


DELIVERED = Result(Outcome.DELIVERED)
REFUSED = Result(Outcome.REFUSED)
