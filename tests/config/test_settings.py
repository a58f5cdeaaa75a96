"""Production settings refuse to start half-configured; config.env parses strictly.

Settings modules run once per process, so production is exercised in subprocesses with a
controlled environment (nothing inherited, logs and var/ in a temporary directory).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import Env

REPO = Path(__file__).resolve().parent.parent.parent
SETUP = ["-c", "import django; django.setup()"]


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    """Everything production requires, plus paths that keep the run out of the checkout."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "VAR_DIR": str(tmp_path / "var"),
        "LOG_FILE": str(tmp_path / "log" / "realtime.log"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "chat.example.com",
        "REDIS_URL": "redis://127.0.0.1:6399/0",
    }


def run_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", ["SECRET_KEY", "ALLOWED_HOSTS", "REDIS_URL"])
@pytest.mark.parametrize("how", ["unset", "blank"])
def test_production_refuses_to_start_without_a_required_variable(production_env, name, how):
    if how == "unset":
        del production_env[name]
    else:
        production_env[name] = "   "

    result = run_python(SETUP, production_env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"Set the {name} environment variable" in result.stderr


def test_production_starts_with_the_required_variables(production_env):
    result = run_python(SETUP, production_env)

    assert result.returncode == 0, result.stderr


def test_production_refuses_allowed_hosts_with_no_host_in_it(production_env):
    production_env["ALLOWED_HOSTS"] = " , ,"

    result = run_python(SETUP, production_env)

    assert result.returncode != 0
    assert "Set the ALLOWED_HOSTS environment variable" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("DJANGO_DEBUG", "maybe"), ("SECURE_HSTS_SECONDS", "a year"), ("NUM_PROXIES", "one")],
)
def test_production_refuses_a_malformed_variable(production_env, name, value):
    production_env[name] = value

    result = run_python(SETUP, production_env)

    assert result.returncode != 0
    assert f"{name} must be" in result.stderr
    assert repr(value) in result.stderr


def test_check_deploy_passes_with_the_required_variables(production_env, tmp_path):
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    # Logging was set up under the temporary directory, not in the checkout.
    assert (tmp_path / "log").is_dir()


def test_check_deploy_fails_when_a_protection_is_switched_off(production_env):
    production_env["SECURE_SSL_REDIRECT"] = "false"
    production_env["SECURE_HSTS_SECONDS"] = "0"

    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env
    )

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "security.W008" in output
    assert "security.W004" in output


def test_production_derives_origins_and_signing_key_from_the_environment(production_env):
    production_env["ALLOWED_HOSTS"] = "chat.example.com, api.example.com"
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, "
        "'csrf': s.CSRF_TRUSTED_ORIGINS, 'signing_is_secret': "
        "s.SIMPLE_JWT['SIGNING_KEY'] == s.SECRET_KEY, 'cache': s.CACHES['default']['BACKEND'], "
        "'redis': s.REDIS_URL}))"
    )

    result = run_python(["-c", script], production_env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "debug": False,
        "hosts": ["chat.example.com", "api.example.com"],
        "csrf": ["https://chat.example.com", "https://api.example.com"],
        "signing_is_secret": True,
        "cache": "django.core.cache.backends.redis.RedisCache",
        "redis": "redis://127.0.0.1:6399/0",
    }


def test_production_debug_stays_off_whatever_the_environment_says(production_env):
    production_env["DJANGO_DEBUG"] = "true"
    script = (
        "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    )

    result = run_python(["-c", script], production_env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def settings_json(production_env: dict[str, str], expression: str) -> Any:
    """`expression` (over `s`, the settings) evaluated by production settings, as JSON."""
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({expression}))"
    )
    result = run_python(["-c", script], production_env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_talks_tls_to_every_redis_given_as_rediss(production_env):
    production_env["REDIS_URL"] = "rediss://:pw@redis.internal:6380/0"
    production_env["REDIS_TLS_CA_FILE"] = "/etc/chat/redis-ca.pem"
    production_env["CHANNEL_LAYER_REDIS_URLS"] = (
        "rediss://layer-1.internal:6380/0,rediss://layer-2.internal:6380/0"
    )
    production_env["CHANNEL_LAYER_ENCRYPTION_KEYS"] = secrets.token_urlsafe(32)

    found = settings_json(
        production_env,
        "{'layer': s.CHANNEL_LAYERS['default']['CONFIG'], 'cache': s.CACHES['default']}",
    )

    ca = {"ssl_ca_certs": "/etc/chat/redis-ca.pem"}
    assert found["layer"]["hosts"] == [
        {"address": "rediss://layer-1.internal:6380/0", **ca},
        {"address": "rediss://layer-2.internal:6380/0", **ca},
    ]
    assert found["layer"]["symmetric_encryption_keys"] == [
        production_env["CHANNEL_LAYER_ENCRYPTION_KEYS"]
    ]
    assert found["cache"]["LOCATION"] == "rediss://:pw@redis.internal:6380/0"
    assert found["cache"]["OPTIONS"] == {"socket_connect_timeout": 2, "socket_timeout": 2, **ca}


def test_production_without_encryption_keys_publishes_unencrypted(production_env):
    found = settings_json(production_env, "s.CHANNEL_LAYERS['default']['CONFIG']")

    assert "symmetric_encryption_keys" not in found
    assert found["hosts"] == [{"address": "redis://127.0.0.1:6399/0"}]


@pytest.mark.parametrize("keys", ["change-me", f"{secrets.token_urlsafe(32)},{'a' * 40}"])
def test_production_refuses_a_weak_channel_layer_key(production_env, keys):
    production_env["CHANNEL_LAYER_ENCRYPTION_KEYS"] = keys

    result = run_python(SETUP, production_env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "CHANNEL_LAYER_ENCRYPTION_KEYS: key" in result.stderr
    # The key itself is never echoed.
    assert "change-me" not in result.stderr
    assert "a" * 40 not in result.stderr


def test_production_refuses_redis_tls_files_that_nothing_would_use(production_env):
    production_env["REDIS_TLS_CA_FILE"] = "/etc/chat/redis-ca.pem"

    result = run_python(SETUP, production_env)

    assert result.returncode != 0
    assert "apply to rediss:// URLs" in result.stderr


def test_database_tls_options_pass_through_database_url(production_env):
    """dj-database-url turns the query string into OPTIONS; Django's PostgreSQL backend hands
    them to psycopg as connection parameters, beside the pool settings (nothing connects)."""
    production_env["DATABASE_URL"] = (
        "postgres://chat:pw@db.internal:5432/chat"
        "?sslmode=verify-full&sslrootcert=/etc/chat/db-ca.pem"
    )

    found = settings_json(
        production_env,
        "{'pool': s.DATABASES['default']['OPTIONS']['pool']['max_size'], 'params': {k: v for "
        "k, v in __import__('django.db').db.connection.get_connection_params().items() "
        "if k.startswith('ssl')}}",
    )

    assert found == {
        "pool": 20,
        "params": {"sslmode": "verify-full", "sslrootcert": "/etc/chat/db-ca.pem"},
    }


# --- config.env -----------------------------------------------------------------------------


def test_str_falls_back_to_the_default_when_unset_or_empty():
    env = Env({"SET": "value", "EMPTY": ""})

    assert env.str("SET", "default") == "value"
    assert env.str("EMPTY", "default") == "default"
    assert env.str("UNSET", "default") == "default"
    assert env.str("UNSET") == ""


def test_required_returns_the_stripped_value():
    assert Env({"NAME": "  value "}).required("NAME", "why") == "value"


@pytest.mark.parametrize("environ", [{}, {"NAME": ""}, {"NAME": " \t "}])
def test_required_names_the_missing_variable_and_why(environ):
    with pytest.raises(ImproperlyConfigured, match="Set the NAME environment variable: because"):
        Env(environ).required("NAME", "because")


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", "on", " yes "])
def test_bool_true_words(raw):
    assert Env({"FLAG": raw}).bool("FLAG", default=False) is True


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "off", ""])
def test_bool_false_words(raw):
    assert Env({"FLAG": raw}).bool("FLAG", default=True) is False


def test_bool_unset_is_the_default():
    assert Env({}).bool("FLAG", default=True) is True
    assert Env({}).bool("FLAG", default=False) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "truthy", "y e s"])
def test_bool_refuses_other_words_naming_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match="FLAG must be true or false") as excinfo:
        Env({"FLAG": raw}).bool("FLAG", default=False)
    assert repr(raw) in str(excinfo.value)


def test_int_parses_and_defaults():
    assert Env({"N": "42"}).int("N", 7) == 42
    assert Env({"N": " -3 "}).int("N", 7) == -3
    assert Env({"N": ""}).int("N", 7) == 7
    assert Env({"N": "  "}).int("N", 7) == 7
    assert Env({}).int("N", 7) == 7


@pytest.mark.parametrize("raw", ["ten", "1.5", "12abc", "0x10"])
def test_int_refuses_non_integers_naming_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match="N must be an integer") as excinfo:
        Env({"N": raw}).int("N", 7)
    assert repr(raw) in str(excinfo.value)


def test_list_splits_on_commas_and_drops_blanks():
    assert Env({"L": " a, b ,,c , "}).list("L") == ["a", "b", "c"]
    assert Env({"L": ""}).list("L", ["x"]) == []
    assert Env({}).list("L") == []


def test_list_default_is_a_copy():
    default = ["x"]

    result = Env({}).list("L", default)
    result.append("y")

    assert default == ["x"]


def test_env_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("CHAT_TEST_ONLY_VARIABLE", "from-the-process")

    assert Env().str("CHAT_TEST_ONLY_VARIABLE") == "from-the-process"


_SENTRY_STATE = (
    "import django, json, sentry_sdk; django.setup(); client = sentry_sdk.get_client(); "
    "print(json.dumps({'active': client.is_active(), "
    "'pii': client.options.get('send_default_pii'), "
    "'locals': client.options.get('include_local_variables'), "
    "'before_send': getattr(client.options.get('before_send'), '__name__', None)}))"
)


def test_error_tracking_is_off_without_a_dsn_and_on_with_one(production_env):
    off = run_python(["-c", _SENTRY_STATE], production_env)
    production_env["SENTRY_DSN"] = "http://public@127.0.0.1:9/1"
    on = run_python(["-c", _SENTRY_STATE], production_env)

    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout.splitlines()[-1])["active"] is False
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout.splitlines()[-1]) == {
        "active": True,
        "pii": False,
        "locals": False,
        "before_send": "scrub_event",
    }


_MAIL_HANDLERS = (
    "import django, json, logging; from django.utils.log import AdminEmailHandler; "
    "django.setup(); "
    "print(json.dumps([name for name in ('', 'django', 'django.request', 'django.security', "
    "'realtime.security') for h in logging.getLogger(name).handlers "
    "if isinstance(h, AdminEmailHandler)]))"
)


def test_no_error_email_carries_a_request_past_the_log_filters(production_env):
    production_env["ADMINS"] = "ops@example.com"
    result = run_python(["-c", _MAIL_HANDLERS], production_env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_mail_settings_come_from_the_environment(production_env):
    production_env.update(
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="587",
        EMAIL_USE_TLS="true",
        DEFAULT_FROM_EMAIL="chat@example.com",
    )
    script = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.DEFAULT_FROM_EMAIL, "
        "s.SERVER_EMAIL]))"
    )
    result = run_python(["-c", script], production_env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [
        "smtp.example.com",
        587,
        True,
        "chat@example.com",
        "chat@example.com",
    ]
