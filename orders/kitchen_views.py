"""The kitchen screen: the live board and its one-click steps.

The page lives in the admin (mounted by OrderAdmin.get_urls) and, for a
screen on the kitchen wall, at /kitchen/ without the admin's sidebar and
breadcrumbs; both are for staff allowed to view orders. The board tells the
screen which steps each order allows, from the order's lifecycle table, so
the screen keeps no copy of it.
"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
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


def allowed_steps(order: Order) -> list[str]:
    """The steps (STEPS' names) the order's lifecycle allows from its current status."""
    return [step for step, status in STEPS.items() if order.can_become(status)]


def _board_payload(user: AbstractBaseUser | AnonymousUser) -> dict:
    board = selectors.kitchen_board()
    may_change = user.has_perm("orders.change_order")
    return {
        "now": timezone.localtime().isoformat(),  # every time sent is in the restaurant's offset
        "sections": {
            section: [
                dict(
                    order_payload(order),
                    collection_overdue=order.reminded,
                    steps=allowed_steps(order) if may_change else [],
                )
                for order in orders
            ]
            for section, orders in board.items()
        },
    }


def may_watch_kitchen(user) -> bool:
    """Who may see the kitchen board, on the page and on its live socket alike:
    active staff allowed to view orders (a staff login alone is not enough)."""
    return user.is_authenticated and user.is_active and user.is_staff and user.has_perm("orders.view_order")


def _kitchen_text() -> dict:
    """Texts the screen's script shows, translated on the server."""
    return {
        "live": _("Live"),
        "offline": _("Offline, reconnecting…"),
        "connecting": _("Connecting…"),
        "steps": {"start": _("Start"), "ready": _("Ready"), "picked-up": _("Picked up"), "cancel": _("Cancel")},
        "overdue": _("overdue"),
        "empty": _("Nothing here."),
        "inTime": _("in %(time)s"),
        "late": _("%(time)s late"),
        "waiting": _("waiting %(time)s"),
        "newOrders": _("New orders: %(codes)s"),
    }


def _kitchen_context(request: HttpRequest) -> dict:
    if not may_watch_kitchen(request.user):
        raise PermissionDenied
    return {
        "title": _("Kitchen queue"), "board": _board_payload(request.user), "kitchen_text": _kitchen_text(),
        "cancel_reasons": Order.CancelReason.choices,
    }


def kitchen_page(request: HttpRequest, admin_context: dict) -> HttpResponse:
    context = _kitchen_context(request)
    return TemplateResponse(request, "admin/orders/kitchen.html", {**admin_context, **context})


@staff_member_required
@require_GET
def kitchen_screen(request: HttpRequest) -> HttpResponse:
    """The same screen on its own, for a wall or a tablet: no sidebar, no breadcrumbs, a full-screen button."""
    context = _kitchen_context(request)
    return TemplateResponse(request, "orders/kitchen_screen.html", {**context, "full_screen": True})


@staff_member_required
@require_GET
def kitchen_board(request: HttpRequest) -> JsonResponse:
    if not may_watch_kitchen(request.user):
        raise PermissionDenied
    return JsonResponse(_board_payload(request.user))


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
