"""How an order looks on the wire (WebSocket messages and staff updates).

Everything a customer reads (status, item names, the sentence about what
happens next) is rendered here in one language, so a page never mixes two.
"""

from __future__ import annotations

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from orders.dates import pickup_label
from orders.models import Order, OrderLine


def order_payload(order: Order, language: str | None = None, *, lines: list[OrderLine] | None = None) -> dict:
    """The ORDER object of docs/protocol.md, in ``language`` (else the active one, items in the order's).

    ``lines`` saves a query when the caller has them (with their menu items) at hand.
    """
    lines = order.lines.all() if lines is None else lines
    if language is None:
        return _payload(order, lines, order.language)
    with translation.override(language):
        return _payload(order, lines, language)


def _payload(order: Order, lines, names_language: str) -> dict:
    now = timezone.now()
    return {
        "id": order.pk,
        "pickup_code": order.pickup_code,
        "pickup_at": timezone.localtime(order.pickup_at).isoformat(),
        "pickup_label": pickup_label(order.pickup_at),
        "preparation_at": timezone.localtime(order.preparation_at).isoformat() if order.preparation_at else None,
        "can_change": order.customer_may_change(now),
        "status": order.status,
        "status_display": str(order.get_status_display()),
        "status_note": status_note(order, now),
        "cancel_reason": order.cancel_reason,
        "total": str(order.total),
        "lines": [
            {
                "menu_item": line.menu_item_id,
                "name": line.menu_item.display_name(names_language),
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
            }
            for line in lines
        ],
    }


def status_note(order: Order, now) -> str:
    """One sentence on where the order stands and what the customer may still do, in the active language."""
    code = order.pickup_code
    if order.status == Order.Status.READY:
        return _("Ready — show %(code)s at the counter.") % {"code": code}
    if order.status == Order.Status.PICKED_UP:
        return _("Picked up. Enjoy your meal!")
    if order.status == Order.Status.NOT_COLLECTED:
        return _("Not collected in time. Please ask at the counter.")
    if order.status == Order.Status.CANCELLED:
        reason = order.cancel_reason_text()
        if reason:
            return _("Cancelled: %(reason)s") % {"reason": reason}
        return _("This order is cancelled.")
    if order.status == Order.Status.PREPARING or not order.customer_may_change(now):
        return _("The kitchen has started your order, so it can no longer be changed or cancelled.")
    if order.preparation_at is None:
        return _("You can change or cancel this order until the kitchen starts it.")
    start = timezone.localtime(order.preparation_at).strftime("%H:%M")
    return _("You can change or cancel this order until %(time)s, when the kitchen starts it.") % {"time": start}
