"""The customer's pages: order and follow an order. Ordering itself goes over the WebSocket.

Looking stores nothing: a visitor gets the menu and the pickup times without
a session, which the page starts (``start_session``) when they order.
"""

from __future__ import annotations

import json
import time
from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET, require_POST

from orders import dates, limits, pickup_times, selectors, services
from orders.models import Order, Restaurant
from orders.customers import existing_customer_id, remember_language, start_customer
from orders.identity import restaurant_card
from orders.payloads import status_note
from orders.picker import parse_day, picker_times
from pickup.addresses import client_address
from pickup.errors import PickupError

def _page_text() -> dict[str, str]:
    """Texts the page's script shows, translated on the server."""
    return {
        "accepted": _("Payment successful, please wait for your pickup alert."),
        "connected": _("Live"),
        "connecting": _("Connecting…"),
        "offline": _("Offline, reconnecting…"),
        "chooseItems": _("Choose at least one item."),
        "dismiss": _("Dismiss"),
        "noSession": _("Your order could not be sent. Please reload the page and try again."),
        "noOrders": _("No orders yet."),
        "cancelled": _("Order cancelled."),
        "moved": _("Pickup time changed."),
        "missed": _("Sent at %(time)s while you were away"),
        "confirmCancel": _("Cancel this order? This cannot be undone."),
        "statuses": {status: str(label) for status, label in Order.Status.choices},
        "notificationTitle": _("Pickup"),
        "countdown": _("Ready for pickup in %(time)s"),
    }


# The time chips a picker shows at once; "Later times" shows the next ones.
TIME_CHIPS = 8


def _picker() -> dict:
    """The picker as first rendered: the first day with room, its first chips, and how
    many chips a page holds (not how many the first day has left: late in the
    evening today has only a few, and another day's pages must still hold eight)."""
    return {**picker_times(Restaurant.current(), chips=TIME_CHIPS), "chips_per_page": TIME_CHIPS}


def _customer(request: HttpRequest) -> str | None:
    """This browser's customer id, None for a visitor who has not ordered; a
    customer's orders follow the language the page is shown in."""
    customer_id = existing_customer_id(request)
    if customer_id and remember_language(request):
        services.follow_customer_language(customer_id, request.LANGUAGE_CODE)
    return customer_id


@require_POST
def start_session(request: HttpRequest) -> HttpResponse:
    """Give this browser its customer session (the cookie), just before its first order.

    CSRF-protected like any form: the page sends its token. The WebSocket
    opened afterwards carries the cookie (docs/protocol.md, "Session"). New
    sessions are counted per client address (orders/limits.py): one too many
    is answered 429 ``rate_limited`` with ``Retry-After``; while Redis cannot
    count them (a failover), 503 ``server_busy``.
    """
    if existing_customer_id(request) is None:
        try:
            retry_after = limits.count_session_start(client_address(request))
        except PickupError as refusal:  # Redis out of reach: nothing started, try again shortly
            return _refused(refusal, 503)
        if retry_after is not None:
            return _refused(limits.sessions_rate_limited(retry_after), 429)
    start_customer(request)
    _customer(request)
    return HttpResponse(status=204)


def _refused(refusal: PickupError, status: int) -> JsonResponse:
    response = JsonResponse(refusal.as_dict(), status=status)
    response["Retry-After"] = str(refusal.retry_after)
    return response


@require_GET
def order_page(request: HttpRequest) -> HttpResponse:
    customer_id = _customer(request)
    context = {
        "has_session": customer_id is not None,
        "menu": [
            (item, item.display_name(request.LANGUAGE_CODE), item.display_description(request.LANGUAGE_CODE))
            for item in selectors.menu()
        ],
        "orders": selectors.latest_orders_of([customer_id])[customer_id] if customer_id else [],
        "picker": _picker(),
        "restaurant": restaurant_card(Restaurant.current(), request.LANGUAGE_CODE),
        "time_zone": settings.TIME_ZONE,
        "page_text": _page_text(),
    }
    return render(request, "orders/order_page.html", context)


@require_GET
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    customer_id = _customer(request)
    order = selectors.customer_order(customer_id, order_id) if customer_id else None
    if order is None:
        raise Http404("No such order.")
    now = timezone.now()
    context = {
        "order": order,
        "can_change": order.customer_may_change(now),
        "status_note": status_note(order, now),
        "pickup_label": dates.pickup_label(order.pickup_at),
        "lines": [(line, line.menu_item.display_name(request.LANGUAGE_CODE)) for line in order.lines.all()],
        "picker": _picker(),
        "restaurant": restaurant_card(Restaurant.current(), request.LANGUAGE_CODE),
        "timeline": _timeline(order),
        "time_zone": settings.TIME_ZONE,
        "page_text": _page_text(),
    }
    return render(request, "orders/order_detail.html", context)


TIMELINE = [Order.Status.QUEUED, Order.Status.PREPARING, Order.Status.READY, Order.Status.PICKED_UP]


def _timeline(order) -> list[dict]:
    """placed → preparing → ready → picked up, with the steps already reached."""
    labels = {Order.Status.QUEUED: _("Placed")}
    reached = TIMELINE.index(order.status) if order.status in TIMELINE else -1
    return [
        {"status": status, "label": labels.get(status, Order.Status(status).label), "done": index <= reached, "current": index == reached}
        for index, status in enumerate(TIMELINE)
    ]


@require_GET
@gzip_page
def pickup_time_offers(request: HttpRequest) -> HttpResponse:
    """The picker's contents for one day (``?day=YYYY-MM-DD``, else the first with room).

    A day of 1-minute slots is over a thousand times to format (several
    milliseconds of CPU), and every open picker asks: the answer is cached
    until a place is taken or given back, or the minute ends (the earliest
    time moves with the clock).
    """
    day = parse_day(request.GET.get("day"))
    key = f"pickup-times:{request.LANGUAGE_CODE}:{pickup_times.places_version()}:{int(time.time() // 60)}:{day}"
    body = cache.get(key)
    if body is None:
        body = json.dumps({"time_zone": settings.TIME_ZONE, **picker_times(Restaurant.current(), day)}).encode()
        cache.set(key, body, timeout=120)
    response = HttpResponse(body, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
