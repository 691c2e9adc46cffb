"""Backpressure for a flooding WebSocket, inside daphne, before a frame costs more than its parse.

The consumers' message budget (orders/socket_limits.py) answers a socket
that sends too fast, but only once its frames have reached the consumer:
daphne reads whatever the client sends and queues every frame for it, so a
script sending at line speed filled memory (1.2 GB) and the event loop
(honest customers' alerts seconds late) before the consumer ever saw the
flood. Here the same budget is kept per connection as daphne reads frames:

- a frame within the budget goes to the consumer as before;
- the first frame over it goes on too, so the consumer answers
  ``rate_limited`` as docs/protocol.md says; the rest are dropped unread by
  anyone;
- while over budget, daphne stops reading the connection until its whole
  burst is back: the flood waits in the kernel's buffers and, by TCP's flow
  control, in the flooder's;
- a connection refused ``REFUSALS_BEFORE_CLOSE`` frames without once calming
  down is closed with 4429, as the consumer would.

Installed by pickup/asgi.py under daphne only (``install``): it replaces
the protocol class of daphne's WebSocket factory, the one daphne name this
project relies on besides its command line (tests/test_websocket_pacing.py
checks it).
"""

from __future__ import annotations

from daphne import ws_protocol

from orders.metrics import frames_dropped, sockets_closed_flooding
from orders.socket_limits import CLOSE_FLOODING, message_budget


class PacedWebSocketProtocol(ws_protocol.WebSocketProtocol):
    """daphne's WebSocket protocol, with a message budget kept as frames are read."""

    budget = None
    told = False
    paused = False
    closed_for_flooding = False

    def onMessage(self, payload, isBinary):
        if self.closed_for_flooding:  # the rest of the chunk read with the last frame
            frames_dropped.inc()
            return None
        if self.budget is None:
            self.budget = message_budget()
        if self.budget.take():
            self.told = False
            return super().onMessage(payload, isBinary)
        if self.budget.flooding:
            # Closed once, and never read again: the close handshake's timeout ends it.
            self.closed_for_flooding = True
            sockets_closed_flooding.inc()
            self.sendClose(code=CLOSE_FLOODING)
            self._pause(resume=False)
            return None
        self._pause()
        if not self.told:
            self.told = True
            return super().onMessage(payload, isBinary)  # the consumer answers rate_limited
        frames_dropped.inc()
        return None

    def _pause(self, *, resume: bool = True) -> None:
        """Stop reading this connection until its whole burst is back (a calm client is
        not slowed; a flooder's next read comes only when it could be within budget)."""
        if self.transport is None:
            return
        self.transport.pauseProducing()
        if self.paused or not resume:
            self.paused = True
            return
        from twisted.internet import reactor

        self.paused = True
        reactor.callLater(max(0.0, (self.budget.burst - self.budget.tokens) / self.budget.rate), self._resume)

    def _resume(self) -> None:
        if self.paused and self.transport is not None and self.state == self.STATE_OPEN:
            self.paused = False
            self.transport.resumeProducing()


def install() -> None:
    """Make daphne's WebSocket factory build paced connections (before the server starts)."""
    ws_protocol.WebSocketFactory.protocol = PacedWebSocketProtocol
