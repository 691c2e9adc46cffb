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

        with translation.override(self.order.language):
            return self.message_in_active_language()

    def message_in_active_language(self) -> str:
        """The alert text in the language active now: for callers that render many
        alerts and switch to each customer's language once (notifications/payloads.py)."""
        code = self.order.pickup_code
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


class PushSubscription(models.Model):
    """A browser's Web Push subscription: where to send a customer's alerts when no page is open.

    A customer may hold several (phone, laptop); each is what the browser's
    ``PushSubscription.toJSON()`` gave the page. The push service says when
    one is gone (404/410) and it is deleted then.
    """

    customer_id = models.CharField(_("customer"), max_length=64, db_index=True)
    endpoint = models.URLField(_("endpoint"), max_length=1000, unique=True)
    p256dh = models.CharField(max_length=100)
    auth = models.CharField(max_length=50)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("Web Push subscription")
        verbose_name_plural = _("Web Push subscriptions")

    def __str__(self) -> str:
        return f"{self.customer_id[:8]}… · {self.user_agent[:40] or self.endpoint[:40]}"

    def info(self) -> dict:
        """The subscription as the browser gave it, as pywebpush takes it."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class WebPush(models.Model):
    """One alert owed to one subscription by Web Push, until the push service takes it.

    Rows are written when the alert is scheduled (or the subscription made
    while the alert is pending) and sent by run_queue under a claim, as
    alerts are; an alert a page acknowledged first is not sent this way.
    """

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="web_pushes")
    subscription = models.ForeignKey(PushSubscription, on_delete=models.CASCADE, related_name="web_pushes")
    send_after = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Set once the push service accepted it (201) or it can never be sent.
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["alert", "subscription"], name="web_push_one_per_alert_and_subscription"),
        ]
        indexes = [
            models.Index(fields=["send_after"], name="web_push_pending_idx", condition=models.Q(finished_at__isnull=True)),
        ]
