"""Settings for `make run` on a developer's machine."""

import secrets

from config.env import env
from config.settings.base import *  # noqa: F403
from config.settings.base import REALTIME, SECRET_KEY, SIMPLE_JWT, VAR_DIR

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# daphne serves /static/ itself locally (nginx does in production).
SERVE_STATIC = env.bool("SERVE_STATIC", default=True)
# The chat page's socket comes from wherever `make run` serves it (HOST, PORT), as long as
# the host is one of ALLOWED_HOSTS: its own origin is allowed without listing it.
REALTIME["ALLOW_SAME_ORIGIN"] = env.bool("WS_ALLOW_SAME_ORIGIN", default=True)
# Sign-up emails (accounts.services.user_register) are printed, not sent. Tests use locmem.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"


def _checkout_secret_key() -> str:
    """A random key kept in var/, so no checkout runs on a key published in the repository."""
    path = VAR_DIR / "secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


if not SECRET_KEY:
    SECRET_KEY = _checkout_secret_key()
    SIMPLE_JWT["SIGNING_KEY"] = env.str("JWT_SIGNING_KEY") or SECRET_KEY
