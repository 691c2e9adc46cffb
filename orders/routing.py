from django.urls import path

from orders.consumers import CustomerConsumer, KitchenConsumer

websocket_urlpatterns = [
    path("ws/customer/", CustomerConsumer.as_asgi()),
    path("ws/kitchen/", KitchenConsumer.as_asgi()),
]
