"""Telling people that orders changed: the one place every change path calls.

Whoever or whatever changed an order (the customer, staff, run_queue's lead
time, the pickup time, the reminder or the no-show step) calls ``announce``
inside its transaction. After commit, each order goes to every open tab of
its customer as ``order.updated`` in the customer's language, and the
kitchen screen is told to re-read its board. Nothing is said about a change
that was rolled back (STYLE.md 5c).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from notifications.sender import STAFF_GROUP, customer_group, publish
from orders import selectors
from orders.models import Order, OrderLine
from orders.payloads import order_payload


def announce(
    orders: Iterable[Order | int],
    event: str,
    *,
    skip: dict[int, str] | None = None,
    lines: dict[int, list[OrderLine]] | None = None,
) -> None:
    """After commit, push the orders' current state to their customers and tell the kitchen.

    Pass ids to have the orders read again after commit. New orders pass
    themselves with the ``lines`` just written: placing is the hot path, and
    what was written needs no second read. ``skip`` maps an order id to the
    socket that asked for the change: that socket gets the state as its
    reply, so the push leaves it out (one message, not two).
    """
    orders = list(orders)
    if orders:
        transaction.on_commit(lambda: publish_orders(orders, event, skip=skip or {}, lines=lines), robust=True)


def publish_orders(
    orders: list[Order | int], event: str, *, skip: dict[int, str], lines: dict[int, list[OrderLine]] | None = None
) -> None:
    """Push the orders to their customers' tabs and tell the kitchen; call after commit (``announce`` does)."""
    order_ids = [order if isinstance(order, int) else order.pk for order in orders]
    if lines is None:
        orders = list(Order.objects.filter(pk__in=order_ids).prefetch_related(selectors.LINES_WITH_ITEMS))
        lines = {order.pk: list(order.lines.all()) for order in orders}
    messages = [
        (customer_group(order.customer_id), order_message(order, lines[order.pk], skip.get(order.pk)))
        for order in orders
    ]
    messages.append((STAFF_GROUP, {"type": "kitchen.changed", "event": event, "order_ids": order_ids}))
    publish(messages)


def order_message(order: Order, lines: list[OrderLine], except_channel: str | None = None) -> dict:
    """The channel-layer event the customer consumer turns into ``order.updated``."""
    message = {"type": "order.updated", "order": order_payload(order, order.language, lines=lines)}
    if except_channel:
        message["except_channel"] = except_channel
    return message
