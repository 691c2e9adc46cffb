"""What an alert says, as the customer's page and service worker receive it."""

from __future__ import annotations

from django.utils import timezone

from notifications.models import Alert
from notifications.sender import customer_group


def alert_payload(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "order_id": alert.order_id,
        "pickup_code": alert.order.pickup_code,
        "message": alert.message(),
        "due_at": timezone.localtime(alert.due_at).isoformat(),  # the restaurant's offset, as every time sent
    }


def alert_message(alert: Alert) -> tuple[str, dict]:
    """The channel-layer message that carries an alert to the customer's tabs."""
    return customer_group(alert.customer_id), {"type": "pickup.alert", "alert": alert_payload(alert)}


