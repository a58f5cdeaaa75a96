"""ASGI entry point: HTTP goes to Django, WebSockets through the realtime stack.

HTTP: /metrics (config.metrics) is answered before Django; everything else is Django's.
The WebSocket stack reads top to bottom, each layer refusing what it must before the next:
handshake admission (a bounded number at a time, in order) -> origin allow-list -> token
authentication -> URL router -> ChatConsumer.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Set Django up (apps, models) before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from config.metrics import MetricsEndpoint  # noqa: E402
from realtime.admission import HandshakeAdmissionMiddleware  # noqa: E402
from realtime.middleware import TokenAuthMiddleware  # noqa: E402
from realtime.origin import OriginAllowListMiddleware  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # /metrics for the addresses allowed to scrape (config.metrics), then Django. In
        # production nginx serves /static/; locally daphne does (settings.SERVE_STATIC).
        "http": MetricsEndpoint(
            ASGIStaticFilesHandler(django_asgi_app) if settings.SERVE_STATIC else django_asgi_app,
            settings.METRICS_ALLOWED_NETWORKS,
        ),
        "websocket": HandshakeAdmissionMiddleware(
            OriginAllowListMiddleware(
                TokenAuthMiddleware(
                    # types-channels wants its own URLPattern subtype, which path() never types.
                    URLRouter(websocket_urlpatterns),  # type: ignore[arg-type]
                )
            )
        ),
    }
)
