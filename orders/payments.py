"""Where a real payment step goes.

Pickup takes no money yet: an accepted order counts as paid. A payment
provider would be called here, inside the placing transaction, and a refusal
raised as a PickupError("payment_declined", …) so that nothing is stored.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone


def charge(*, customer_id: str, amount: Decimal):
    """Take payment for an order; returns the time it was paid."""
    return timezone.now()
