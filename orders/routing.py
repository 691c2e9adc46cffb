from django.urls import path

from orders.consumers import BoardConsumer, CustomerConsumer, KitchenConsumer

websocket_urlpatterns = [
    path("ws/customer/", CustomerConsumer.as_asgi()),
    path("ws/kitchen/", KitchenConsumer.as_asgi()),
    path("ws/board/<str:token>/", BoardConsumer.as_asgi()),
]
