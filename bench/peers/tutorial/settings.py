"""Only what the tutorial's chat needs: channels, the auth stack its asgi.py wraps, a layer.

TUTORIAL_LAYER picks the channel layer: `core` (channels_redis.core.RedisChannelLayer, the
tutorial's choice) or `pubsub` (channels_redis.pubsub.RedisPubSubChannelLayer). Both get
only `hosts`, as the tutorial configures them; every other option keeps its default.
"""

from __future__ import annotations

import os

LAYERS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}

SECRET_KEY = os.environ.get("SECRET_KEY", "bench-tutorial-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    # AuthMiddlewareStack reads the session and the user: the tutorial has both apps.
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
]
ROOT_URLCONF = "bench.peers.tutorial.urls"
ASGI_APPLICATION = "bench.peers.tutorial.asgi.application"

# Never queried: a handshake without a session cookie resolves to AnonymousUser without a
# query. It exists because the auth stack imports the models.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TUTORIAL_DATABASE", ":memory:"),
    }
}
USE_TZ = True

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": LAYERS[os.environ.get("TUTORIAL_LAYER", "core")],
        "CONFIG": {"hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")]},
    }
}
