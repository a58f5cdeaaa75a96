from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.urls")),
    # The OpenAPI schema of the REST API (YAML; JSON with ?format=json) and its Swagger UI,
    # both public (SPECTACULAR_SETTINGS). The page's script is /api/docs/?script=, not inline,
    # so the Content-Security-Policy (config.headers) needs no exception for it.
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/docs.html"),
        name="api-docs",
    ),
    path("api/", include("realtime.urls")),
    path("", include("realtime.pages")),
]

handler404 = "config.api.not_found"
handler500 = "config.api.internal_error"
