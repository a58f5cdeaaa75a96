"""Settings for `make run` on a developer's machine."""

import secrets

from config.env import env
from config.settings.base import *  # noqa: F403
from config.settings.base import SECRET_KEY, SIMPLE_JWT, VAR_DIR

DEBUG = env.bool("DJANGO_DEBUG", default=True)
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
