from django.urls import path

from orders import board_views, kitchen_views, views

app_name = "orders"

urlpatterns = [
    path("", views.order_page, name="order_page"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("pickup-times/", views.pickup_time_offers, name="pickup_times"),
    path("session/", views.start_session, name="start_session"),
    path("board/<str:token>/", board_views.board_page, name="board"),
    path("board/<str:token>/state/", board_views.board_state, name="board_state"),
    path("kitchen/", kitchen_views.kitchen_screen, name="kitchen_screen"),
]
