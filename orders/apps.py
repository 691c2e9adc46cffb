from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders and kitchen queue")

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from orders import checks  # noqa: F401  (registers the system checks)
        from orders.models import OpeningHours, Restaurant

        for model in (Restaurant, OpeningHours):
            post_save.connect(Restaurant.forget_current, sender=model, dispatch_uid=f"forget-restaurant-{model.__name__}")
            post_delete.connect(Restaurant.forget_current, sender=model, dispatch_uid=f"forget-restaurant-del-{model.__name__}")
