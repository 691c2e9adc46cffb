from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("", views.order_page, name="order_page"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("pickup-times/", views.pickup_time_offers, name="pickup_times"),
]
