"""The accounts REST API under /api/auth/: each endpoint's success and its failures."""

from __future__ import annotations

import itertools
import json
import logging
from datetime import datetime, timedelta

import jwt
import pytest
from django.contrib.auth.hashers import get_hasher
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.models import User
from tests.accounts.helpers import (
    assert_error,
    b64url,
    b64url_decode,
    b64url_json,
    field_codes,
    jwt_payload,
    signing_key,
)
from tests.conftest import PASSWORD, session_token, token_pair

REGISTER = "/api/auth/register/"
LOGIN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"
VERIFY = "/api/auth/token/verify/"
LOGOUT = "/api/auth/logout/"
ME = "/api/auth/me/"

pytestmark = pytest.mark.django_db

STRONG_PASSWORD = "violet-kettle-orbit-1987"


def register(client, **overrides):
    body = {"username": "newcomer", "email": "newcomer@example.com", "password": STRONG_PASSWORD}
    body.update(overrides)
    return client.post(REGISTER, body, format="json")


def login(client, username="alice", password=PASSWORD):
    return client.post(LOGIN, {"username": username, "password": password}, format="json")


def get_me(client, token: str):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")


# --- register -------------------------------------------------------------------------------


def test_register_creates_an_active_user_that_can_log_in(api_client, mailoutbox):
    response = register(api_client)

    assert response.status_code == 201
    # No id or timestamps: nothing a taken email (answered alike) could not also return.
    assert response.json() == {"username": "newcomer", "email": "newcomer@example.com"}
    created = User.objects.get(username="newcomer")
    assert created.is_active
    assert created.check_password(STRONG_PASSWORD)
    assert STRONG_PASSWORD not in response.content.decode()
    assert login(api_client, "newcomer", STRONG_PASSWORD).status_code == 200
    # One email on this path too, so sending it does not tell the two paths apart.
    assert [message.to for message in mailoutbox] == [["newcomer@example.com"]]
    assert "newcomer" in mailoutbox[0].body
    assert STRONG_PASSWORD not in mailoutbox[0].body


def test_register_refuses_malformed_json(api_client):
    response = api_client.post(
        REGISTER, data='{"username": "newcomer",', content_type="application/json"
    )

    assert_error(response, 400, "malformed_json")
    assert not User.objects.exists()


def test_register_refuses_a_form_encoded_body(api_client):
    response = api_client.post(
        REGISTER,
        data=f"username=newcomer&email=newcomer%40example.com&password={STRONG_PASSWORD}",
        content_type="application/x-www-form-urlencoded",
    )

    assert_error(response, 415, "unsupported_media_type")
    assert not User.objects.exists()


def test_register_names_every_missing_field(api_client):
    response = api_client.post(REGISTER, {}, format="json")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert set(error["fields"]) == {"username", "email", "password"}
    for field in ("username", "email", "password"):
        assert field_codes(error, field) == ["required"]


def test_register_refuses_a_body_that_is_not_an_object(api_client):
    response = api_client.post(REGISTER, data="[1, 2]", content_type="application/json")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert field_codes(error, "non_field_errors") == ["invalid"]


def test_register_refuses_an_invalid_email(api_client):
    response = register(api_client, email="not-an-address")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert set(error["fields"]) == {"email"}
    assert field_codes(error, "email") == ["invalid"]
    assert not User.objects.exists()


def test_register_refuses_an_invalid_username(api_client):
    response = register(api_client, username="no spaces allowed")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert field_codes(error, "username") == ["invalid"]


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [
        ("newcomer", "Xq7#pl", "password_too_short"),
        ("newcomer", "password123", "password_too_common"),
        ("newcomer", "73019462850193", "password_entirely_numeric"),
        ("maximiliana", "maximiliana7", "password_too_similar"),
    ],
    ids=["too-short", "too-common", "entirely-numeric", "similar-to-username"],
)
def test_register_refuses_a_weak_password(api_client, username, password, code):
    response = register(api_client, username=username, password=password)

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert set(error["fields"]) == {"password"}
    assert field_codes(error, "password") == [code]
    assert all(item["message"] for item in error["fields"]["password"])
    assert not User.objects.filter(username=username).exists()


def test_register_refuses_a_password_similar_to_the_email(api_client):
    response = register(api_client, email="quintessential@example.com", password="quintessential1")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert field_codes(error, "password") == ["password_too_similar"]


def test_register_refuses_a_username_taken_in_another_case(api_client, make_user):
    make_user("alice")

    response = register(api_client, username="ALICE")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert set(error["fields"]) == {"username"}
    assert field_codes(error, "username") == ["unique"]
    assert User.objects.count() == 1


def test_register_needs_no_token_and_ignores_a_bad_one(api_client):
    response = api_client.post(
        REGISTER,
        {"username": "newcomer", "email": "newcomer@example.com", "password": STRONG_PASSWORD},
        format="json",
        HTTP_AUTHORIZATION="Bearer not-a-token",
    )

    assert response.status_code == 201


# --- register: a taken email tells nobody the address has an account ------------------------


def test_register_answers_a_taken_email_exactly_like_a_new_one(api_client, make_user, mailoutbox):
    alice = make_user("alice", email="alice@example.com")

    new = register(api_client, username="newcomer", email="fresh@example.com")
    taken = register(api_client, username="intruder", email="Alice@EXAMPLE.com")

    assert (new.status_code, taken.status_code) == (201, 201)
    assert new["Content-Type"] == taken["Content-Type"] == "application/json"
    assert new.json() == {"username": "newcomer", "email": "fresh@example.com"}
    # The address as it was sent (domain lowercased, as Django stores it), not the owner's.
    assert taken.json() == {"username": "intruder", "email": "Alice@example.com"}
    # No second account, and the first is untouched.
    assert set(User.objects.values_list("username", flat=True)) == {"alice", "newcomer"}
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert login(api_client, "intruder", STRONG_PASSWORD).status_code == 401
    # The address's owner hears of it, at the address on record, named by their username.
    welcome, notice = mailoutbox
    assert welcome.to == ["fresh@example.com"]
    assert notice.to == ["alice@example.com"]
    assert "alice" in notice.body
    assert "intruder" not in notice.body
    assert STRONG_PASSWORD not in notice.body


def test_register_hashes_the_password_for_a_taken_email_too(api_client, make_user, monkeypatch):
    make_user("alice", email="alice@example.com")
    hashed = []
    hasher = type(get_hasher())
    encode = hasher.encode

    def counting_encode(self, password, *args, **kwargs):
        hashed.append(password)
        return encode(self, password, *args, **kwargs)

    monkeypatch.setattr(hasher, "encode", counting_encode)

    assert register(api_client, username="newcomer", email="fresh@example.com").status_code == 201
    assert register(api_client, username="intruder", email="alice@example.com").status_code == 201

    # Hashing is the slow part of a sign-up: skipping it for a taken email would tell by time.
    assert hashed == [STRONG_PASSWORD, STRONG_PASSWORD]


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"password": "password123"}, "password", "password_too_common"),
        ({"username": "alice"}, "username", "unique"),
        ({"username": "no spaces allowed"}, "username", "invalid"),
    ],
    ids=["weak-password", "taken-username", "invalid-username"],
)
def test_register_refuses_bad_input_alike_for_a_taken_and_a_new_email(
    api_client, make_user, mailoutbox, overrides, field, code
):
    make_user("alice", email="alice@example.com")

    new = register(api_client, email="fresh@example.com", **overrides)
    taken = register(api_client, email="alice@example.com", **overrides)

    error = assert_error(new, 400, "validation_failed", fields=True)
    assert set(error["fields"]) == {field}
    assert field_codes(error, field) == [code]
    assert taken.json() == new.json()
    assert User.objects.count() == 1
    assert mailoutbox == []


def test_register_with_a_taken_email_is_logged_without_the_password(api_client, make_user, caplog):
    alice = make_user("alice", email="alice@example.com")
    raw = _RawMessages()
    logger = logging.getLogger("realtime.security")
    logger.handlers.insert(0, raw)  # ahead of the redaction filter, which would hide a leak
    try:
        response = api_client.post(
            REGISTER,
            {"username": "intruder", "email": "alice@example.com", "password": STRONG_PASSWORD},
            format="json",
            REMOTE_ADDR="203.0.113.9",
        )
    finally:
        logger.removeHandler(raw)

    assert response.status_code == 201
    records = [record for record in caplog.records if record.name == "realtime.security"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert "addr=203.0.113.9" in message
    assert "username='intruder'" in message
    assert f"existing_user={alice.pk}" in message
    assert raw.messages == [message]
    assert STRONG_PASSWORD not in message
    assert "alice@example.com" not in message


def test_register_with_a_new_email_logs_no_security_event(api_client, caplog):
    assert register(api_client).status_code == 201

    assert [r for r in caplog.records if r.name == "realtime.security"] == []


def test_register_answers_alike_when_the_mail_server_fails(
    api_client, make_user, monkeypatch, mailoutbox
):
    make_user("alice", email="alice@example.com")

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr("accounts.services.send_mail", refuse)

    new = register(api_client, username="newcomer", email="fresh@example.com")
    taken = register(api_client, username="intruder", email="alice@example.com")

    assert (new.status_code, taken.status_code) == (201, 201)
    assert User.objects.filter(username="newcomer").exists()


def test_register_losing_a_race_for_the_email_is_answered_like_a_new_email(
    api_client, make_user, monkeypatch, mailoutbox
):
    alice = make_user("alice", email="alice@example.com")
    # The other sign-up commits between this one's checks and its insert: the checks saw no
    # owner, the unique index does.
    monkeypatch.setattr("accounts.services.selectors.user_with_email", _none_first(alice))

    response = register(api_client, username="intruder", email="ALICE@example.com")

    assert response.status_code == 201
    assert response.json() == {"username": "intruder", "email": "ALICE@example.com"}
    assert not User.objects.filter(username="intruder").exists()
    assert [message.to for message in mailoutbox] == [["alice@example.com"]]


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("ALICE", "A user with that username already exists."),
        ("\u0430lice", "A user with a similar username already exists."),
    ],
    ids=["same-ignoring-case", "cyrillic-a"],
)
def test_register_losing_a_race_for_the_username_is_a_field_error(
    api_client, make_user, monkeypatch, mailoutbox, username, message
):
    make_user("alice")
    # Both sign-ups pass every check before either inserts; the unique indexes decide.
    monkeypatch.setattr("accounts.serializers.selectors.user_username_taken", _never)
    monkeypatch.setattr("accounts.serializers.selectors.user_username_lookalike_taken", _never)
    monkeypatch.setattr(User, "_refuse_taken_username", _skip_first(User._refuse_taken_username))

    response = register(api_client, username=username, email="fresh@example.com")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert set(error["fields"]) == {"username"}
    assert error["fields"]["username"] == [{"code": "unique", "message": message}]
    assert User.objects.count() == 1
    assert mailoutbox == []


class _RawMessages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _never(**kwargs):
    return False


def _none_first(then):
    calls = itertools.count()
    return lambda **kwargs: None if next(calls) == 0 else then


def _skip_first(method):
    calls = itertools.count()

    def wrapper(self):
        if next(calls) > 0:
            method(self)

    return wrapper


# --- register: look-alike usernames ---------------------------------------------------------


@pytest.mark.parametrize(
    "username",
    [
        "b\u043eb",  # CYRILLIC SMALL LETTER O
        "b\u03bfb",  # GREEK SMALL LETTER OMICRON
        "\u0412\u041e\u0412",  # CYRILLIC CAPITAL VE, O, VE: reads as "BOB"
        "\uff42\uff4f\uff42",  # FULLWIDTH LATIN SMALL LETTERS
        "\U0001d41b\U0001d428\U0001d41b",  # MATHEMATICAL BOLD SMALL LETTERS
        "\u042cob",  # CYRILLIC CAPITAL LETTER SOFT SIGN, shaped like a b
        "bob\u3164",  # a trailing HANGUL FILLER: invisible, yet a letter to the validator
    ],
    ids=[
        "cyrillic-o",
        "greek-omicron",
        "cyrillic-capitals",
        "fullwidth",
        "math-bold",
        "cyrillic-soft-sign",
        "invisible-filler",
    ],
)
def test_register_refuses_a_username_that_looks_like_a_taken_one(
    api_client, make_user, mailoutbox, username
):
    make_user("bob")

    response = register(api_client, username=username)

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert set(error["fields"]) == {"username"}
    assert error["fields"]["username"] == [
        {"code": "unique", "message": "A user with a similar username already exists."}
    ]
    assert list(User.objects.values_list("username", flat=True)) == ["bob"]
    assert mailoutbox == []


@pytest.mark.parametrize(
    ("taken", "username"),
    [
        ("alice", "AIice"),  # a capital I for the l: reads as "Alice"
        ("lan", "Ian"),  # a capital I reads as an l
        ("ivan", "\u0406van"),  # CYRILLIC CAPITAL BYELORUSSIAN-UKRAINIAN I: reads as "Ivan"
        ("paypal", "\U0001d52d\U0001d4b6\u1eff\U0001d561\U0001d552\u2113"),  # UTS #39's own
    ],
    ids=["capital-i-for-l", "capital-i-is-l", "cyrillic-capital-i", "uts39-example"],
)
def test_register_refuses_look_alikes_across_case(api_client, make_user, taken, username):
    make_user(taken)

    response = register(api_client, username=username)

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert field_codes(error, "username") == ["unique"]


@pytest.mark.parametrize(
    "username",
    ["bobby", "rob", "bo", "b.o.b", "\u0431\u043e\u0440\u0438\u0441", "ian"],
    ids=["longer", "other-letter", "shorter", "dotted", "cyrillic-name", "ian-beside-lan"],
)
def test_register_accepts_a_username_that_only_resembles_taken_ones(
    api_client, make_user, username
):
    make_user("bob")
    make_user("lan")

    response = register(api_client, username=username)

    assert response.status_code == 201, response.content
    assert User.objects.filter(username=username).exists()


# --- login ----------------------------------------------------------------------------------


def test_login_returns_a_working_token_pair(api_client, user):
    assert user.last_login is None

    response = login(api_client)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert jwt_payload(body["access"])["token_type"] == "access"
    assert jwt_payload(body["refresh"])["token_type"] == "refresh"
    assert get_me(api_client, body["access"]).json()["username"] == "alice"
    user.refresh_from_db()
    assert user.last_login is not None


def test_login_refuses_a_wrong_password(api_client, user):
    response = login(api_client, password="not-the-password")

    error = assert_error(response, 401, "invalid_credentials")
    assert "access" not in response.content.decode()
    assert error["message"] == "No active account found with the given credentials"


def test_login_answers_an_unknown_user_exactly_like_a_wrong_password(api_client, user):
    wrong_password = login(api_client, password="not-the-password")
    unknown_user = login(api_client, username="nobody")

    assert_error(unknown_user, 401, "invalid_credentials")
    assert unknown_user.json() == wrong_password.json()


def test_login_refuses_an_inactive_user(api_client, make_user):
    make_user("dormant", is_active=False)

    assert_error(login(api_client, username="dormant"), 401, "invalid_credentials")


def test_login_refuses_malformed_json(api_client, user):
    response = api_client.post(LOGIN, data="{username: alice}", content_type="application/json")

    assert_error(response, 400, "malformed_json")


def test_login_refuses_a_form_encoded_body(api_client, user):
    response = api_client.post(
        LOGIN,
        data=f"username=alice&password={PASSWORD}",
        content_type="application/x-www-form-urlencoded",
    )

    assert_error(response, 415, "unsupported_media_type")


def test_login_names_the_missing_fields(api_client):
    response = api_client.post(LOGIN, {}, format="json")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert set(error["fields"]) == {"username", "password"}
    assert field_codes(error, "username") == ["required"]
    assert field_codes(error, "password") == ["required"]


# --- refresh --------------------------------------------------------------------------------


def test_refresh_rotates_and_blacklists_the_used_token(api_client, user):
    old_refresh = login(api_client).json()["refresh"]

    response = api_client.post(REFRESH, {"refresh": old_refresh}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != old_refresh
    assert get_me(api_client, body["access"]).status_code == 200
    old_jti = jwt_payload(old_refresh)["jti"]
    assert BlacklistedToken.objects.filter(token__jti=old_jti).exists()

    # The rotated token is the one that keeps working...
    again = api_client.post(REFRESH, {"refresh": body["refresh"]}, format="json")
    assert again.status_code == 200

    # ...until a spent one comes back: a replay ends the whole session (reuse detection).
    reused = api_client.post(REFRESH, {"refresh": old_refresh}, format="json")
    error = assert_error(reused, 401, "token_not_valid")
    assert error["message"] == "This refresh token was already used; the session is revoked."
    latest = again.json()
    assert_error(api_client.post(REFRESH, latest, format="json"), 401, "token_not_valid")
    assert_error(get_me(api_client, latest["access"]), 401, "token_not_valid")


def test_refresh_refuses_an_access_token(api_client, user):
    access, _ = token_pair(user)

    response = api_client.post(REFRESH, {"refresh": access}, format="json")

    error = assert_error(response, 401, "token_not_valid")
    assert error["message"] == "Token has wrong type"


def test_refresh_refuses_garbage(api_client):
    response = api_client.post(REFRESH, {"refresh": "not.a.token"}, format="json")

    assert_error(response, 401, "token_not_valid")


def test_refresh_refuses_an_expired_token(api_client, user):
    refresh = session_token(user)
    refresh.set_exp(lifetime=-timedelta(seconds=1))

    response = api_client.post(REFRESH, {"refresh": str(refresh)}, format="json")

    assert_error(response, 401, "token_not_valid")


def test_refresh_names_the_missing_field(api_client):
    response = api_client.post(REFRESH, {}, format="json")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert field_codes(error, "refresh") == ["required"]


def test_refresh_refuses_a_token_issued_before_a_password_change(api_client, user):
    _, refresh = token_pair(user)
    user.set_password("a-brand-new-passphrase-99")
    user.save()

    response = api_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert_error(response, 401, "token_not_valid")


def test_refresh_refuses_a_token_of_a_deleted_user(api_client, user):
    _, refresh = token_pair(user)
    user.delete()

    response = api_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert_error(response, 401, "token_not_valid")


def test_refresh_refuses_a_token_of_a_deactivated_user(api_client, user):
    _, refresh = token_pair(user)
    User.objects.filter(pk=user.pk).update(is_active=False)

    response = api_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert_error(response, 401, "token_not_valid")


# --- verify ---------------------------------------------------------------------------------


def test_verify_accepts_valid_access_and_refresh_tokens(api_client, user):
    access, refresh = token_pair(user)

    for token in (access, refresh):
        response = api_client.post(VERIFY, {"token": token}, format="json")
        assert response.status_code == 200
        assert response.json() == {}


def test_verify_refuses_an_invalid_token(api_client, user):
    access, _ = token_pair(user)
    forged = jwt.encode(jwt_payload(access), "some-other-key-" * 4, algorithm="HS256")

    for token in (forged, "garbage"):
        response = api_client.post(VERIFY, {"token": token}, format="json")
        assert_error(response, 401, "token_not_valid")


def test_verify_refuses_an_expired_token(api_client, user):
    token = session_token(user).access_token
    token.set_exp(lifetime=-timedelta(seconds=1))

    response = api_client.post(VERIFY, {"token": str(token)}, format="json")

    error = assert_error(response, 401, "token_not_valid")
    assert error["message"] == "Token is expired"


def test_verify_refuses_a_blacklisted_refresh_token(api_client, user):
    _, refresh = token_pair(user)
    assert api_client.post(LOGOUT, {"refresh": refresh}, format="json").status_code == 204

    response = api_client.post(VERIFY, {"token": refresh}, format="json")

    error = assert_error(response, 401, "token_not_valid")
    assert error["message"] == "Token is blacklisted"


# --- logout ---------------------------------------------------------------------------------


def test_logout_blacklists_the_refresh_token(api_client, user):
    refresh = login(api_client).json()["refresh"]

    response = api_client.post(LOGOUT, {"refresh": refresh}, format="json")

    assert response.status_code == 204
    assert response.content == b""
    assert BlacklistedToken.objects.filter(token__jti=jwt_payload(refresh)["jti"]).exists()
    after = api_client.post(REFRESH, {"refresh": refresh}, format="json")
    assert_error(after, 401, "token_not_valid")
    # Signing out of an ended session is not an error: the client's goal is reached.
    assert api_client.post(LOGOUT, {"refresh": refresh}, format="json").status_code == 204


def test_logout_refuses_an_access_token(api_client, user):
    access, _ = token_pair(user)

    response = api_client.post(LOGOUT, {"refresh": access}, format="json")

    assert_error(response, 401, "token_not_valid")
    assert not BlacklistedToken.objects.exists()


def test_logout_names_the_missing_field(api_client):
    response = api_client.post(LOGOUT, {}, format="json")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert field_codes(error, "refresh") == ["required"]


def test_logout_leaves_the_users_other_sessions_alone(api_client, user):
    _, first = token_pair(user)
    _, second = token_pair(user)

    assert api_client.post(LOGOUT, {"refresh": first}, format="json").status_code == 204

    assert api_client.post(REFRESH, {"refresh": second}, format="json").status_code == 200


# --- me -------------------------------------------------------------------------------------


def test_me_returns_the_signed_in_user(auth_client, user):
    response = auth_client.get(ME)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "username", "email", "date_joined"}
    assert (body["id"], body["username"], body["email"]) == (user.pk, "alice", "alice@example.com")
    assert datetime.fromisoformat(body["date_joined"]) == user.date_joined


def test_me_without_a_token_is_unauthenticated(api_client):
    response = api_client.get(ME)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_me_with_another_scheme_is_unauthenticated(api_client, user):
    access, _ = token_pair(user)

    response = api_client.get(ME, HTTP_AUTHORIZATION=f"Token {access}")

    assert_error(response, 401, "not_authenticated")


def test_me_refuses_other_methods(auth_client):
    response = auth_client.post(ME, {}, format="json")

    assert_error(response, 405, "method_not_allowed")


def _expired(user):
    token = session_token(user).access_token
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


def _signature_changed(user):
    header, payload, signature = str(session_token(user).access_token).split(".")
    # A middle character: the last one also carries padding bits a decoder may ignore.
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def _payload_changed(user):
    header, payload, signature = str(session_token(user).access_token).split(".")
    claims = jwt_payload(f"{header}.{payload}.{signature}")
    claims["user_id"] = str(User.objects.create_user("mallory", "m@example.com", PASSWORD).pk)
    return f"{header}.{b64url_json(claims)}.{signature}"


def _alg_none(user):
    claims = jwt_payload(str(session_token(user).access_token))
    return f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{b64url_json(claims)}."


def _resigned(user, *, key=None, **changes):
    claims = jwt_payload(str(session_token(user).access_token))
    claims.update(changes)
    return jwt.encode(claims, key or signing_key(), algorithm="HS256")


def _other_key(user):
    return _resigned(user, key="an-entirely-different-signing-key-0123456789abcdef")


def _wrong_audience(user):
    return _resigned(user, aud="someone-else")


def _wrong_issuer(user):
    return _resigned(user, iss="someone-else")


def _no_audience(user):
    claims = jwt_payload(str(session_token(user).access_token))
    del claims["aud"]
    return jwt.encode(claims, signing_key(), algorithm="HS256")


def _hs512(user):
    claims = jwt_payload(str(session_token(user).access_token))
    return jwt.encode(claims, signing_key(), algorithm="HS512")


def _refresh_as_access(user):
    return str(session_token(user))


def _garbage(user):
    return f"{b64url(b'nonsense')}.{b64url(b'nonsense')}.{b64url(b'nonsense')}"


@pytest.mark.parametrize(
    "make_token",
    [
        _expired,
        _signature_changed,
        _payload_changed,
        _alg_none,
        _other_key,
        _wrong_audience,
        _wrong_issuer,
        _no_audience,
        _hs512,
        _refresh_as_access,
        _garbage,
    ],
    ids=lambda f: f.__name__.strip("_").replace("_", "-"),
)
def test_me_refuses_a_bad_token(api_client, user, make_token):
    response = get_me(api_client, make_token(user))

    assert_error(response, 401, "token_not_valid")
    assert "alice" not in response.content.decode()


def test_hand_made_tokens_work_when_nothing_is_wrong_with_them(api_client, user):
    # The forgeries above are built the same way; this proves only their one flaw is refused.
    assert get_me(api_client, _resigned(user)).status_code == 200
    header, payload, signature = str(session_token(user).access_token).split(".")
    assert json.loads(b64url_decode(header)) == {"alg": "HS256", "typ": "JWT"}
    assert get_me(api_client, f"{header}.{payload}.{signature}").status_code == 200


def test_expired_token_message_says_so(api_client, user):
    error = assert_error(get_me(api_client, _expired(user)), 401, "token_not_valid")

    assert error["message"] == "Token is expired"


def test_password_change_revokes_existing_access_tokens(api_client, user):
    access, _ = token_pair(user)
    assert get_me(api_client, access).status_code == 200

    user.set_password("a-brand-new-passphrase-99")
    user.save()

    error = assert_error(get_me(api_client, access), 401, "token_not_valid")
    assert error["message"] == "The session has ended: Password changed."
    fresh = login(api_client, password="a-brand-new-passphrase-99").json()["access"]
    assert get_me(api_client, fresh).status_code == 200


def test_me_refuses_the_token_of_a_deactivated_user(api_client, user):
    access, _ = token_pair(user)
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert_error(get_me(api_client, access), 401, "token_not_valid")


def test_me_refuses_the_token_of_a_deleted_user(api_client, user):
    access, _ = token_pair(user)
    user.delete()

    assert_error(get_me(api_client, access), 401, "token_not_valid")
