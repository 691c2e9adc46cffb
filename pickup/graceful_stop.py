"""A web process's graceful stop: what daphne does on SIGTERM before it lets go.

1. /readyz says no (pickup.probes) and the process stops listening: a load
   balancer, or the kernel, sends new customers to another process.
2. Together: the alert timers hand back their work (``AlertTimers.hand_back``:
   alerts claimed and due within a second are pushed, pushes made are
   written down, claims further ahead are released for run_queue), and
   every open WebSocket is closed with 1012, "service restart", so its page
   reconnects at once, to another process (static/orders/socket.js).
3. Then, at most ``STOP_WITHIN`` + 1 s after the signal, the reactor stops
   as on any shutdown: daphne cancels whatever is left and exits 0.

Daphne's own SIGTERM handling stops the reactor at once, and its shutdown
trigger cancels every socket's application before a close frame could
leave; so this process answers SIGTERM itself. A second SIGTERM stops it
at once; SIGINT (Ctrl-C) keeps the reactor's own, immediate stop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

from pickup.probes import mark_stopping, stopping

logger = logging.getLogger("pickup.asgi")

# "Service restart" (RFC 6455's IANA registry): this process is going away,
# the page reconnects at once and the load balancer sends it elsewhere.
CLOSE_SERVICE_RESTART = 1012

# Seconds the sockets have to close and the timers to hand back before the
# reactor stops anyway; an operator's stop timeout (systemd's TimeoutStopSec)
# must leave room for it (README, "Production").
STOP_WITHIN = 5.0


def answer_sigterm(reactor) -> None:
    """From now on SIGTERM stops this process gracefully (main thread only, as signals are)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_sigterm(signum, frame) -> None:
        if stopping():
            reactor.callFromThread(reactor.stop)  # asked twice: now
            return
        mark_stopping()
        reactor.callFromThread(_begin, reactor)

    signal.signal(signal.SIGTERM, on_sigterm)


def _begin(reactor) -> None:
    _stop_listening(reactor)
    _close_sockets(reactor)
    task = asyncio.get_event_loop().create_task(_hand_over())
    task.add_done_callback(lambda _: reactor.stop() if reactor.running else None)


def _stop_listening(reactor) -> None:
    from twisted.internet.interfaces import IListeningPort

    for reader in reactor.getReaders():
        if IListeningPort.providedBy(reader):
            reader.stopListening()


def _close_sockets(reactor) -> None:
    """Send every open WebSocket a 1012 close frame; daphne tells each consumer when its page answers.

    A consumer cannot: ``websocket.close`` goes through autobahn's
    ``sendClose``, which takes 1000 or 3000-4999 only, so the frame is sent
    on daphne's protocol itself, the way daphne sends 1011 after an error.
    """
    from daphne.ws_protocol import WebSocketProtocol

    for reader in reactor.getReaders():
        protocol = getattr(reader, "protocol", None)
        if isinstance(protocol, WebSocketProtocol) and protocol.state == WebSocketProtocol.STATE_OPEN:
            protocol.sendCloseFrame(code=CLOSE_SERVICE_RESTART)


async def _hand_over() -> None:
    from notifications.timers import alert_timers
    from orders import sockets

    logger.info("SIGTERM: %d socket(s) closing with 1012, handing back the alert timers", len(sockets.open_here))
    work = asyncio.gather(alert_timers.hand_back(), sockets.all_closed(within=STOP_WITHIN), return_exceptions=True)
    try:
        timers, still_open = await asyncio.wait_for(work, STOP_WITHIN + 1)
    except TimeoutError:
        logger.warning("graceful stop took over %.0f s; stopping anyway", STOP_WITHIN + 1)
        return
    if isinstance(timers, BaseException):
        logger.error("handing back the alert timers failed; their leases will run out", exc_info=timers)
    if isinstance(still_open, BaseException):
        logger.error("closing the sockets failed", exc_info=still_open)
    elif still_open:
        logger.warning("%d socket(s) did not close in time; dropped", still_open)
