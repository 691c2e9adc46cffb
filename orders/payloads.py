"""How an order looks on the wire (WebSocket messages and staff updates)."""

from __future__ import annotations

from django.utils import timezone

from orders.models import Order


def order_payload(order: Order) -> dict:
    return {
        "id": order.pk,
        "pickup_code": order.pickup_code,
        "pickup_at": timezone.localtime(order.pickup_at).isoformat(),
        "preparation_at": timezone.localtime(order.preparation_at).isoformat() if order.preparation_at else None,
        "can_change": order.customer_may_change(timezone.now()),
        "status": order.status,
        "status_display": str(order.get_status_display()),
        "total": str(order.total),
        "lines": [
            {
                "menu_item": line.menu_item_id,
                "name": line.menu_item.display_name(order.language),
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
            }
            for line in order.lines.all()
        ],
    }
