"""Alerts are read-only for staff: what was owed, sent and acknowledged."""

from django.contrib import admin

from notifications.models import Alert
from pickup.admin import ReadOnlyAdmin


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["order", "kind", "due_at", "sent_at", "send_count", "acknowledged_at", "cancelled_at"]
    list_filter = ["kind", ("sent_at", admin.EmptyFieldListFilter), ("acknowledged_at", admin.EmptyFieldListFilter)]
    search_fields = ["order__pickup_code"]
    list_select_related = ["order"]
