"""The operator's endpoints: liveness, readiness and metrics. Not linked from any page."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from notifications.metrics import AlertBacklog
from orders.metrics import KitchenQueueDepth
from pickup import metrics, probes


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
