from django.contrib import admin
from django.urls import include, path

from config.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.urls")),
    path("api/", include("realtime.urls")),
    path("", include("realtime.pages")),
]

handler404 = "config.api.not_found"
handler500 = "config.api.internal_error"
