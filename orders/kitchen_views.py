"""The kitchen screen inside the admin: the live board and its one-click steps.

Mounted by OrderAdmin.get_urls, so every view here is behind the admin's
staff login and the order permissions.
"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from orders import selectors, services
from orders.models import Order
from orders.payloads import order_payload
from pickup.errors import PickupError

# One click per step: the button's name → the status it moves the order to.
STEPS = {
    "start": Order.Status.PREPARING,
    "ready": Order.Status.READY,
    "picked-up": Order.Status.PICKED_UP,
    "cancel": Order.Status.CANCELLED,
}


def _board_payload() -> dict:
    board = selectors.kitchen_board()
    return {
        "now": timezone.localtime().isoformat(),  # every time sent is in the restaurant's offset
        "sections": {
            section: [
                dict(order_payload(order), collection_overdue=order.reminded)
                for order in orders
            ]
            for section, orders in board.items()
        },
    }


def may_watch_kitchen(user) -> bool:
    """Who may see the kitchen board, on the page and on its live socket alike:
    active staff allowed to view orders (a staff login alone is not enough)."""
    return user.is_authenticated and user.is_active and user.is_staff and user.has_perm("orders.view_order")


def kitchen_page(request: HttpRequest, admin_context: dict) -> HttpResponse:
    if not may_watch_kitchen(request.user):
        raise PermissionDenied
    text = {
        "live": _("Live"),
        "offline": _("Offline, reconnecting…"),
        "connecting": _("Connecting…"),
        "start": _("Start"),
        "ready": _("Ready"),
        "pickedUp": _("Picked up"),
        "cancel": _("Cancel"),
        "overdue": _("overdue"),
        "empty": _("Nothing here."),
        "inTime": _("in %(time)s"),
        "late": _("%(time)s late"),
        "waiting": _("waiting %(time)s"),
        "newOrders": _("New orders: %(codes)s"),
    }
    context = {
        **admin_context, "title": _("Kitchen queue"), "board": _board_payload(), "kitchen_text": text,
        "cancel_reasons": Order.CancelReason.choices,
    }
    return TemplateResponse(request, "admin/orders/kitchen.html", context)


@staff_member_required
@require_GET
def kitchen_board(request: HttpRequest) -> JsonResponse:
    if not may_watch_kitchen(request.user):
        raise PermissionDenied
    return JsonResponse(_board_payload())


@staff_member_required
@require_POST
def kitchen_step(request: HttpRequest, order_id: int, step: str) -> JsonResponse:
    if not request.user.has_perm("orders.change_order"):
        raise PermissionDenied
    if step not in STEPS:
        return JsonResponse({"error": {"code": "unknown_step", "message": _("Unknown step.")}}, status=400)
    order = get_object_or_404(Order, pk=order_id)
    reason, note = request.POST.get("reason", ""), request.POST.get("note", "")
    try:
        services.change_status(order, STEPS[step], reason=reason, note=note)
    except PickupError as error:
        return JsonResponse({"error": error.as_dict()}, status=409)
    return JsonResponse({"ok": True, "status": order.status})
