"""The accounts REST API under /api/auth/: each endpoint's success and its failures."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import jwt
import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

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
from tests.conftest import PASSWORD, token_pair

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


def test_register_creates_an_active_user_that_can_log_in(api_client):
    response = register(api_client)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "username", "email", "date_joined"}
    assert body["username"] == "newcomer"
    assert body["email"] == "newcomer@example.com"
    created = User.objects.get(pk=body["id"])
    assert created.is_active
    assert created.check_password(STRONG_PASSWORD)
    assert STRONG_PASSWORD not in response.content.decode()
    assert login(api_client, "newcomer", STRONG_PASSWORD).status_code == 200


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


def test_register_refuses_an_email_taken_in_another_case(api_client, make_user):
    make_user("alice", email="alice@example.com")

    response = register(api_client, email="Alice@EXAMPLE.com")

    error = assert_error(response, 400, "validation_failed", fields=True)
    assert set(error["fields"]) == {"email"}
    assert field_codes(error, "email") == ["unique"]
    assert User.objects.count() == 1


def test_register_needs_no_token_and_ignores_a_bad_one(api_client):
    response = api_client.post(
        REGISTER,
        {"username": "newcomer", "email": "newcomer@example.com", "password": STRONG_PASSWORD},
        format="json",
        HTTP_AUTHORIZATION="Bearer not-a-token",
    )

    assert response.status_code == 201


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

    reused = api_client.post(REFRESH, {"refresh": old_refresh}, format="json")
    error = assert_error(reused, 401, "token_not_valid")
    assert error["message"] == "Token is blacklisted"

    # The rotated token is the one that keeps working.
    again = api_client.post(REFRESH, {"refresh": body["refresh"]}, format="json")
    assert again.status_code == 200


def test_refresh_refuses_an_access_token(api_client, user):
    access, _ = token_pair(user)

    response = api_client.post(REFRESH, {"refresh": access}, format="json")

    error = assert_error(response, 401, "token_not_valid")
    assert error["message"] == "Token has wrong type"


def test_refresh_refuses_garbage(api_client):
    response = api_client.post(REFRESH, {"refresh": "not.a.token"}, format="json")

    assert_error(response, 401, "token_not_valid")


def test_refresh_refuses_an_expired_token(api_client, user):
    refresh = RefreshToken.for_user(user)
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
    token = AccessToken.for_user(user)
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
    twice = api_client.post(LOGOUT, {"refresh": refresh}, format="json")
    assert_error(twice, 401, "token_not_valid")


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
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


def _signature_changed(user):
    header, payload, signature = str(AccessToken.for_user(user)).split(".")
    # A middle character: the last one also carries padding bits a decoder may ignore.
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def _payload_changed(user):
    header, payload, signature = str(AccessToken.for_user(user)).split(".")
    claims = jwt_payload(f"{header}.{payload}.{signature}")
    claims["user_id"] = str(User.objects.create_user("mallory", "m@example.com", PASSWORD).pk)
    return f"{header}.{b64url_json(claims)}.{signature}"


def _alg_none(user):
    claims = jwt_payload(str(AccessToken.for_user(user)))
    return f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{b64url_json(claims)}."


def _resigned(user, *, key=None, **changes):
    claims = jwt_payload(str(AccessToken.for_user(user)))
    claims.update(changes)
    return jwt.encode(claims, key or signing_key(), algorithm="HS256")


def _other_key(user):
    return _resigned(user, key="an-entirely-different-signing-key-0123456789abcdef")


def _wrong_audience(user):
    return _resigned(user, aud="someone-else")


def _wrong_issuer(user):
    return _resigned(user, iss="someone-else")


def _no_audience(user):
    claims = jwt_payload(str(AccessToken.for_user(user)))
    del claims["aud"]
    return jwt.encode(claims, signing_key(), algorithm="HS256")


def _hs512(user):
    claims = jwt_payload(str(AccessToken.for_user(user)))
    return jwt.encode(claims, signing_key(), algorithm="HS512")


def _refresh_as_access(user):
    return str(RefreshToken.for_user(user))


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
    header, payload, signature = str(AccessToken.for_user(user)).split(".")
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
    assert error["message"] == "The user's password has been changed."
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
