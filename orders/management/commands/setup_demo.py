"""Load the demo breakfast menu and a kitchen-staff account (idempotent).

A new demo restaurant gets quick rules, so that someone trying it sees the
whole life of an order in a few minutes: "as soon as possible" is three to
four minutes ahead, and the kitchen starts an order one minute before its
pickup time, which leaves two to three minutes to try cancel and reschedule.
"""

from __future__ import annotations

import os
from datetime import time
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from orders.models import MenuItem, OpeningHours, Restaurant

DEMO_MENU = [
    # The original idea: a 6-yuan breakfast of pickled-cabbage chicken congee with a hash brown.
    ("Breakfast set: pickled-cabbage chicken congee + hash brown", "早餐套餐：酸菜鸡肉粥 + 薯饼", "6.00", "breakfast-set",
     "Our congee with a crisp hash brown: the whole breakfast.", "招牌粥配香脆薯饼，一份就是完整的早餐。"),
    ("Pickled-cabbage chicken congee", "酸菜鸡肉粥", "4.50", "congee",
     "Slow-cooked rice congee with chicken and tangy pickled cabbage.", "文火熬煮的米粥，配鸡肉和爽口酸菜。"),
    ("Hash brown", "薯饼", "2.00", "hash-brown",
     "Golden and crisp, fried to order.", "现炸薯饼，金黄酥脆。"),
    ("Soy milk", "豆浆", "2.50", "soy-milk",
     "Freshly ground, lightly sweetened, served hot.", "现磨豆浆，微甜，热饮。"),
    ("Steamed pork bun", "猪肉包子", "1.50", "steamed-bun",
     "A soft bun filled with seasoned pork.", "松软面皮，包着调好味的猪肉馅。"),
]

# Rules of a new demo restaurant (staff change them in the admin; a re-run keeps theirs).
DEMO_RULES = {
    "min_notice_minutes": 3, "slot_minutes": 1, "preparation_minutes": 1,
    "name_zh_hans": "Pickup 早餐铺",
    "address": "1 Example Road, Shanghai", "address_zh_hans": "上海市示例路1号",
    "counter": "The pickup shelf left of the door", "counter_zh_hans": "进门左手边的取餐架",
}

STAFF_GROUP = "Kitchen staff"
STAFF_PERMISSIONS = [
    "view_order", "change_order", "view_menuitem", "change_menuitem", "view_alert",
    "view_restaurant", "change_restaurant", "view_openinghours", "add_openinghours",
    "change_openinghours", "delete_openinghours", "view_pickupslot",
    "view_boardlink", "add_boardlink", "change_boardlink",
]


class Command(BaseCommand):
    help = "Load the demo breakfast menu and create the demo kitchen-staff account."

    def add_arguments(self, parser):
        parser.add_argument("--staff-username", default=os.environ.get("DEMO_STAFF_USERNAME", "kitchen"))
        parser.add_argument("--staff-password", default=os.environ.get("DEMO_STAFF_PASSWORD", "kitchen-demo"))
        parser.add_argument("--no-staff", action="store_true", help="Only load the menu.")

    @transaction.atomic
    def handle(self, *args, staff_username, staff_password, no_staff, **options):
        for position, (name, name_zh, price, picture, description, description_zh) in enumerate(DEMO_MENU):
            MenuItem.objects.update_or_create(
                name=name,
                defaults={"name_zh_hans": name_zh, "price": Decimal(price), "position": position, "picture": picture,
                          "description": description, "description_zh_hans": description_zh},
            )
        self.stdout.write(f"Demo menu: {len(DEMO_MENU)} items.")
        restaurant, created = Restaurant.objects.get_or_create(pk=1, defaults=DEMO_RULES)
        if created:
            self.stdout.write(
                "Demo rules: pickup from 3 minutes ahead in 1-minute slots; the kitchen starts 1 minute before."
            )
        if not restaurant.opening_hours.exists():
            # Open around the clock so the demo works whenever someone tries it;
            # staff set the real hours in the admin.
            OpeningHours.objects.bulk_create(
                OpeningHours(restaurant=restaurant, weekday=day, opens=time(0), closes=time(0)) for day in range(7)
            )
            self.stdout.write("Demo opening hours: every day, all day (edit them in the admin).")
        Restaurant.forget_current()  # bulk_create sends no signal to clear the cached rules
        if no_staff:
            return
        group, _ = Group.objects.get_or_create(name=STAFF_GROUP)
        group.permissions.set(Permission.objects.filter(codename__in=STAFF_PERMISSIONS))
        user, created = get_user_model().objects.get_or_create(username=staff_username, defaults={"is_staff": True})
        if created:
            user.set_password(staff_password)
            user.save()
        user.groups.add(group)
        verb = "Created" if created else "Kept"
        self.stdout.write(f"{verb} kitchen staff account '{staff_username}'" + (f" (password '{staff_password}')." if created else "."))
