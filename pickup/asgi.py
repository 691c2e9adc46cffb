"""ASGI entry point: Django for HTTP, Channels for the WebSockets.

Run with ``daphne pickup.asgi:application``. Under daphne the alert timers
are re-armed from the database as soon as the server runs, not on the first
connection, so a restarted web server keeps every promised alert; the group
keeper starts with them (notifications.memberships). A web server whose
Redis key prefix belongs to another database stops at once. Once it begins
to shut down, /readyz answers 503 (pickup/probes.py); on SIGTERM it stops
gracefully: its sockets are closed with 1012 and its timers handed back
first (pickup/graceful_stop.py). daphne's HTTP connections get a deadline to
arrive and a refusal before file descriptors run out (pickup/http_connections.py).
"""

import asyncio
import logging
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pickup.settings")
django_asgi_app = get_asgi_application()
logger = logging.getLogger("pickup.asgi")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from notifications.memberships import memberships  # noqa: E402
from notifications.timers import alert_timers  # noqa: E402
from orders.routing import websocket_urlpatterns  # noqa: E402
from pickup.gc_tuning import tune_for_latency  # noqa: E402
from pickup import http_connections, websocket_pacing  # noqa: E402
from pickup.graceful_stop import answer_sigterm  # noqa: E402
from pickup.probes import mark_stopping, stopping  # noqa: E402


def start_delivery(loop: asyncio.AbstractEventLoop) -> None:
    """The one place this process's alert timers and group keeper start, on the loop that serves it.

    Idempotent: both bind to ``loop`` once (tests stop them between tests).
    Not once the process is stopping: a request still served then must not
    arm again the timers the graceful stop handed back.
    """
    if stopping():
        return
    alert_timers.start(loop)
    memberships.start(loop)


class StartDeliveryFirst:
    """Outside daphne (another ASGI server, the tests' communicator) delivery starts with the first connection."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        start_delivery(asyncio.get_running_loop())
        return await self.app(scope, receive, send)


application = StartDeliveryFirst(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)


def _start_timers_with_daphne() -> None:
    """Under daphne, as soon as the server runs: a restarted web server re-arms its
    timers before anyone connects."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None and hasattr(reactor, "callWhenRunning"):
        websocket_pacing.install()  # before daphne builds its WebSocket factory
        http_connections.install()  # and its HTTP factory; raises the open-file limit

        def start() -> None:
            loop = asyncio.get_event_loop()
            start_delivery(loop)
            loop.create_task(_refuse_a_taken_namespace(reactor))
            answer_sigterm(reactor)  # in place of the reactor's own handler, installed by now

        reactor.callWhenRunning(start)
        # From the start of any shutdown /readyz says no (a graceful stop
        # says so before it drains).
        reactor.addSystemEventTrigger("before", "shutdown", mark_stopping)


async def _refuse_a_taken_namespace(reactor) -> None:
    """Stop this web server if its Redis key prefix belongs to another database:
    its orders would join, and be processed by, the other's kitchen queue."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    from orders import kitchen_queue

    def claim() -> None:
        try:
            kitchen_queue.claim_namespace()
        finally:
            connections.close_all()  # this thread's: nothing kept from a pool

    try:
        await sync_to_async(claim, thread_sensitive=False)()
    except kitchen_queue.NamespaceTaken as error:
        logger.critical("%s Stopping.", error)
        reactor.stop()
    except Exception as error:  # Redis or the database not there yet: run_queue checks again
        logger.warning("could not check who owns the Redis key prefix (%s)", error.__class__.__name__)


_start_timers_with_daphne()
tune_for_latency()
