from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("push/subscriptions/", views.push_subscriptions, name="push_subscriptions"),
    path("service-worker.js", views.service_worker, name="service_worker"),
]
