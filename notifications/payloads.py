"""What an alert says, as the customer's page and service worker receive it."""

from __future__ import annotations

from collections import defaultdict
from datetime import tzinfo

from django.utils import timezone, translation

from notifications.models import Alert
from notifications.sender import customer_group


def alert_payload(alert: Alert) -> dict:
    return _payload(alert, alert.message(), timezone.get_current_timezone())


def _payload(alert: Alert, message: str, zone: tzinfo) -> dict:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "order_id": alert.order_id,
        "pickup_code": alert.order.pickup_code,
        "message": message,
        "due_at": alert.due_at.astimezone(zone).isoformat(),  # the restaurant's offset, as every time sent
    }


def alert_messages(alerts: list[Alert]) -> list[tuple[str, dict]]:
    """The channel-layer message that carries each alert to its customer's tabs, in order.

    A claim renders a whole burst of alerts on the database thread: the time
    zone is read once and each language switched to once, not per alert, since
    each of those is a lookup in asgiref's lock-guarded Local.
    """
    zone = timezone.get_current_timezone()
    by_language: dict[str, list[int]] = defaultdict(list)
    for position, alert in enumerate(alerts):
        by_language[alert.order.language].append(position)
    messages: list[tuple[str, dict]] = [("", {})] * len(alerts)
    for language, positions in by_language.items():
        with translation.override(language):
            for position in positions:
                alert = alerts[position]
                payload = _payload(alert, alert.message_in_active_language(), zone)
                messages[position] = (customer_group(alert.customer_id), {"type": "pickup.alert", "alert": payload})
    return messages
