"""Production: secrets and hosts come from the environment or the process refuses to start.

TLS ends at nginx (deploy/nginx/chat.conf), which sets X-Forwarded-Proto; Django trusts that header
only because nothing reaches daphne except through nginx on loopback or a private network.
"""

from django.core.exceptions import ImproperlyConfigured

from config.env import env
from config.redis_hosts import check_encryption_keys
from config.settings.base import *  # noqa: F403
from config.settings.base import CHANNEL_LAYER_ENCRYPTION_KEYS, REALTIME, SIMPLE_JWT

DEBUG = False

SECRET_KEY = env.required("SECRET_KEY", "a long random string that signs sessions and JWTs")
_HOSTS_WHY = "comma-separated host names served"
ALLOWED_HOSTS = env.required("ALLOWED_HOSTS", _HOSTS_WHY).split(",")
ALLOWED_HOSTS = [host.strip() for host in ALLOWED_HOSTS if host.strip()]
if not ALLOWED_HOSTS:
    # Only commas and blanks: Django would answer every request 400 rather than fail here.
    raise ImproperlyConfigured(f"Set the ALLOWED_HOSTS environment variable: {_HOSTS_WHY}")
REDIS_URL = env.required(
    "REDIS_URL", "redis://host:port/db (rediss:// for TLS) joins the daphne processes"
)
# A key that is short or repetitive is a placeholder left in the environment file, not a key.
check_encryption_keys(CHANNEL_LAYER_ENCRYPTION_KEYS)
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS", [f"https://{host}" for host in ALLOWED_HOSTS if host != "*"]
)
SIMPLE_JWT["SIGNING_KEY"] = env.str("JWT_SIGNING_KEY") or SECRET_KEY
REALTIME["ALLOWED_ORIGINS"] = env.list("WS_ALLOWED_ORIGINS", CSRF_TRUSTED_ORIGINS)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# /healthz is probed over plain HTTP by the load balancer and systemd, never redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
