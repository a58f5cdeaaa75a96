"""What the OpenAPI schema of the REST API (drf-spectacular) shares across endpoints.

- The error envelope of config.api as components (`ErrorEnvelope`, `Error`, `FieldError`).
- `AutoSchema` (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS): drf-spectacular's, plus the error
  answers every endpoint can give, derived from the view itself: 400/413/415 where there is a
  body, 400 where there are query parameters, 401 where a token is required, 404 where the
  path names something, 429 where a throttle applies, 500 and 503 everywhere. A view states
  its own 4xx (403 `quota_exceeded`, 401 `invalid_credentials`...) with `error_response`,
  which these never replace.
- The `bearerAuth` security scheme's mapping to accounts.authentication (the scheme itself
  is in settings.SPECTACULAR_SETTINGS).
- `describe_healthz`, a postprocessing hook adding /healthz (a plain Django view, which
  drf-spectacular does not see).

docs/openapi.yaml is the generated schema (`make openapi`); tests/config/test_openapi.py fails
until it is regenerated after a change here or in a view.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import permissions, serializers

# The command that rewrites docs/openapi.yaml; named by the test that compares them.
REGENERATE = "make openapi  (python manage.py spectacular --file docs/openapi.yaml)"

ERROR_CODES_DESCRIPTION = (
    "Stable, machine-readable code (docs/protocol.md, REST API): `malformed_json`, "
    "`validation_failed`, `unsupported_media_type`, `not_authenticated`, "
    "`invalid_credentials`, `token_not_valid`, `permission_denied`, `quota_exceeded`, "
    "`not_found`, `method_not_allowed`, `too_large`, `throttled`, `unavailable`, `internal`."
)


@extend_schema_serializer(component_name="FieldError")
class FieldErrorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="The rule the value broke: `required`, `blank`, `invalid`, `unique`, "
        "`max_length`, `min_value`..."
    )
    message = serializers.CharField(help_text="Human-readable text; may change.")


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=ERROR_CODES_DESCRIPTION)
    message = serializers.CharField(help_text="Human-readable text; may change.")
    # DRF's metaclass moves declared fields off the class: this does not shadow `.fields`.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=FieldErrorSerializer()),
        required=False,
        help_text="Only with `validation_failed`: each invalid field (or `non_field_errors`) "
        "and what is wrong with it.",
    )
    retry_after = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Only with `throttled`: seconds to wait, as in the Retry-After header.",
    )


@extend_schema_serializer(component_name="ErrorEnvelope")
class ErrorEnvelopeSerializer(serializers.Serializer):
    """The body of every 4xx and 5xx answer under /api/ (config.api)."""

    error = ErrorSerializer()


def error_response(description: str) -> OpenApiResponse:
    """An error answer of one view, for `@extend_schema(responses={403: error_response(...)})`."""
    return OpenApiResponse(response=ErrorEnvelopeSerializer, description=description)


_BODY_ERRORS = {
    400: "`malformed_json` (the body is not JSON) or `validation_failed` (`fields` names "
    "each invalid field).",
    413: "`too_large`: the body is over 256 KiB.",
    415: "`unsupported_media_type`: the body is not `application/json`.",
}
_QUERY_ERRORS = {400: "`validation_failed`: a query parameter is invalid (`fields`)."}
_AUTH_ERRORS = {
    401: "`not_authenticated` (no access token) or `token_not_valid` (expired, tampered, "
    "wrong type, session ended, password changed since issue).",
}
_PATH_ERRORS = {404: "`not_found`: what the path names does not exist."}
_THROTTLE_ERRORS = {429: "`throttled`: retry after the `Retry-After` delay (`retry_after`)."}
_SERVER_ERRORS = {
    500: "`internal`: an unexpected error; it is logged.",
    503: "`unavailable`: Redis or the database does not answer; retry later.",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, with the error answers the view's setup implies."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        envelope = self.resolve_serializer(ErrorEnvelopeSerializer, "response").ref
        responses = operation["responses"]
        for status, description in self._implied_errors(operation).items():
            responses.setdefault(
                str(status),
                {
                    "content": {"application/json": {"schema": envelope}},
                    "description": description,
                },
            )
        if "429" in responses:
            responses["429"].setdefault("headers", _RETRY_AFTER)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _implied_errors(self, operation: dict[str, Any]) -> dict[int, str]:
        errors: dict[int, str] = {}
        if "requestBody" in operation:
            errors.update(_BODY_ERRORS)
        elif any(p.get("in") == "query" for p in operation.get("parameters", ())):
            errors.update(_QUERY_ERRORS)
        if self._requires_token():
            errors.update(_AUTH_ERRORS)
        if any(p.get("in") == "path" for p in operation.get("parameters", ())):
            errors.update(_PATH_ERRORS)
        if self.view.get_throttles():
            errors.update(_THROTTLE_ERRORS)
        errors.update(_SERVER_ERRORS)
        return errors

    def _requires_token(self) -> bool:
        if not self.view.get_authenticators():
            return False
        return not any(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions())


class SessionJWTScheme(SimpleJWTScheme):
    """accounts.authentication.SessionJWTAuthentication is SimpleJWT's Bearer scheme (plus a
    session check); drf-spectacular matches extensions by exact class."""

    target_class = "accounts.authentication.SessionJWTAuthentication"
    name = "bearerAuth"


_HEALTH = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {
            "type": "object",
            "description": "`database` always; `redis` when REDIS_URL is set; "
            "`channel_layer` when the channel layer has Redis servers of its own "
            "(CHANNEL_LAYER_REDIS_URLS, REDIS_SENTINELS).",
            "additionalProperties": {"type": "string", "enum": ["ok", "unavailable"]},
        },
    },
    "required": ["status", "checks"],
}


def describe_healthz(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: /healthz (config.health), which is not a DRF view."""
    media = {"application/json": {"schema": _HEALTH}}
    result["paths"]["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "Health of this process's backing services",
            "description": "For load balancers and systemd; probe each process directly. "
            "Not under /api/: errors here are not the envelope.",
            "tags": ["health"],
            "security": [{}],
            "responses": {
                "200": {"content": media, "description": "Every backing service answers."},
                "503": {
                    "content": media,
                    "description": "A backing service does not answer; `checks` names it.",
                },
            },
        }
    }
    return result
