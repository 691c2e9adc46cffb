from django.contrib import admin
from django.urls import include, path
from django.views.i18n import set_language

from orders.views import health

admin.site.site_header = "Pickup · kitchen"
admin.site.site_title = "Pickup kitchen"
admin.site.index_title = "Kitchen queue and menu"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/setlang/", set_language, name="set_language"),
    path("healthz", health, name="health"),
    path("", include("notifications.urls")),
    path("", include("orders.urls")),
]
