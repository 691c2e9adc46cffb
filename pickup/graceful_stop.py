"""A web process's graceful stop: what daphne does on SIGTERM before it lets go.

1. /readyz says no (pickup.probes) and the process stops listening: a load
   balancer, or the kernel, sends new customers to another process.
2. The open WebSockets are closed with 1012, "service restart", a slice at a
   time over ``DRAIN_SECONDS``, so each page reconnects at once to another
   process (static/orders/socket.js) and those pages arrive there as a
   stream, not all together: a process taking every page of another at once
   admitted them for a second or two, and an alert due meanwhile was as
   late. Pages still here are served as usual: their alerts are pushed here.
3. Together: the alert timers hand back their work (``AlertTimers.hand_back``:
   alerts claimed and due within a second are pushed, pushes made are
   written down, claims further ahead are released for run_queue), and the
   last sockets are waited for.
4. Then, at most ``STOP_WITHIN`` + 1 s after the signal, the reactor stops
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
# The sockets' closes are spread over this much of it, in slices this far apart.
DRAIN_SECONDS = 2.0
DRAIN_SLICE_SECONDS = 0.05


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
    task = asyncio.get_event_loop().create_task(_drain_then_hand_over(reactor))
    task.add_done_callback(lambda _: reactor.stop() if reactor.running else None)


def _stop_listening(reactor) -> None:
    from twisted.internet.interfaces import IListeningPort

    for reader in reactor.getReaders():
        if IListeningPort.providedBy(reader):
            reader.stopListening()


def _open_websockets(reactor) -> list:
    from daphne.ws_protocol import WebSocketProtocol

    return [
        protocol
        for protocol in (getattr(reader, "protocol", None) for reader in reactor.getReaders())
        if isinstance(protocol, WebSocketProtocol) and protocol.state == WebSocketProtocol.STATE_OPEN
    ]


async def _drain_then_hand_over(reactor) -> None:
    """Close the sockets a slice at a time, then hand the timers back, all within ``STOP_WITHIN`` + 1 s.

    A consumer cannot send 1012: ``websocket.close`` goes through autobahn's
    ``sendClose``, which takes 1000 or 3000-4999 only, so the frame is sent
    on daphne's protocol itself, the way daphne sends 1011 after an error;
    daphne tells each consumer when its page answers.
    """
    websockets = _open_websockets(reactor)
    logger.info("SIGTERM: closing %d socket(s) with 1012 over %.0f s, then handing back the alert timers",
                len(websockets), DRAIN_SECONDS)
    await close_in_slices(websockets)
    await _hand_over(within=STOP_WITHIN - DRAIN_SECONDS)


async def close_in_slices(websockets: list, *, sleep=asyncio.sleep) -> None:
    """Send each of daphne's WebSocket protocols still open a 1012 close frame, a slice every ``DRAIN_SLICE_SECONDS``."""
    slices = max(1, int(DRAIN_SECONDS / DRAIN_SLICE_SECONDS))
    per_slice = max(1, -(-len(websockets) // slices))  # rounded up: nothing is left over after the last slice
    for start in range(0, len(websockets), per_slice):
        if start:
            await sleep(DRAIN_SLICE_SECONDS)
        for protocol in websockets[start : start + per_slice]:
            if protocol.state == protocol.STATE_OPEN:  # its page may have gone meanwhile
                protocol.sendCloseFrame(code=CLOSE_SERVICE_RESTART)


async def _hand_over(within: float) -> None:
    from notifications.timers import alert_timers
    from orders import sockets

    work = asyncio.gather(alert_timers.hand_back(), sockets.all_closed(within=within), return_exceptions=True)
    try:
        timers, still_open = await asyncio.wait_for(work, within + 1)
    except TimeoutError:
        logger.warning("graceful stop took over %.0f s; stopping anyway", STOP_WITHIN + 1)
        return
    if isinstance(timers, BaseException):
        logger.error("handing back the alert timers failed; their leases will run out", exc_info=timers)
    if isinstance(still_open, BaseException):
        logger.error("closing the sockets failed", exc_info=still_open)
    elif still_open:
        logger.warning("%d socket(s) did not close in time; dropped", still_open)
