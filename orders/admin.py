"""The staff's kitchen queue: orders by pickup time, with one action per step.

Status changes go through orders.services.change_status, so the admin obeys
the same lifecycle, alerts and kitchen queue as everything else.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from orders import boards, services
from orders.models import BoardLink, MenuItem, OpeningHours, Order, OrderLine, PickupSlot, Restaurant
from pickup.admin import LabelledInlineFormSet, ReadOnlyAdmin
from pickup.errors import PickupError


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    formset = LabelledInlineFormSet
    extra = 0


@admin.register(Restaurant)
class RestaurantAdmin(admin.ModelAdmin):
    """One row of rules; times of day are in the restaurant's zone (TIME_ZONE)."""

    inlines = [OpeningHoursInline]
    fieldsets = [
        (None, {"fields": ["name", "name_zh_hans"]}),
        (_("Shown to customers"), {"fields": ["address", "address_zh_hans", "counter", "counter_zh_hans"]}),
        (_("Pickup times"), {"fields": ["min_notice_minutes", "max_days_ahead", "slot_minutes", "slot_capacity"]}),
        (_("Kitchen"), {"fields": ["preparation_minutes", "no_show_grace_minutes", "reminder_minutes"]}),
    ]

    def has_add_permission(self, request):
        return not Restaurant.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PickupSlot)
class PickupSlotAdmin(ReadOnlyAdmin):
    list_display = ["start", "taken"]
    date_hierarchy = "start"


@admin.register(MenuItem)
class MenuItemAdmin(admin.ModelAdmin):
    list_display = ["name", "name_zh_hans", "price", "picture", "is_available", "position"]
    list_editable = ["price", "is_available", "position"]
    search_fields = ["name", "name_zh_hans"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["menu_item", "quantity", "unit_price"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _minutes(seconds: float) -> int:
    return int(abs(seconds) // 60)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["pickup_code", "pickup_time", "items", "status", "time_left", "total"]
    list_display_links = ["pickup_code"]
    list_filter = ["status", ("pickup_date", admin.DateFieldListFilter)]
    date_hierarchy = "pickup_at"
    search_fields = ["pickup_code"]
    ordering = ["pickup_at", "id"]
    inlines = [OrderLineInline]
    readonly_fields = [
        "pickup_code", "pickup_date", "pickup_at", "status", "total", "customer_id", "language",
        "created_at", "paid_at", "ready_at", "processed_at", "closed_at", "cancel_reason", "cancel_note",
    ]
    fields = readonly_fields
    actions = ["mark_preparing", "mark_ready", "mark_picked_up", "cancel_orders"]
    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("lines__menu_item")

    def get_urls(self):
        from django.urls import path

        from orders import kitchen_views

        kitchen = [
            path("kitchen/", self.admin_site.admin_view(self.kitchen_view), name="orders_kitchen"),
            path("blocked/", self.admin_site.admin_view(self.blocked_view), name="orders_blocked"),
            path("kitchen/board/", self.admin_site.admin_view(kitchen_views.kitchen_board), name="orders_kitchen_board"),
            path(
                "kitchen/<int:order_id>/<slug:step>/",
                self.admin_site.admin_view(kitchen_views.kitchen_step),
                name="orders_kitchen_step",
            ),
        ]
        return kitchen + super().get_urls()

    def kitchen_view(self, request):
        from orders import kitchen_views

        return kitchen_views.kitchen_page(request, self.admin_site.each_context(request))

    def blocked_view(self, request):
        from orders import blocked_views

        return blocked_views.blocked_page(request, self.admin_site.each_context(request))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("pickup time"), ordering="pickup_at")
    def pickup_time(self, order: Order) -> str:
        return timezone.localtime(order.pickup_at).strftime("%a %d %b %H:%M")

    @admin.display(description=_("items"))
    def items(self, order: Order) -> str:
        return ", ".join(f"{line.quantity} × {line.menu_item.name}" for line in order.lines.all())

    @admin.display(description=_("time left"))
    def time_left(self, order: Order) -> str:
        if order.status not in Order.WAITING:
            return "—"
        seconds = (order.pickup_at - timezone.now()).total_seconds()
        if seconds >= 0:
            return _("in %(minutes)d min") % {"minutes": _minutes(seconds)}
        return _("%(minutes)d min overdue") % {"minutes": _minutes(seconds)}

    def _move(self, request, queryset, status: str) -> None:
        orders = list(queryset)
        moved = 0
        for order, result in zip(orders, services.change_statuses(orders, status), strict=True):
            if isinstance(result, PickupError):
                self.message_user(request, f"{order.pickup_code}: {result.message}", messages.ERROR)
            else:
                moved += 1
        if moved:
            label = Order.Status(status).label
            self.message_user(
                request,
                ngettext("%(n)d order is now %(status)s.", "%(n)d orders are now %(status)s.", moved)
                % {"n": moved, "status": label},
                messages.SUCCESS,
            )

    @admin.action(description=_("Start preparing"), permissions=["change"])
    def mark_preparing(self, request, queryset):
        self._move(request, queryset, Order.Status.PREPARING)

    @admin.action(description=_("Mark ready (alerts the customer)"), permissions=["change"])
    def mark_ready(self, request, queryset):
        self._move(request, queryset, Order.Status.READY)

    @admin.action(description=_("Mark picked up"), permissions=["change"])
    def mark_picked_up(self, request, queryset):
        self._move(request, queryset, Order.Status.PICKED_UP)

    @admin.action(description=_("Cancel (alerts the customer)"), permissions=["change"])
    def cancel_orders(self, request, queryset):
        self._move(request, queryset, Order.Status.CANCELLED)


@admin.register(BoardLink)
class BoardLinkAdmin(admin.ModelAdmin):
    """Links that open the counter screen on a TV: created here with a random token, never edited, revoked."""

    list_display = ["name", "link", "created_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    fields = ["name", "link", "created_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return ["link", "created_at", "revoked_at"] if obj is None else self.fields

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, not deleted: the list keeps which screens once had a link

    @admin.display(description=_("link"))
    def link(self, board: BoardLink) -> str:
        if board.pk is None:
            return _("Made when you save.")
        if board.is_revoked:
            return _("revoked")
        url = reverse("orders:board", args=[board.token])
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)

    @admin.action(description=_("Revoke (the screen closes at once)"), permissions=["change"])
    def revoke(self, request, queryset):
        revoked = boards.revoke_links(list(queryset))
        self.message_user(
            request,
            ngettext("%(n)d board link revoked.", "%(n)d board links revoked.", revoked) % {"n": revoked},
            messages.SUCCESS,
        )
