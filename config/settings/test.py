"""Settings for pytest. Servers that tests start run `local` with their own environment."""

from config.settings.base import *  # noqa: F403
from config.settings.base import REST_FRAMEWORK, SIMPLE_JWT

SECRET_KEY = "test-only-secret-key-never-used-outside-the-test-suite-0123456789"  # noqa: S105
SIMPLE_JWT["SIGNING_KEY"] = SECRET_KEY
# Hashing cost is not under test; the suite creates hundreds of users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Throttle tests lower these with override_settings; other tests must never hit them.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        "login": "10000/min",
        "register": "10000/min",
        "ticket": "10000/min",
        "room_create": "10000/min",
    },
}
