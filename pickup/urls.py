from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.i18n import set_language

from pickup import views

# In the staff member's language, as the rest of the admin.
admin.site.site_header = _("Pickup · kitchen")
admin.site.site_title = _("Pickup kitchen")
admin.site.index_title = _("Kitchen queue and menu")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/setlang/", set_language, name="set_language"),
    path("healthz", views.health, name="health"),
    path("readyz", views.ready, name="ready"),
    path("metrics", views.metrics_view, name="metrics"),
    path("", include("notifications.urls")),
    path("", include("orders.urls")),
]

handler500 = "pickup.views.server_error"
