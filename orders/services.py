"""Business operations on orders: placing, customer changes, status changes by staff.

Each rule has one owner: pickup-time rules and capacity in
``orders.pickup_times``, the lifecycle table on ``Order``, time-driven moves
in ``orders.timeline``. The consumer, the pages, the admin and run_queue call
these functions; none re-implements them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from notifications import services as alert_services
from notifications.models import Alert
from orders import kitchen_queue, limits, metrics, payments, pickup_times
from orders.announcements import announce
from orders.models import MenuItem, Order, OrderLine, PickupCodeCounter, PickupSlot, Restaurant
from pickup.errors import PickupError
from pickup.redis_clients import OUT_OF_REACH

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


_NEXT_NUMBERS_SQL = (
    f"UPDATE {PickupCodeCounter._meta.db_table} SET last_number = last_number + %s WHERE day = %s RETURNING last_number"
)


def next_pickup_codes(day: date, count: int = 1) -> list[str]:
    """Hand out the day's next ``count`` pickup codes; call inside the placing transaction.

    One UPDATE … RETURNING (SQLite ≥ 3.35 and PostgreSQL) takes the row lock
    and reads the new number, so concurrent orders queue here briefly and
    never share a code. Placing an order is hot, hence the raw statement.
    """
    with connection.cursor() as cursor:
        for _attempt in range(2):
            cursor.execute(_NEXT_NUMBERS_SQL, [count, connection.ops.adapt_datefield_value(day)])
            row = cursor.fetchone()
            if row:
                return [format_pickup_code(number) for number in range(row[0] - count + 1, row[0] + 1)]
            PickupCodeCounter.objects.get_or_create(day=day)  # the day's first order
    raise RuntimeError(f"pickup code counter for {day} vanished")


def next_pickup_code(day: date) -> str:
    return next_pickup_codes(day, 1)[0]


# ---------------------------------------------------------------- placing

@dataclass(frozen=True)
class NewOrder:
    customer_id: str
    lines: list[tuple[int, int]]  # (menu item id, quantity)
    pickup_at: datetime
    language: str = "en"
    # The socket that asked: it gets the order as its reply, the customer's other tabs as a push.
    reply_channel: str = ""
    address: str = ""  # the client's address, for the per-address order limit


def _priced_lines(lines: list[tuple[int, int]], items: dict[int, MenuItem]) -> list[tuple[MenuItem, int]]:
    quantities: dict[int, int] = {}
    for menu_item_id, quantity in lines:
        quantities[menu_item_id] = quantities.get(menu_item_id, 0) + quantity
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


def _open_order_counts(customer_ids: set[str]) -> dict[str, int]:
    """How many orders each customer has that are not yet collected, cancelled or closed."""
    open_statuses = (*Order.WAITING, Order.Status.READY)
    rows = (
        Order.objects.filter(customer_id__in=customer_ids, status__in=open_statuses)
        .values("customer_id")
        .annotate(count=Count("pk"))
    )
    return defaultdict(int, {row["customer_id"]: row["count"] for row in rows})


def _check_open_orders(open_orders: dict[str, int], customer_id: str) -> None:
    """Refuse an order past the cap on open orders; count it when it passes (the batch's own orders too)."""
    cap = settings.PICKUP_OPEN_ORDERS_PER_CUSTOMER
    if cap and open_orders[customer_id] >= cap:
        raise PickupError(
            "too_many_open_orders",
            _("You already have %(count)d orders waiting. Collect or cancel one before ordering again.") % {"count": cap},
        )
    open_orders[customer_id] += 1


def place_order(
    *, customer_id: str, lines: list[tuple[int, int]], pickup_at: datetime, language: str = "en"
) -> Order:
    """Store a paid order, take its place in the pickup slot, schedule its alert, queue it."""
    [result] = place_orders([NewOrder(customer_id, lines, pickup_at, language)])
    if isinstance(result, PickupError):
        raise result
    return result


def place_orders(new_orders: list[NewOrder]) -> list[Order | PickupError]:
    """Place many orders together: per order its stored Order or the PickupError refusing it.

    Group commit for the web process, where orders of many customers arrive
    at once: a handful of queries and one commit for the whole batch instead
    of ten queries each. Every rule is still checked per order, and a refused
    order stores nothing. Everything is written in one transaction; the
    kitchen-queue entries and the alerts' timers follow after commit.
    """
    restaurant = Restaurant.current()
    items = MenuItem.objects.in_bulk({item_id for new in new_orders for item_id, _quantity in new.lines})
    results: list[Order | PickupError | None] = [None] * len(new_orders)
    by_slot: dict[datetime, list[tuple[int, pickup_times.Slot, list]]] = defaultdict(list)
    try:
        waits = limits.count_order_attempts([(new.customer_id, new.address) for new in new_orders])
    except PickupError as refusal:  # Redis cannot count them (a failover): the whole batch, nothing written
        metrics.count_placement([refusal] * len(new_orders))
        return [refusal] * len(new_orders)
    open_orders = _open_order_counts({new.customer_id for new in new_orders})
    for index, new in enumerate(new_orders):
        try:
            with translation.override(new.language):  # messages formatted now read in the customer's language
                if waits[index] is not None:
                    raise limits.rate_limited(waits[index])
                _check_open_orders(open_orders, new.customer_id)
                slot = pickup_times.check_pickup_time(restaurant, new.pickup_at)
                priced = _priced_lines(new.lines, items)
        except PickupError as error:
            results[index] = error
            continue
        by_slot[slot.start].append((index, slot, priced))

    with transaction.atomic():
        placed = []  # (index, slot row, priced lines)
        # Rows are locked in one order (slots by time, then each day's code
        # counter), so concurrent batches of two web processes cannot deadlock.
        for _start, wanting in sorted(by_slot.items()):
            slot = wanting[0][1]
            try:
                taken = pickup_times.take_places(restaurant, slot, len(wanting))
                placed.extend((index, taken, priced) for index, _slot, priced in wanting)
            except PickupError as refusal:
                if len(wanting) == 1:
                    results[wanting[0][0]] = refusal
                    continue
                for index, _slot, priced in wanting:  # not room for all: first come, first served
                    try:
                        placed.append((index, pickup_times.take_place(restaurant, slot), priced))
                    except PickupError as error:
                        results[index] = error
        placed.sort(key=lambda entry: entry[0])
        orders = _store_orders(restaurant, [(new_orders[index], taken, priced) for index, taken, priced in placed])
        for (index, _taken, _priced), order in zip(placed, orders, strict=True):
            results[index] = order
    for order in orders:
        logger.info("order %s (id %s) placed for %s", order.pickup_code, order.pk, order.pickup_at.isoformat())
    metrics.count_placement(results)
    return results


def _store_orders(
    restaurant: Restaurant, placed: list[tuple[NewOrder, PickupSlot, list[tuple[MenuItem, int]]]]
) -> list[Order]:
    """Write orders whose places are taken: codes, rows, lines, alerts; queue them after commit."""
    if not placed:
        return []
    by_day: dict[date, list[int]] = defaultdict(list)
    for position, (new, _slot, _priced) in enumerate(placed):
        by_day[pickup_day(new.pickup_at)].append(position)
    codes: dict[int, tuple[date, str]] = {}
    for day, positions in sorted(by_day.items()):
        for position, code in zip(positions, next_pickup_codes(day, len(positions)), strict=True):
            codes[position] = (day, code)
    orders = []
    for position, (new, slot, priced) in enumerate(placed):
        total = sum((item.price * quantity for item, quantity in priced), Decimal("0.00"))
        day, code = codes[position]
        orders.append(
            Order(
                customer_id=new.customer_id,
                pickup_code=code,
                pickup_date=day,
                pickup_at=new.pickup_at,
                preparation_at=new.pickup_at - timedelta(minutes=restaurant.preparation_minutes),
                slot=slot,
                status=Order.Status.QUEUED,
                total=total,
                language=new.language,
                paid_at=payments.charge(customer_id=new.customer_id, amount=total),
            )
        )
    Order.objects.bulk_create(orders)
    lines = {
        order.pk: [OrderLine(order=order, menu_item=item, quantity=quantity, unit_price=item.price) for item, quantity in priced]
        for order, (_new, _slot, priced) in zip(orders, placed, strict=True)
    }
    OrderLine.objects.bulk_create(line for order_lines in lines.values() for line in order_lines)
    alert_services.schedule_new_alerts(orders, kind=Alert.Kind.PICKUP)
    transaction.on_commit(lambda: _enqueue(orders))
    replied = {order.pk: new.reply_channel for order, (new, _slot, _priced) in zip(orders, placed, strict=True)}
    announce(orders, "order.placed", skip=replied, lines=lines)
    return orders


def _enqueue(orders: list[Order]) -> None:
    """Put stored orders in the kitchen queue; if that fails, run_queue's rebuild does it later.

    Redis out of reach (an outage, a failover's seconds) is said in one
    warning line: the operator already sees the outage, and nothing is lost.
    """
    order_ids = [order.pk for order in orders]
    try:
        kitchen_queue.add_many([(order.pk, order.pickup_at) for order in orders])
    except OUT_OF_REACH as error:
        logger.warning("orders %s wait for run_queue's rebuild to join the kitchen queue, Redis not reachable (%s)", order_ids, error)
    except Exception:
        logger.exception("could not add orders %s to the kitchen queue; rebuild will", order_ids)


def _dequeue(orders: list[Order]) -> None:
    """Take orders that no longer wait out of the kitchen queue, after their changes are committed.

    Redis out of reach (a failover, an outage) must not fail the staff's
    changes, which are stored: the entries stay behind, and run_queue skips
    them at their pickup time (``timeline.process_due_order``).
    """
    try:
        kitchen_queue.remove_many([order.pk for order in orders])
    except OUT_OF_REACH as error:
        logger.warning(
            "orders %s are %s but stay in the kitchen queue, Redis not reachable (%s); run_queue skips them",
            ", ".join(f"{order.pickup_code} (id {order.pk})" for order in orders), orders[0].status, error,
        )


# ---------------------------------------------------------------- customer changes

def follow_customer_language(customer_id: str, language: str) -> int:
    """The customer switched the page's language: alerts and updates of their open orders follow it."""
    return (
        Order.objects.filter(customer_id=customer_id, closed_at=None)
        .exclude(language=language)
        .update(language=language)
    )


def _changeable_order(customer_id: str, order_id: int) -> Order:
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


def cancel_order(*, customer_id: str, order_id: int, reply_channel: str = "") -> Order:
    """The customer cancels before preparation starts; their place in the slot is freed."""
    with transaction.atomic():
        order = _changeable_order(customer_id, order_id)
        return change_status(order, Order.Status.CANCELLED, notify=False, reply_channel=reply_channel)


def reschedule_order(*, customer_id: str, order_id: int, pickup_at: datetime, reply_channel: str = "") -> Order:
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
        alert_services.schedule_alert(order=order, kind=Alert.Kind.PICKUP, due_at=pickup_at)
        transaction.on_commit(lambda: _enqueue([order]))
        announce([order.pk], "order.updated", skip={order.pk: reply_channel})
    logger.info("order %s (id %s) moved to %s", order.pickup_code, order.pk, pickup_at.isoformat())
    return order


# ---------------------------------------------------------------- lifecycle

def may_reach(status: str) -> list[str]:
    """The statuses from which an order may move to ``status``."""
    return [source for source, targets in Order.TRANSITIONS.items() if status in targets]


@transaction.atomic
def change_status(
    order: Order, status: str, *, reason: str = "", note: str = "", notify: bool = True, reply_channel: str = ""
) -> Order:
    """Move an order to ``status`` if its lifecycle allows it.

    The alerts, the slot's capacity and the kitchen queue follow in the same
    transaction (or right after commit), and every tab of the customer hears
    of it. ``notify`` sends the customer an alert for a cancellation; a
    customer who cancels needs none. A cancellation's ``reason`` is one of
    ``Order.CancelReason`` (stored as a code, translated when shown), with
    an optional ``note`` in the staff's words.
    """
    _change(order, status, reason=reason, note=note, notify=notify, reply_channel=reply_channel)
    if status not in Order.WAITING:
        transaction.on_commit(lambda: _dequeue([order]))
    return order


def change_statuses(orders: Iterable[Order], status: str) -> list[Order | PickupError]:
    """Move several orders to ``status`` (a staff action on a batch): per order, the moved Order or
    the PickupError refusing it.

    Each order is moved as ``change_status`` moves it, in its own transaction,
    so a refused one leaves the others moved. Their kitchen-queue entries are
    taken out together after the last commit, in one Redis call: while a
    failover's primary machine is gone, every call waits out the connect
    timeout (1 s, pickup/settings.py), and the staff's page must wait for it
    once, not once per order.
    """
    results: list[Order | PickupError] = []
    for order in orders:
        try:
            with transaction.atomic():
                results.append(_change(order, status))
        except PickupError as error:
            results.append(error)
    moved = [result for result in results if isinstance(result, Order)]
    if moved and status not in Order.WAITING:
        transaction.on_commit(lambda: _dequeue(moved))
    return results


def _change(
    order: Order, status: str, *, reason: str = "", note: str = "", notify: bool = True, reply_channel: str = ""
) -> Order:
    """All ``change_status`` does but take the order out of the kitchen queue, in the caller's transaction."""
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
    if status == Order.Status.CANCELLED:
        fields.update(_cancel_reason(reason, note))
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
        alert_services.withdraw_alerts(order, kinds=[Alert.Kind.PICKUP], unsent_only=True)
        alert_services.schedule_alert(order=order, kind=Alert.Kind.READY_EARLY, due_at=now)
    elif status == Order.Status.CANCELLED:
        alert_services.withdraw_alerts(order)
        if was_waiting:
            pickup_times.release_place(order.slot_id)
        if notify:
            alert_services.schedule_alert(order=order, kind=Alert.Kind.CANCELLED, due_at=now, reason=order.cancel_note)
    elif status in (Order.Status.PICKED_UP, Order.Status.NOT_COLLECTED):
        alert_services.withdraw_alerts(order)
    announce([order.pk], "order.updated", skip={order.pk: reply_channel})
    logger.info("order %s (id %s) is now %s", order.pickup_code, order.pk, status)
    return order


def _cancel_reason(reason: str, note: str) -> dict:
    if reason and reason not in Order.CancelReason.values:
        raise PickupError("invalid_reason", _("Choose a reason from the list."), field="reason")
    return {"cancel_reason": reason, "cancel_note": note.strip()[:200]}
