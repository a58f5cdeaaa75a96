"""Settings shared by every environment; `local`, `test` and `production` change only what differs.

All environment reads go through `config.env.env`. Defaults make `make run` work with nothing
set: SQLite and the in-memory channel layer.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url

from config import redis_hosts
from config.env import env
from config.error_tracking import init_error_tracking
from config.logs import build_logging

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env.str("VAR_DIR", str(BASE_DIR / "var")))

# Empty here on purpose: `local` falls back to a per-checkout key, `production` refuses to start.
SECRET_KEY = env.str("SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # daphne first: it replaces `runserver` with its ASGI server.
    "daphne",
    # django.contrib.admin with a login form throttled like the API's (config/admin.py).
    "config.apps.ChatAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    # OpenAPI schema and docs page of the REST API (SPECTACULAR_SETTINGS); the sidecar ships
    # Swagger UI's files as static files, so the page needs no CDN.
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "realtime",
]

MIDDLEWARE = [
    # First: the ones below may answer (HTTPS redirect, bad Host) without calling the rest.
    "config.middleware.BurnTicketsInUrlsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.headers.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before anything reads the body (CSRF reads forms): 413 over DATA_UPLOAD_MAX_MEMORY_SIZE.
    "config.api.RequestBodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------
# DATABASE_URL selects the database (postgres://... in production); SQLite otherwise.
DATABASES = {
    "default": dj_database_url.parse(
        env.str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env.int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A pool per process (psycopg_pool): the sockets' ORM calls run on a few threads and
    # each takes a connection for the length of one call, so opening one per call (the
    # default) would cost a PostgreSQL backend start per message. DATABASE_POOL_MAX_SIZE=0
    # turns the pool off (for PgBouncer in transaction mode, or DATABASE_CONN_MAX_AGE).
    _pool_max = env.int("DATABASE_POOL_MAX_SIZE", 20)
    if _pool_max > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(env.int("DATABASE_POOL_MIN_SIZE", 2), _pool_max),
            "max_size": _pool_max,
            # A call that waits longer than this for a connection fails as the database
            # being unavailable (4013 at a handshake, `unavailable` for a frame, /healthz
            # 503): under daphne's 5 s handshake timeout, so the client learns the reason.
            "timeout": env.float("DATABASE_POOL_TIMEOUT", 3.0),
        }
# Handshakes a process works on at once (realtime.admission); the rest wait their turn in
# arrival order, so a reconnect wave is served first come first served instead of all late.
WS_HANDSHAKES_AT_ONCE = env.int("WS_HANDSHAKES_AT_ONCE", 32)
# How long `manage.py serve` lets a handshake take, from the TCP connection to the accept,
# before daphne drops it (daphne's own default is 5 s); and how long one may wait for its
# turn before it is closed with 4013 instead, leaving time for its own work. Under plain
# daphne, pass the same --websocket_connect_timeout.
WS_HANDSHAKE_TIMEOUT_SECONDS = env.int("WS_HANDSHAKE_TIMEOUT_SECONDS", 10)
WS_HANDSHAKE_QUEUE_SECONDS = max(1, WS_HANDSHAKE_TIMEOUT_SECONDS - 2)
# Threads per process that run the sockets' database calls (realtime.db): they mostly wait
# for the database, so more than the CPUs; no more than the pool holds, so none waits for a
# connection.
DATABASE_THREADS = env.int("DATABASE_THREADS", 16)
if "pool" in DATABASES["default"].get("OPTIONS", {}):
    DATABASE_THREADS = min(DATABASE_THREADS, DATABASES["default"]["OPTIONS"]["pool"]["max_size"])
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several daphne processes may share one SQLite file: WAL lets readers run beside the
    # writer, IMMEDIATE takes the write lock up front instead of failing mid-transaction,
    # and the timeout makes a writer wait its turn rather than raise "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, health -----------------------------------------------------
# The project's own state (connection slots, presence, the epoch key, tickets, throttles, the
# cache) lives on REDIS_URL; so does the channel layer's pub/sub, unless it is given servers
# of its own below (config.redis_hosts, docs/deployment.md).
REDIS_URL = env.str("REDIS_URL")
# TLS for every rediss:// URL (and for Sentinel with REDIS_SENTINEL_TLS). redis-py verifies
# the server's certificate and host name by default: against this CA file (a private CA) or
# the system's CAs. A client certificate and key for servers that require one (mutual TLS).
REDIS_TLS = redis_hosts.tls_options(
    ca_file=env.str("REDIS_TLS_CA_FILE"),
    cert_file=env.str("REDIS_TLS_CERT_FILE"),
    key_file=env.str("REDIS_TLS_KEY_FILE"),
)
# Namespace of every Redis key the project writes (groups, connection counts), so several
# deployments can share one Redis.
REDIS_KEY_PREFIX = env.str("CHANNEL_LAYER_PREFIX", "chat")
CHANNEL_LAYER_CAPACITY = env.int("CHANNEL_LAYER_CAPACITY", 1000)
# Where the channel layer publishes: several servers (shards; every process must list the
# same ones in the same order), or masters found through Sentinel, or REDIS_URL alone.
CHANNEL_LAYER_HOSTS = redis_hosts.layer_hosts(
    redis_url=REDIS_URL,
    urls=env.list("CHANNEL_LAYER_REDIS_URLS"),
    sentinels=env.list("REDIS_SENTINELS"),
    masters=env.list("REDIS_SENTINEL_MASTER"),
    sentinel_password=env.str("REDIS_SENTINEL_PASSWORD"),
    master_password=env.str("REDIS_SENTINEL_MASTER_PASSWORD"),
    sentinel_tls=env.bool("REDIS_SENTINEL_TLS", False),
    tls=REDIS_TLS,
)
# Encrypts what the channel layer publishes (Fernet, in channels-redis's serializer), for a
# Redis that others can read. The first key encrypts, every key decrypts: rotate by adding
# the new key second everywhere, then first, then dropping the old one.
CHANNEL_LAYER_ENCRYPTION_KEYS = env.list("CHANNEL_LAYER_ENCRYPTION_KEYS")

if REDIS_URL:
    CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
        "default": {
            # channels-redis's pub/sub layer: one PUBLISH per group_send, local fan-out, and
            # delivery straight to the sockets (realtime.layers, docs/benchmarks.md).
            "BACKEND": "realtime.layers.ChatChannelLayer",
            "CONFIG": {
                "hosts": CHANNEL_LAYER_HOSTS,
                "prefix": REDIS_KEY_PREFIX,
                # Group messages queued per socket before the layer drops new ones (and the
                # socket fills the hole by seq). A socket 1000 behind is lost anyway.
                "capacity": CHANNEL_LAYER_CAPACITY,
                # redis-py 8 caps an asyncio pool at 100 connections and *raises* past that.
                # A blocking pool makes a burst queue for a connection instead.
                "pool_max_connections": env.int("REDIS_POOL_MAX_CONNECTIONS", 100),
                "pool_timeout": env.int("REDIS_POOL_TIMEOUT", 5),
                "socket_connect_timeout": 2,
                "socket_timeout": 5,
                # Sockets stay open through a shorter loss of the subscription connection (a
                # Redis restart) and catch up after it; past it they are closed with 4013.
                "outage_grace": env.float("REDIS_OUTAGE_GRACE_SECONDS", 3.0),
            },
        }
    }
    if CHANNEL_LAYER_ENCRYPTION_KEYS:
        CHANNEL_LAYERS["default"]["CONFIG"]["symmetric_encryption_keys"] = (
            CHANNEL_LAYER_ENCRYPTION_KEYS
        )
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", "chat"),
            "OPTIONS": {
                "socket_connect_timeout": 2,
                "socket_timeout": 2,
                **redis_hosts.url_options(REDIS_URL, REDIS_TLS),
            },
        }
    }
else:
    # One process only: groups and tickets live in this process's memory.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_LAYER_CAPACITY},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Passwords and accounts --------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sign-up sends one email per attempt (accounts.services). An SMTP server, with STARTTLS or
# implicit TLS; the local settings print mail to the console instead.
EMAIL_HOST = env.str("EMAIL_HOST", "localhost")
EMAIL_PORT = env.int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "chat@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Whether daphne serves /static/ (local runs); in production nginx does, from STATIC_ROOT.
SERVE_STATIC = env.bool("SERVE_STATIC", default=False)
STATIC_ROOT = Path(env.str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# Largest request body the application reads, counted on what actually arrived. The API takes
# small JSON and the admin small forms (no uploads); Django's 2.5 MiB default is sized for
# forms with files. nginx refuses bodies over 64 KiB before they reach daphne; this holds for
# a client reaching a daphne port directly. Over it: 413 (config.api.RequestBodyLimitMiddleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.SessionJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    # drf-spectacular's, plus the error answers each view implies (config.openapi).
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        # Per client address. Enough for a person retyping a password, too slow for a
        # credential-stuffing run; raise them for load tests through the environment.
        "login": env.str("THROTTLE_LOGIN", "10/min"),
        "register": env.str("THROTTLE_REGISTER", "5/min"),
        "ticket": env.str("THROTTLE_TICKET", "60/min"),
        # Per user: rooms created through the API. A person sets up a few rooms at a time;
        # a script making hundreds a minute is stopped here and by the cap below.
        "room_create": env.str("THROTTLE_ROOM_CREATE", "30/hour"),
    },
    "NUM_PROXIES": env.int("NUM_PROXIES", 0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Rooms one user may have created through the API (realtime.services.room_create counts the
# rooms they created, whether or not they still belong to them; 403 `quota_exceeded` past it).
# Rooms added in the Django admin are not held to it. Staff accounts are: their tokens can
# leak like anyone's, and the admin is their way to make more.
ROOMS_MAX_OWNED_PER_USER = env.int("ROOMS_MAX_OWNED_PER_USER", 50)

# JWTs: short-lived access tokens, rotating refresh tokens blacklisted after use.
SIMPLE_JWT = {
    # Seconds, so that tests and drills can run sockets through an expiry quickly. An access
    # token bounds how long a revoked session can go unnoticed where no check looks.
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_SECONDS", 5 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_SECONDS", 24 * 60 * 60)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    # SimpleJWT decodes with exactly this algorithm: `alg: none` or RS/HS confusion fail.
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY") or SECRET_KEY,
    "AUDIENCE": env.str("JWT_AUDIENCE", "chat"),
    "ISSUER": env.str("JWT_ISSUER", "chat"),
    "LEEWAY": 0,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "CHECK_USER_IS_ACTIVE": True,
    # Tokens carry a hash of the password hash: changing a password revokes every token.
    "CHECK_REVOKE_TOKEN": True,
    # Logins go through accounts.serializers.LoginSerializer, which opens a session per pair.
    "TOKEN_OBTAIN_SERIALIZER": "accounts.serializers.LoginSerializer",
}

# --- OpenAPI schema (drf-spectacular) ----------------------------------------------------------
# GET /api/schema/ (YAML, or JSON with ?format=json) and /api/docs/ (Swagger UI), both public;
# docs/openapi.yaml is the committed copy (`make openapi`). Shared pieces: config.openapi.
SPECTACULAR_SETTINGS = {
    "TITLE": "Chat REST API",
    # The project's version (pyproject.toml).
    "VERSION": "0.1.0",
    "DESCRIPTION": (
        "Accounts (registration, JWT sign-in sessions), rooms, history, members and "
        "WebSocket tickets of the chat backend. The WebSocket protocol itself (`/ws/chat/`) "
        "is described in docs/protocol.md and, machine-readably, in the AsyncAPI 3.0 document "
        "docs/asyncapi.json, served at `/api/realtime/asyncapi.json`.\n\n"
        "Authenticate with `Authorization: Bearer <access token>` from `POST /api/auth/token/`."
        " Every 4xx and 5xx answer has the body `ErrorEnvelope`: "
        '`{"error": {"code", "message", "fields"?}}`; clients act on `code`.'
    ),
    "SCHEMA_PATH_PREFIX": "/api/",
    # Request bodies get their own components (`RoomRequest` without read-only fields).
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and the docs page are public and need no token (a bad one is not refused).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar's static files, not a CDN: the page works
    # offline and under config.headers' policy (script-src 'self'; style-src 'self').
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: it is an image from validator.swagger.io, which the policy refuses.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "displayOperationId": True, "validatorUrl": None},
    # SessionJWTAuthentication is mapped to this scheme in config.openapi.
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An access token from `POST /api/auth/token/` (5 minutes; "
                "renew it with `POST /api/auth/token/refresh/`).",
            }
        }
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.describe_healthz",
    ],
}

# --- Realtime ----------------------------------------------------------------------------------
# Every knob of the WebSocket layer, read through realtime.conf.realtime_settings.
REALTIME = {
    # Browser origins allowed to open a socket (scheme://host[:port]); other origins are refused.
    "ALLOWED_ORIGINS": env.list(
        "WS_ALLOWED_ORIGINS",
        CSRF_TRUSTED_ORIGINS or ["http://127.0.0.1:8000", "http://localhost:8000"],
    ),
    # Also allow a page served by this very host (local settings turn it on, so any
    # HOST/PORT `make run` serves works; production lists its origins explicitly).
    "ALLOW_SAME_ORIGIN": env.bool("WS_ALLOW_SAME_ORIGIN", False),
    # Native clients send no Origin; allow them only when they authenticate by header.
    "ALLOW_NO_ORIGIN_WITH_HEADER_AUTH": env.bool("WS_ALLOW_NO_ORIGIN_WITH_HEADER_AUTH", True),
    # The one subprotocol the server speaks; selected whenever a client offers it.
    "SUBPROTOCOL": "chat.v1",
    # A ticket only has to survive the round trip from the POST to the socket open.
    "TICKET_TTL_SECONDS": 30,
    # Messages sent with `joined`; older ones are paged through REST with ?before=<id>.
    "HISTORY_LIMIT": 50,
    # ...and no more than fits in this many bytes of JSON, so `joined` always passes the
    # transport cap below whatever the bodies (one 4000-character body is at most ~24 KiB).
    "HISTORY_MAX_BYTES": 48 * 1024,
    # Long enough for a paragraph, short enough that 1000 of them fit a screen of history.
    # Counted in Unicode code points (a JavaScript string's length counts an emoji as 2).
    "MAX_BODY_CHARS": 4000,
    # Largest text frame the consumer parses: the longest valid `send`, every character of
    # its body written as a 12-byte surrogate-pair escape ("\ud83d\ude00"), is ~49 KB.
    "MAX_FRAME_BYTES": 56 * 1024,
    # daphne refuses bigger WebSocket messages outright (close 1009) before the app sees them,
    # and refuses to send bigger ones: every server frame is built to stay under it.
    "TRANSPORT_MAX_MESSAGE_BYTES": 64 * 1024,
    # Centrifugo allows 128 channels per connection; a person reads far fewer rooms at once.
    "MAX_ROOMS_PER_CONNECTION": 100,
    # Token bucket per connection: bursts of 20 frames, 5 frames/s sustained (OWASP suggests
    # about 100 a minute for a person). Benchmarks driving one socket hard raise them.
    "RATE_BURST": env.int("WS_RATE_BURST", 20),
    "RATE_PER_SECOND": env.float("WS_RATE_PER_SECOND", 5.0),
    # Frames refused by the rate limit before the socket is closed with 4008.
    "RATE_STRIKES_BEFORE_CLOSE": 20,
    # Protocol errors (bad JSON, bad schema...) tolerated before closing with 4400.
    "MAX_PROTOCOL_ERRORS": 10,
    # A socket lives until its access token's `exp` plus this grace, unless the client sends
    # a `refresh` first; then it is closed with 4102. Covers clock skew and a slow refresh.
    "TOKEN_GRACE_SECONDS": env.int("WS_TOKEN_GRACE_SECONDS", 30),
    # Open sockets per user across every process: tabs and devices of one person. Past it the
    # new socket is closed with 4009.
    "MAX_CONNECTIONS_PER_USER": env.int("WS_MAX_CONNECTIONS_PER_USER", 20),
    # Open sockets per client address across every process: a household or an office behind
    # one NAT address. nginx's limit_conn on /ws/ sits just above it as a backstop.
    "MAX_CONNECTIONS_PER_ADDRESS": env.int("WS_MAX_CONNECTIONS_PER_ADDRESS", 50),
    # A socket's slot in the Redis counts expires this long after its process last renewed it
    # (every third of it), so the sockets of a killed process stop counting within it.
    "CONNECTION_TTL_SECONDS": env.int("WS_CONNECTION_TTL_SECONDS", 60),
    # How often each process checks that Redis still holds its groups (a restart or failover
    # empties it); a socket is deaf for at most about this long before it rejoins them.
    "REDIS_CHECK_SECONDS": 1.0,
    # A socket's presence in a room expires this long after its process last renewed it
    # (every third of it), so the users of a killed process leave within it.
    "PRESENCE_TTL_SECONDS": env.int("PRESENCE_TTL_SECONDS", 30),
    # A user's typing notices reach a room at most this often; the rest are dropped.
    "TYPING_INTERVAL_SECONDS": 3.0,
    # Output a client has not read, beyond the 64 KiB the transport buffers, before the socket
    # is closed with 4010 (Centrifugo's default write queue is 1 MB). Bounds the memory a
    # client that never reads can make the server hold.
    "OUTPUT_MAX_BYTES": 1024 * 1024,
    "OUTPUT_MAX_FRAMES": 1000,
}

# --- Metrics -----------------------------------------------------------------------------------
# Addresses (or networks) that may read GET /metrics (config.metrics); empty: nobody.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1", "::1"])

# --- Logging -----------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", "INFO").upper()
LOGGING = build_logging(
    level=LOG_LEVEL,
    fmt=env.str("LOG_FORMAT", "text"),
    realtime_file=Path(env.str("LOG_FILE", str(VAR_DIR / "log" / "realtime.log"))),
    file_max_bytes=env.int("LOG_FILE_MAX_BYTES", 10 * 1024 * 1024),
    file_backups=env.int("LOG_FILE_BACKUPS", 5),
)

# --- Error tracking ----------------------------------------------------------------------------
# Sentry, or any tracker that speaks its protocol: set the project's DSN to switch it on
# (config.error_tracking: events are redacted as the logs are, without cookies, bodies or locals).
SENTRY_DSN = env.str("SENTRY_DSN")
if SENTRY_DSN:
    init_error_tracking(
        SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", "production"),
        release=env.str("SENTRY_RELEASE") or None,
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
    )
