"""The operator's endpoints (liveness, readiness and metrics; not linked from any page), and the 500 handler."""

from __future__ import annotations

import sys

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from notifications.metrics import AlertBacklog
from orders.metrics import KitchenQueueDepth
from pickup import busy, metrics, probes
from pickup.http_connections import connections_refused


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Restart it only when this fails, not when Redis does."""
    return JsonResponse({"status": "alive"})


@require_GET
async def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: send customers here only on 200 (database and Redis answer, not stopping)."""
    checks = await probes.readiness()
    failed = sorted(name for name, answer in checks.items() if answer != "ok")
    body = {"status": "unavailable" if failed else "ready", "failed": failed, "checks": checks}
    return JsonResponse(body, status=503 if failed else 200)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for a scraper holding METRICS_TOKEN; everyone else finds nothing here."""
    if not metrics.scrape_allowed(request):
        raise Http404
    body = metrics.exposition([KitchenQueueDepth(), AlertBacklog()])
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 page, except for a request that found no database connection.

    On a busy morning a request waits up to the pool's timeout for one of
    its process's DATABASE_POOL_MAX_SIZE connections; one that waited in vain
    (or that PostgreSQL refused, without the pool) is a full house, not a
    fault: 503 with ``Retry-After``, and a page asked for reloads itself.
    Django still logs it as an error, with the pool's message.
    """
    if not busy.out_of_database_connections(sys.exc_info()[1]):
        return defaults.server_error(request)
    connections_refused.labels("database_busy").inc()
    content_type, body = busy.answer(request.headers.get("Accept-Language", ""), request.headers.get("Accept", ""))
    return HttpResponse(body, status=503, content_type=content_type, headers={"Retry-After": str(busy.RETRY_AFTER_SECONDS)})
