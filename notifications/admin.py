"""Alerts and Web Push records are read-only for staff: what was owed, sent and acknowledged, and to which browsers."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from notifications.models import Alert, PushSubscription
from pickup.admin import ReadOnlyAdmin


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["order", "kind", "due_at", "sent_at", "send_count", "acknowledged_at", "cancelled_at"]
    list_filter = ["kind", ("sent_at", admin.EmptyFieldListFilter), ("acknowledged_at", admin.EmptyFieldListFilter)]
    search_fields = ["order__pickup_code"]
    list_select_related = ["order"]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(ReadOnlyAdmin):
    """Which browsers get a customer's alerts on a locked phone; the keys stay out of sight."""

    list_display = ["customer_id", "user_agent", "push_service", "created_at"]
    search_fields = ["customer_id"]
    fields = ["customer_id", "user_agent", "endpoint", "created_at"]

    @admin.display(description=_("push service"))
    def push_service(self, subscription: PushSubscription) -> str:
        from urllib.parse import urlsplit

        return urlsplit(subscription.endpoint).hostname or ""
