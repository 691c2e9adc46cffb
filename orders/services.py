"""Business operations on orders: placing, customer changes, status changes by staff.

Each rule has one owner: pickup-time rules and capacity in
``orders.pickup_times``, the lifecycle table on ``Order``, time-driven moves
in ``orders.timeline``. The consumer, the pages, the admin and run_queue call
these functions; none re-implements them.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications import services as alerts
from notifications.models import Alert
from notifications.sender import STAFF_GROUP, customer_group, publish
from orders import kitchen_queue, payments, pickup_times
from orders.models import MenuItem, Order, OrderLine, PickupCodeCounter, Restaurant
from orders.payloads import order_payload
from pickup.errors import PickupError

logger = logging.getLogger(__name__)

MAX_QUANTITY = 20
_CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read as 1 and 0


# ---------------------------------------------------------------- pickup codes

def pickup_day(pickup_at: datetime) -> date:
    """The restaurant's calendar day of a pickup time."""
    return timezone.localtime(pickup_at).date()


def format_pickup_code(number: int) -> str:
    """1 → A001 … 999 → A999, 1000 → B001 …, then AA001 after Z999."""
    block, within = divmod(number - 1, 999)
    letters = ""
    block += 1
    while block:
        block, rest = divmod(block - 1, len(_CODE_LETTERS))
        letters = _CODE_LETTERS[rest] + letters
    return f"{letters}{within + 1:03d}"


_NEXT_NUMBER_SQL = f"UPDATE {PickupCodeCounter._meta.db_table} SET last_number = last_number + 1 WHERE day = %s RETURNING last_number"


def next_pickup_code(day: date) -> str:
    """Hand out the day's next pickup code; call inside the placing transaction.

    One UPDATE … RETURNING (SQLite ≥ 3.35 and PostgreSQL) takes the row lock
    and reads the new number, so concurrent orders queue here briefly and
    never share a code. Placing an order is hot, hence the raw statement.
    """
    with connection.cursor() as cursor:
        for _attempt in range(2):
            cursor.execute(_NEXT_NUMBER_SQL, [connection.ops.adapt_datefield_value(day)])
            row = cursor.fetchone()
            if row:
                return format_pickup_code(row[0])
            PickupCodeCounter.objects.get_or_create(day=day)  # the day's first order
    raise RuntimeError(f"pickup code counter for {day} vanished")


# ---------------------------------------------------------------- placing

def _priced_lines(lines: list[tuple[int, int]]) -> list[tuple[MenuItem, int]]:
    quantities: dict[int, int] = {}
    for menu_item_id, quantity in lines:
        quantities[menu_item_id] = quantities.get(menu_item_id, 0) + quantity
    items = MenuItem.objects.in_bulk(list(quantities))
    priced = []
    for index, (menu_item_id, quantity) in enumerate(quantities.items()):
        item = items.get(menu_item_id)
        if item is None:
            raise PickupError("unknown_item", _("That item is not on the menu."), field=f"items[{index}].menu_item")
        if not item.is_available:
            raise PickupError(
                "item_unavailable",
                _("%(item)s is sold out today.") % {"item": item.name},
                field=f"items[{index}].menu_item",
            )
        if not 1 <= quantity <= MAX_QUANTITY:
            raise PickupError(
                "invalid_quantity",
                _("Quantity must be between 1 and %(max)d.") % {"max": MAX_QUANTITY},
                field=f"items[{index}].quantity",
            )
        priced.append((item, quantity))
    return priced


def place_order(
    *, customer_id: str, lines: list[tuple[int, int]], pickup_at: datetime, language: str = "en"
) -> Order:
    """Store a paid order, take its place in the pickup slot, schedule its alert, queue it.

    Everything is written in one transaction; the kitchen-queue entry and the
    alert's timer follow after commit, so a refusal stores nothing.
    """
    restaurant = Restaurant.current()
    slot = pickup_times.check_pickup_time(restaurant, pickup_at)
    priced = _priced_lines(lines)
    total = sum((item.price * quantity for item, quantity in priced), Decimal("0.00"))
    with transaction.atomic():
        day = pickup_day(pickup_at)
        paid_at = payments.charge(customer_id=customer_id, amount=total)
        order = Order.objects.create(
            customer_id=customer_id,
            pickup_code=next_pickup_code(day),
            pickup_date=day,
            pickup_at=pickup_at,
            preparation_at=pickup_at - timedelta(minutes=restaurant.preparation_minutes),
            slot=pickup_times.take_place(restaurant, slot),
            status=Order.Status.QUEUED,
            total=total,
            language=language,
            paid_at=paid_at,
        )
        OrderLine.objects.bulk_create(
            OrderLine(order=order, menu_item=item, quantity=quantity, unit_price=item.price)
            for item, quantity in priced
        )
        alerts.schedule_alert(order=order, kind=Alert.Kind.PICKUP, due_at=pickup_at, first=True)
        transaction.on_commit(lambda: _enqueue(order))
        transaction.on_commit(lambda: announce_to_staff([order.pk], "order.placed"))
    logger.info("order %s (id %s) placed for %s", order.pickup_code, order.pk, order.pickup_at.isoformat())
    return order


def _enqueue(order: Order) -> None:
    try:
        kitchen_queue.add(order.pk, order.pickup_at)
    except Exception:
        # The order is stored; run_queue's rebuild puts it in the queue later.
        logger.exception("could not add order %s to the kitchen queue; rebuild will", order.pk)


def announce_to_staff(order_ids: list[int], event: str) -> None:
    publish([(STAFF_GROUP, {"type": "kitchen.changed", "event": event, "order_ids": order_ids})])


def _announce(order: Order) -> None:
    order = Order.objects.prefetch_related("lines__menu_item").get(pk=order.pk)
    publish(
        [
            (customer_group(order.customer_id), {"type": "order.updated", "order": order_payload(order)}),
            (STAFF_GROUP, {"type": "kitchen.changed", "event": "order.updated", "order_ids": [order.pk]}),
        ]
    )


# ---------------------------------------------------------------- customer changes

def _changeable_order(customer_id: str, order_id: object) -> Order:
    if isinstance(order_id, bool) or not isinstance(order_id, int):
        raise PickupError("order_not_found", _("There is no such order for you."), field="order_id")
    order = Order.objects.filter(pk=order_id, customer_id=customer_id).first()
    if order is None:
        raise PickupError("order_not_found", _("There is no such order for you."), field="order_id")
    if not order.customer_may_change(timezone.now()):
        raise PickupError(
            "too_late_to_change",
            _("Order %(code)s can no longer be changed: the kitchen has started it.") % {"code": order.pickup_code},
            field="order_id",
        )
    return order


def cancel_order(*, customer_id: str, order_id: object) -> Order:
    """The customer cancels before preparation starts; their place in the slot is freed."""
    with transaction.atomic():
        order = _changeable_order(customer_id, order_id)
        return change_status(order, Order.Status.CANCELLED, notify=False)


def reschedule_order(*, customer_id: str, order_id: object, pickup_at: datetime) -> Order:
    """Move an order to another pickup time before preparation starts.

    The new place is taken before the old one is given back, so a full slot
    refuses the move and the order keeps its time.
    """
    restaurant = Restaurant.current()
    with transaction.atomic():
        order = _changeable_order(customer_id, order_id)
        slot = pickup_times.check_pickup_time(restaurant, pickup_at)
        old_slot_id = order.slot_id
        if order.slot is None or order.slot.start != slot.start:
            order.slot = pickup_times.take_place(restaurant, slot)
            pickup_times.release_place(old_slot_id)
        new_day = pickup_day(pickup_at)
        if new_day != order.pickup_date:
            order.pickup_code = next_pickup_code(new_day)
            order.pickup_date = new_day
        order.pickup_at = pickup_at
        order.preparation_at = pickup_at - timedelta(minutes=restaurant.preparation_minutes)
        updated = Order.objects.filter(pk=order.pk, status=order.status, processed_at=None).update(
            pickup_at=order.pickup_at, preparation_at=order.preparation_at, slot=order.slot,
            pickup_code=order.pickup_code, pickup_date=order.pickup_date,
        )
        if not updated:
            raise PickupError("order_changed", _("Order %(code)s was changed meanwhile; reload it.") % {"code": order.pickup_code})
        alerts.schedule_alert(order=order, kind=Alert.Kind.PICKUP, due_at=pickup_at)
        transaction.on_commit(lambda: _enqueue(order))
        transaction.on_commit(lambda: _announce(order))
    logger.info("order %s (id %s) moved to %s", order.pickup_code, order.pk, pickup_at.isoformat())
    return order


# ---------------------------------------------------------------- lifecycle

def may_reach(status: str) -> list[str]:
    """The statuses from which an order may move to ``status``."""
    return [source for source, targets in Order.TRANSITIONS.items() if status in targets]


@transaction.atomic
def change_status(order: Order, status: str, *, reason: str = "", notify: bool = True) -> Order:
    """Move an order to ``status`` if its lifecycle allows it.

    The alerts, the slot's capacity and the kitchen queue follow in the same
    transaction (or right after commit). ``notify`` sends the customer an
    alert for a cancellation; a customer who cancels needs none.
    """
    now = timezone.now()
    if status not in Order.Status.values:
        raise PickupError("invalid_status", _("There is no such order status."))
    if not order.can_become(status):
        raise PickupError(
            "invalid_transition",
            _("Order %(code)s is %(current)s and cannot become %(target)s.")
            % {"code": order.pickup_code, "current": order.get_status_display(), "target": Order.Status(status).label},
        )
    fields: dict = {"status": status}
    if status == Order.Status.READY:
        fields["ready_at"] = now
    if status in (Order.Status.PICKED_UP, Order.Status.CANCELLED, Order.Status.NOT_COLLECTED):
        fields["closed_at"] = now
    # Compare-and-set on the status the caller read: a concurrent change wins.
    if not Order.objects.filter(pk=order.pk, status=order.status).update(**fields):
        raise PickupError("order_changed", _("Order %(code)s was changed meanwhile; reload it.") % {"code": order.pickup_code})
    was_waiting = order.status in Order.WAITING
    for field, value in fields.items():
        setattr(order, field, value)

    if status == Order.Status.READY and now < order.pickup_at:
        alerts.withdraw_alerts(order, kinds=[Alert.Kind.PICKUP], unsent_only=True)
        alerts.schedule_alert(order=order, kind=Alert.Kind.READY_EARLY, due_at=now)
    elif status == Order.Status.CANCELLED:
        alerts.withdraw_alerts(order)
        if was_waiting:
            pickup_times.release_place(order.slot_id)
        if notify:
            alerts.schedule_alert(order=order, kind=Alert.Kind.CANCELLED, due_at=now, reason=reason)
    elif status in (Order.Status.PICKED_UP, Order.Status.NOT_COLLECTED):
        alerts.withdraw_alerts(order)
    if status not in Order.WAITING:
        transaction.on_commit(lambda: kitchen_queue.remove(order.pk))
    transaction.on_commit(lambda: _announce(order))
    logger.info("order %s (id %s) is now %s", order.pickup_code, order.pk, status)
    return order
