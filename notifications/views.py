"""Web Push over HTTP: the customer's subscriptions and the service worker script. Thin: notifications.subscriptions decides."""

from __future__ import annotations

import json

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from notifications import subscriptions
from orders.customers import existing_customer_id
from pickup.errors import PickupError

# A PushSubscription.toJSON() is a few hundred bytes.
MAX_BODY_BYTES = 4096
SERVICE_WORKER = "notifications/service-worker.js"


def _error(error: PickupError, status: int) -> JsonResponse:
    return JsonResponse(error.as_dict(), status=status)


def _json_body(request: HttpRequest) -> dict:
    if len(request.body) > MAX_BODY_BYTES:
        raise PickupError("invalid_subscription", _("The subscription is too large."))
    try:
        return json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PickupError("invalid_json", _("Send the subscription as JSON.")) from None


@require_http_methods(["POST", "DELETE"])
def push_subscriptions(request: HttpRequest) -> JsonResponse:
    """POST keeps the browser's subscription for this customer; DELETE (with its endpoint) ends it."""
    customer_id = existing_customer_id(request)
    if customer_id is None:
        return _error(PickupError("no_session", _("Open the ordering page first, then turn on alerts.")), 403)
    try:
        body = _json_body(request)
        if request.method == "DELETE":
            subscriptions.unsubscribe(customer_id=customer_id, endpoint=body.get("endpoint") if isinstance(body, dict) else None)
            return JsonResponse({"deleted": True})
        subscription, created = subscriptions.subscribe(
            customer_id=customer_id, data=body, user_agent=request.headers.get("User-Agent", "")
        )
    except PickupError as error:
        status = {"subscription_not_found": 404, "web_push_off": 503}.get(error.code, 400)
        return _error(error, status)
    return JsonResponse(
        {"endpoint": subscription.endpoint, "created_at": subscription.created_at.isoformat()}, status=201 if created else 200
    )


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """The service worker, from the site's root so that its scope is the whole site.

    Served by Django, not WhiteNoise: a worker's scope cannot be wider than
    the folder its script comes from, and the browser must look for a new
    version on every visit (no-cache) rather than keep a hashed copy a year.
    """
    path = finders.find(SERVICE_WORKER)
    if path is None:
        raise Http404("No service worker.")
    with open(path, "rb") as script:
        response = HttpResponse(script.read(), content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response
