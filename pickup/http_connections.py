"""daphne's HTTP connections: a deadline for each request to arrive, and a
polite refusal before the process runs out of file descriptors.

- **Slow requests.** Twisted's HTTP timeout is an idle timeout, reset by
  every byte, and daphne's ``--http-timeout`` starts once the request has
  arrived: a client trickling a header line every few seconds held its
  connection for ever, and a few thousand such clients hold them all
  (slowloris). Here a request must arrive whole, headers and body, within
  ``PICKUP_REQUEST_DEADLINE_SECONDS`` of its first byte; otherwise it is
  answered 408 and the connection closed. A connection that sends nothing
  stays under Twisted's own idle timeout (60 s).
- **File descriptors.** At start daphne raises its soft ``RLIMIT_NOFILE`` to
  the hard limit. A connection accepted on a descriptor so high that fewer
  than ``reserved_descriptors()`` would be left for the process's own work
  (the channel layer's and the database's connections, files) is answered
  503 with ``Retry-After`` (pickup/busy.py) once its request has arrived, WebSocket
  handshakes included, instead of the page failing with "Too many open
  files" when Django opens its next connection. ``accept`` hands out the
  lowest free descriptor, so the new one's number is a floor of how many are
  in use: the check costs nothing.

Installed by pickup/asgi.py under daphne only (``install``): it sets the
channel class daphne's HTTP factory builds (an HTTP/1.1 ``HTTPChannel``, as
daphne serves without Twisted's http2 extra).
"""

from __future__ import annotations

import json
import logging
import resource

from daphne import http_protocol
from django.conf import settings
from prometheus_client import Counter
from twisted.web import http

from pickup import busy

logger = logging.getLogger(__name__)

# Descriptors kept for the process itself beyond its pools: log files, the
# SQLite files of the request threads, Redis for the cache, metrics files.
HEADROOM = 128
connections_refused = Counter(
    "pickup_http_connections_refused_total",
    "HTTP requests answered without the application's answer: slow_request (408) and out_of_descriptors (503) "
    "by daphne, database_busy (503) by Django when no database connection was free within the pool's timeout.",
    ["reason"],
)

LIVENESS = b"/healthz"  # pickup/urls.py's liveness probe (pickup/views.py, health)

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

# Connections accepted on a descriptor at or above this are refused (None: no check).
admit_below: int | None = None


def reserved_descriptors() -> int:
    """Descriptors the process needs beside its clients' connections."""
    layer_hosts = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    layer = sum(host.get("max_connections", 100) if isinstance(host, dict) else 100 for host in layer_hosts)
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    database = pool["max_size"] if isinstance(pool, dict) else 32  # one per request thread otherwise
    return layer + database + HEADROOM


def raise_file_limit() -> int:
    """Raise the soft open-file limit to the hard one; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:
            logger.warning("could not raise the open-file limit from %d to %d (%s)", soft, hard, error)
    return soft


class BusyRequest(http.Request):
    """A request on a connection the process cannot afford: 503, then the connection is closed.

    Liveness still answers 200: the process is alive, only full, and a
    restart would drop every customer's socket. /readyz says 503 with the
    rest, so the load balancer sends new customers elsewhere.
    """

    def process(self) -> None:
        if self.path == LIVENESS:
            self._answer(200, "application/json", json.dumps({"status": "alive"}).encode())
            return
        language = (self.getHeader(b"accept-language") or b"").decode("latin-1")
        accept = (self.getHeader(b"accept") or b"").decode("latin-1")
        content_type, body = busy.answer(language, accept)
        self.setHeader(b"Retry-After", str(busy.RETRY_AFTER_SECONDS).encode())
        self._answer(503, content_type, body)

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.setResponseCode(status)
        self.setHeader(b"Content-Type", content_type.encode())
        self.setHeader(b"Content-Length", str(len(body)).encode())
        self.setHeader(b"Connection", b"close")
        self.channel.persistent = False
        self.write(body)
        self.finish()


class GuardedChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel with a deadline for each request and a refusal when descriptors run short."""

    deadline = None  # the pending call that ends a request too slow to arrive
    reading_request = True  # between requests, or reading one (not while one is answered)

    def connectionMade(self) -> None:
        super().connectionMade()
        fileno = getattr(self.transport, "fileno", None)
        if admit_below is not None and fileno is not None and fileno() >= admit_below:
            connections_refused.labels("out_of_descriptors").inc()
            self.requestFactory = BusyRequest

    def dataReceived(self, data: bytes) -> None:
        if self.reading_request and self.deadline is None:
            self.deadline = self.callLater(settings.PICKUP_REQUEST_DEADLINE_SECONDS, self._too_slow)
        super().dataReceived(data)

    def allContentReceived(self) -> None:
        self.reading_request = False
        self._cancel_deadline()
        super().allContentReceived()

    def requestDone(self, request) -> None:
        self.reading_request = True  # the next request's first byte starts its deadline
        super().requestDone(request)

    def connectionLost(self, reason) -> None:
        self._cancel_deadline()
        super().connectionLost(reason)

    def _cancel_deadline(self) -> None:
        if self.deadline is not None:
            if self.deadline.active():
                self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        connections_refused.labels("slow_request").inc()
        self.transport.write(TIMED_OUT)
        # Twisted's own end of an idle connection: close, and cut it if the client holds the close.
        self.timeoutConnection()


def install() -> None:
    """Make daphne's HTTP factory build guarded connections, with the file limit raised (before the server starts)."""
    global admit_below
    if http.H2_ENABLED:
        logger.warning("Twisted's http2 extra is installed: the request deadline and descriptor guard are not")
        return
    limit = raise_file_limit()
    admit_below = limit - reserved_descriptors()
    if admit_below < 256:
        logger.warning(
            "open-file limit %d leaves %d connections for clients after %d for the process itself: raise it "
            "(LimitNOFILE=65536 under systemd) or lower CHANNEL_LAYER_MAX_CONNECTIONS",
            limit, max(0, admit_below), reserved_descriptors(),
        )
    http_protocol.HTTPFactory.protocol = GuardedChannel
