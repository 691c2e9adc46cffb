"""Staff's view of customers and addresses refused for ordering too often (orders/limits.py).

Mounted by OrderAdmin.get_urls, behind the admin's staff login; clearing
needs the permission to change orders. With Redis out of reach the page
still answers, saying why it lists nobody (``limits_unreachable``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from orders import limits
from pickup.errors import PickupError


def blocked_page(request: HttpRequest, admin_context: dict) -> HttpResponse:
    if not request.user.has_perm("orders.view_order"):
        raise PermissionDenied
    if request.method == "POST":
        if not request.user.has_perm("orders.change_order"):
            raise PermissionDenied
        kind, who = request.POST.get("kind", ""), request.POST.get("who", "")
        if kind in (limits.CUSTOMER, limits.ADDRESS) and who:
            try:
                limits.clear(kind, who)
            except PickupError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, _("Cleared: %(who)s may order again.") % {"who": who})
        return redirect("admin:orders_blocked")
    try:
        blocks = [
            {"kind": block.kind, "who": block.who, "until": datetime.fromtimestamp(block.until, tz=UTC)}
            for block in limits.blocked_now()
        ]
    except PickupError as error:
        messages.warning(request, error.message)
        blocks = None  # unknown, not empty: the page must not say nobody is refused
    context = {**admin_context, "title": _("Customers refused for ordering too often"), "blocks": blocks}
    return TemplateResponse(request, "admin/orders/blocked.html", context)
