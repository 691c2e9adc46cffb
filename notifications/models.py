"""Alerts a customer is owed.

The database, not the channel layer, is the record of what must reach the
customer: an alert row exists from the moment it is scheduled until a client
of that customer acknowledges it.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Alert(models.Model):
    class Kind(models.TextChoices):
        PICKUP = "pickup", _("Ready for pickup")
        READY_EARLY = "ready_early", _("Ready early")
        CANCELLED = "cancelled", _("Cancelled")
        REMINDER = "reminder", _("Collection reminder")

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="alerts")
    customer_id = models.CharField(_("customer"), max_length=64, db_index=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    due_at = models.DateTimeField(_("due at"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    # A sender owns the alert while ``claimed_until`` lies in the future; one
    # that died mid-way loses it when the lease runs out.
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    send_count = models.PositiveIntegerField(_("times pushed"), default=0)
    resend_after = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        constraints = [
            models.UniqueConstraint(fields=["order", "kind"], name="alert_one_per_order_and_kind"),
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                name="alert_unsent_due_idx",
                condition=models.Q(sent_at__isnull=True, cancelled_at__isnull=True),
            ),
            models.Index(
                fields=["resend_after"],
                name="alert_unacked_idx",
                condition=models.Q(sent_at__isnull=False, acknowledged_at__isnull=True, cancelled_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · order {self.order_id}"

    def message(self) -> str:
        """The alert text, in the language the customer ordered in."""
        from django.utils import translation

        code = self.order.pickup_code
        with translation.override(self.order.language):
            if self.kind == self.Kind.PICKUP:
                return str(_("Order %(code)s is ready, please collect it at the counter.") % {"code": code})
            if self.kind == self.Kind.READY_EARLY:
                return str(_("Good news: order %(code)s is ready early, please collect it at the counter.") % {"code": code})
            if self.kind == self.Kind.REMINDER:
                return str(_("Order %(code)s is waiting for you at the counter.") % {"code": code})
            # The reason is stored as a code and translated now; older alerts carry free text.
            reason = self.order.cancel_reason_text() or self.reason
            if reason:
                return str(_("Order %(code)s has been cancelled: %(reason)s") % {"code": code, "reason": reason})
            return str(_("Order %(code)s has been cancelled. Sorry for the trouble.") % {"code": code})
