"""Reads of orders and the menu, each scoped to who may see them."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, F, OuterRef, Prefetch, QuerySet, Window
from django.db.models.functions import RowNumber

from notifications.models import Alert
from orders.models import MenuItem, Order, OrderLine

# An order's lines with their menu items, in one query.
LINES_WITH_ITEMS = Prefetch("lines", queryset=OrderLine.objects.select_related("menu_item"))


def menu() -> QuerySet[MenuItem]:
    return MenuItem.objects.filter(is_available=True)


def customer_orders(customer_id: str) -> QuerySet[Order]:
    return Order.objects.filter(customer_id=customer_id).prefetch_related(LINES_WITH_ITEMS)


# The orders a customer's page and socket show: the latest by pickup time.
LATEST_ORDERS = 10


def latest_orders_of(customer_ids: list[str], per_customer: int = LATEST_ORDERS) -> dict[str, list[Order]]:
    """Each customer's latest orders by pickup time, latest first: many customers, one query."""
    latest = (
        Order.objects.filter(customer_id__in=customer_ids)
        .annotate(rank=Window(RowNumber(), partition_by=F("customer_id"), order_by=[F("pickup_at").desc(), F("pk").desc()]))
        .filter(rank__lte=per_customer)
        .order_by("-pickup_at", "-pk")
        .prefetch_related(LINES_WITH_ITEMS)
    )
    orders: dict[str, list[Order]] = {customer_id: [] for customer_id in customer_ids}
    for order in latest:
        orders[order.customer_id].append(order)
    return orders


def customer_order(customer_id: str, order_id: int) -> Order | None:
    """An order of this customer, or None: another customer's order does not exist for them."""
    return customer_orders(customer_id).filter(pk=order_id).first()


def orders_waiting_for_kitchen_queue() -> list[tuple[int, datetime]]:
    """(id, pickup time) of every order the kitchen queue must hold: the rebuild source."""
    return list(
        Order.objects.filter(status__in=Order.WAITING, processed_at=None).values_list("pk", "pickup_at")
    )


def kitchen_board(now=None) -> dict[str, list[Order]]:
    """The kitchen screen: now (preparing or due), next (upcoming), ready (waiting for collection).

    Orders come by pickup time from the database alone, the record: an order
    Redis lost or still holds after a change shows as the database says.
    Each order carries ``reminded``: its customer was reminded to collect it
    (it is overdue).
    """
    from django.utils import timezone

    now = now or timezone.now()
    active = list(
        Order.objects.filter(status__in=(*Order.WAITING, Order.Status.READY))
        .annotate(reminded=Exists(Alert.objects.filter(order=OuterRef("pk"), kind=Alert.Kind.REMINDER)))
        .prefetch_related(LINES_WITH_ITEMS)
        .order_by("pickup_at", "pk")
    )
    board: dict[str, list[Order]] = {"now": [], "next": [], "ready": []}
    for order in active:
        if order.status == Order.Status.READY:
            board["ready"].append(order)
        elif order.status == Order.Status.PREPARING or _due(order, now):
            board["now"].append(order)
        else:
            board["next"].append(order)
    return board


def _due(order: Order, now: datetime) -> bool:
    """The kitchen should be on it: its preparation time (or, without one, its pickup time) has come."""
    return (order.preparation_at or order.pickup_at) <= now


def counter_board(now: datetime) -> tuple[list[Order], list[Order]]:
    """The counter screen's orders: (being prepared or due, ready for collection).

    The same split as the kitchen screen's "now" and "ready", read without
    lines or customers: the board shows codes only.
    """
    fields = ("pickup_code", "status", "pickup_at", "preparation_at", "ready_at")
    active = Order.objects.filter(status__in=(*Order.WAITING, Order.Status.READY)).only(*fields).order_by("pickup_at", "pk")
    preparing, ready = [], []
    for order in active:
        if order.status == Order.Status.READY:
            ready.append(order)
        elif order.status == Order.Status.PREPARING or _due(order, now):
            preparing.append(order)
    ready.sort(key=lambda order: (order.ready_at or order.pickup_at, order.pk))
    return preparing, ready
