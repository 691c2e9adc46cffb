"""Menu items, orders and their lines.

An order knows its own lifecycle (which status may follow which); the service
module performs the transitions so that each one is a single conditional
update.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from datetime import datetime, time
from time import monotonic
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Restaurant(models.Model):
    """The kitchen's rules for pickup times: one row, edited by staff in the admin.

    Times of day are wall-clock times in the restaurant's zone (TIME_ZONE).
    """

    name = models.CharField(_("name"), max_length=100, default="Pickup breakfast bar")
    name_zh_hans = models.CharField(_("name (Simplified Chinese)"), max_length=100, blank=True)
    # What the customer pages say about the place: where it is and where orders wait.
    address = models.CharField(_("address"), max_length=200, blank=True)
    address_zh_hans = models.CharField(_("address (Simplified Chinese)"), max_length=200, blank=True)
    counter = models.CharField(
        _("where to collect"), max_length=200, blank=True,
        help_text=_("Where customers find their order, for example \"the pickup shelf left of the door\"."),
    )
    counter_zh_hans = models.CharField(_("where to collect (Simplified Chinese)"), max_length=200, blank=True)
    preparation_minutes = models.PositiveSmallIntegerField(
        _("preparation lead time (minutes)"), default=10,
        help_text=_("How long before the pickup time the kitchen starts an order."),
    )
    min_notice_minutes = models.PositiveSmallIntegerField(
        _("minimum notice (minutes)"), default=2,
        help_text=_("Shortest time between ordering and pickup."),
    )
    max_days_ahead = models.PositiveSmallIntegerField(
        _("days ahead"), default=7, validators=[MinValueValidator(0), MaxValueValidator(60)],
        help_text=_("How many days ahead customers can order (0 = today only)."),
    )
    slot_minutes = models.PositiveSmallIntegerField(
        _("slot length (minutes)"), default=5, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )
    slot_capacity = models.PositiveSmallIntegerField(_("orders per slot"), default=10)
    no_show_grace_minutes = models.PositiveSmallIntegerField(
        _("collection grace period (minutes)"), default=30,
        help_text=_("A ready order not collected this long after its pickup time is marked not collected."),
    )
    reminder_minutes = models.PositiveSmallIntegerField(
        _("reminder before the grace period ends (minutes)"), default=10
    )
    # This database's identity in Redis: a key prefix belongs to one database
    # (orders.kitchen_queue.claim_namespace).
    installation = models.UUIDField(default=uuid.uuid4, editable=False)

    class Meta:
        verbose_name = _("restaurant settings")
        verbose_name_plural = _("restaurant settings")

    def __str__(self) -> str:
        return self.name

    # Every order reads the rules; a process keeps them this many seconds.
    # Saving them here clears the copy at once (signals in orders.apps).
    CACHE_SECONDS = 5.0
    _cached: tuple[float, Restaurant] | None = None

    @classmethod
    def current(cls) -> Restaurant:
        """The restaurant's rules with its opening hours; a copy the caller may change."""
        cached = cls._cached
        if cached is None or monotonic() - cached[0] > cls.CACHE_SECONDS:
            restaurant, _created = cls.objects.prefetch_related("opening_hours").get_or_create(pk=1)
            cached = cls._cached = (monotonic(), restaurant)
        return copy.copy(cached[1])

    @classmethod
    def forget_current(cls, **kwargs) -> None:
        cls._cached = None


class OpeningHours(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    restaurant = models.ForeignKey(Restaurant, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"), help_text=_("00:00 means midnight at the end of the day."))

    class Meta:
        ordering = ["weekday", "opens"]
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closes__gt=models.F("opens")) | models.Q(closes=time(0)),
                name="openinghours_closes_after_opens",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


class PickupSlot(models.Model):
    """How many orders one pickup slot holds; capacity is taken with a conditional UPDATE."""

    start = models.DateTimeField(_("starts at"), unique=True)
    taken = models.PositiveIntegerField(_("orders"), default=0)

    class Meta:
        ordering = ["start"]
        verbose_name = _("pickup slot")
        verbose_name_plural = _("pickup slots")

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} ({self.taken})"


class MenuItem(models.Model):
    # Drawings shipped in static/orders/menu/: staff choose one per item in the admin.
    class Picture(models.TextChoices):
        DISH = "dish", _("A dish")
        BREAKFAST_SET = "breakfast-set", _("Congee with a hash brown")
        CONGEE = "congee", _("A bowl of congee")
        HASH_BROWN = "hash-brown", _("A hash brown")
        SOY_MILK = "soy-milk", _("A cup of soy milk")
        STEAMED_BUN = "steamed-bun", _("A steamed bun")

    name = models.CharField(_("name"), max_length=100)
    name_zh_hans = models.CharField(_("name (Simplified Chinese)"), max_length=100, blank=True)
    description = models.CharField(_("description"), max_length=300, blank=True)
    description_zh_hans = models.CharField(_("description (Simplified Chinese)"), max_length=300, blank=True)
    picture = models.CharField(_("picture"), max_length=30, choices=Picture.choices, default=Picture.DISH)
    price = models.DecimalField(_("price"), max_digits=8, decimal_places=2)
    is_available = models.BooleanField(_("available"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("menu item")
        verbose_name_plural = _("menu items")
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=0), name="menuitem_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    def display_name(self, language: str | None = None) -> str:
        if (language or "").lower().startswith("zh") and self.name_zh_hans:
            return self.name_zh_hans
        return self.name

    def display_description(self, language: str | None = None) -> str:
        if (language or "").lower().startswith("zh") and self.description_zh_hans:
            return self.description_zh_hans
        return self.description

    @property
    def picture_path(self) -> str:
        """The drawing's path under static/."""
        return f"orders/menu/{self.picture}.svg"


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed", _("Placed")
        QUEUED = "queued", _("Queued")
        PREPARING = "preparing", _("Preparing")
        READY = "ready", _("Ready")
        PICKED_UP = "picked_up", _("Picked up")
        CANCELLED = "cancelled", _("Cancelled")
        NOT_COLLECTED = "not_collected", _("Not collected")

    class CancelReason(models.TextChoices):
        """Why staff cancelled: a code stored on the order, translated when shown or sent."""

        SOLD_OUT = "sold_out", _("Sold out")
        KITCHEN_CLOSED = "kitchen_closed", _("The kitchen is closed")
        EQUIPMENT = "equipment", _("Equipment problem")
        CUSTOMER_REQUEST = "customer_request", _("At your request")
        OTHER = "other", _("Other reason")

    # Which status may follow which. Every change of status goes through
    # orders.services.change_status, which consults this table.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.PLACED: frozenset({Status.QUEUED, Status.PREPARING, Status.READY, Status.CANCELLED}),
        Status.QUEUED: frozenset({Status.PREPARING, Status.READY, Status.CANCELLED}),
        Status.PREPARING: frozenset({Status.READY, Status.CANCELLED}),
        Status.READY: frozenset({Status.PICKED_UP, Status.NOT_COLLECTED}),
        Status.PICKED_UP: frozenset(),
        Status.CANCELLED: frozenset(),
        Status.NOT_COLLECTED: frozenset({Status.PICKED_UP}),
    }
    # Orders the kitchen still has to act on before the pickup time.
    WAITING = (Status.PLACED, Status.QUEUED, Status.PREPARING)

    customer_id = models.CharField(_("customer"), max_length=64, db_index=True)
    pickup_code = models.CharField(_("pickup code"), max_length=8)
    pickup_date = models.DateField(_("pickup day"))
    pickup_at = models.DateTimeField(_("pickup time"))
    preparation_at = models.DateTimeField(_("preparation starts"), null=True, blank=True)
    slot = models.ForeignKey(PickupSlot, on_delete=models.PROTECT, null=True, blank=True, related_name="orders")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PLACED)
    total = models.DecimalField(_("total"), max_digits=10, decimal_places=2, default=Decimal("0.00"))
    language = models.CharField(_("language"), max_length=16, default="en")
    created_at = models.DateTimeField(_("ordered at"), default=timezone.now)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    ready_at = models.DateTimeField(_("ready at"), null=True, blank=True)
    # Set once, by whichever run_queue worker handled the order at its pickup time.
    processed_at = models.DateTimeField(_("processed by kitchen queue at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    cancel_reason = models.CharField(_("cancel reason"), max_length=24, choices=CancelReason.choices, blank=True)
    cancel_note = models.CharField(_("note to the customer"), max_length=200, blank=True)

    class Meta:
        ordering = ["pickup_at", "id"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["pickup_date", "pickup_code"], name="order_code_unique_per_day"),
        ]
        indexes = [
            models.Index(fields=["status", "pickup_at"], name="order_status_pickup_idx"),
            models.Index(fields=["processed_at", "pickup_at"], name="order_processed_pickup_idx"),
            models.Index(fields=["status", "preparation_at"], name="order_status_prep_idx"),
        ]

    def __str__(self) -> str:
        return self.pickup_code

    def can_become(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.status]

    def cancel_reason_text(self) -> str:
        """The staff's reason in the active language, with their note if they added one."""
        reason = str(self.get_cancel_reason_display()) if self.cancel_reason else ""
        return " — ".join(part for part in (reason, self.cancel_note) if part)

    def customer_may_change(self, now: datetime) -> bool:
        """Customers may cancel or reschedule until the kitchen starts the order."""
        return self.status in (self.Status.PLACED, self.Status.QUEUED) and (
            self.preparation_at is None or now < self.preparation_at
        )


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    menu_item = models.ForeignKey(MenuItem, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveSmallIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=8, decimal_places=2)

    class Meta:
        ordering = ["id"]
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="orderline_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.menu_item}"


class PickupCodeCounter(models.Model):
    """The last pickup-code number handed out for one pickup day."""

    day = models.DateField(unique=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.day}: {self.last_number}"


def new_board_token() -> str:
    """256 random bits, URL-safe: a board link cannot be guessed."""
    return secrets.token_urlsafe(32)


class BoardLink(models.Model):
    """A link that opens the counter screen (pickup codes only) on a TV, without a login.

    Staff create one per screen in the admin and revoke it when a screen is
    lost or replaced; a revoked link's board closes at once.
    """

    name = models.CharField(
        _("screen"), max_length=60, help_text=_("Where the screen hangs, for example “TV above the counter”.")
    )
    token = models.CharField(_("token"), max_length=64, unique=True, default=new_board_token, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("counter board link")
        verbose_name_plural = _("counter board links")

    def __str__(self) -> str:
        return self.name

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
