"""How much one customer socket may send, and how many sockets one session or address may hold.

A phone sends a handful of messages a minute; a script floods. Every frame
daphne reads waits in memory for the consumer, so a flooding socket must be
answered cheaply (before any JSON parsing) and, if it keeps on, closed.
Counts are per web process: a client spread over several processes by the
load balancer gets each process's allowance.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from django.conf import settings

# Close code for a socket that kept flooding after being told to slow down,
# and for one over the connection caps (docs/protocol.md).
CLOSE_FLOODING = 4429
# A socket refused this many messages without ever slowing down enough to
# refill its whole burst is closed.
REFUSALS_BEFORE_CLOSE = 200


class MessageBudget:
    """A token bucket: ``rate`` messages a second on average, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.refilled_at = clock()
        # Refusals since the socket last calmed down (its whole burst refilled).
        self.refused = 0

    def take(self) -> bool:
        """Spend one message; False when the socket is over its budget."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled_at) * self.rate)
        self.refilled_at = now
        if self.tokens >= self.burst:
            self.refused = 0
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refused += 1
        return False

    def retry_after(self) -> int:
        """Whole seconds until the next message would be taken."""
        return max(1, int((1 - self.tokens) / self.rate + 0.999))

    @property
    def flooding(self) -> bool:
        return self.refused >= REFUSALS_BEFORE_CLOSE


def message_budget() -> MessageBudget:
    rate = settings.PICKUP_MESSAGES_PER_SECOND_PER_SOCKET
    return MessageBudget(rate, burst=max(1, int(rate * 3)))


class OpenSockets:
    """This process's customer sockets, counted per session and per client address."""

    def __init__(self) -> None:
        self.per_session: Counter[str] = Counter()
        self.per_address: Counter[str] = Counter()

    def admit(self, customer_id: str | None, address: str) -> bool:
        """Count a new socket in, unless its session or address already holds its share
        (a visitor without a session counts for its address only)."""
        session_cap = settings.PICKUP_SOCKETS_PER_SESSION
        address_cap = settings.PICKUP_SOCKETS_PER_ADDRESS
        if customer_id and session_cap and self.per_session[customer_id] >= session_cap:
            return False
        if address and address_cap and self.per_address[address] >= address_cap:
            return False
        if customer_id:
            self.per_session[customer_id] += 1
        if address:
            self.per_address[address] += 1
        return True

    def release(self, customer_id: str | None, address: str) -> None:
        for counts, key in ((self.per_session, customer_id), (self.per_address, address)):
            if key and counts[key] > 0:
                counts[key] -= 1
                if not counts[key]:
                    del counts[key]


open_sockets = OpenSockets()
