"""What the OpenAPI document says about errors and policies: the error body, the statuses a
route can answer (``responses=`` of routes and routers), and the configured password rule.

Every error is ``{"error": "..."}`` (api/errors.py); each status below is documented with
that body, so a client generated from ``/openapi.json`` knows every answer it can get.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ValidationIssue(BaseModel):
    """One reason a request was refused by validation."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="what went wrong, for people")
    detail: list[ValidationIssue] | None = Field(
        default=None, description="422 of a request that fails validation: each reason"
    )
    retry_after: int | None = Field(
        default=None, description="429 and 503: seconds to wait (also the Retry-After header)"
    )
    mfa_required: bool | None = Field(
        default=None, description="401 at login: the password was right, send totp_code"
    )
    mfa_enrolment_required: bool | None = Field(
        default=None, description="403: the account must enrol in MFA first"
    )


class Readiness(BaseModel):
    """GET /ready: the verdict and each component's status."""

    status: str = Field(description="ready, degraded or starting")
    components: dict[str, dict[str, Any]]


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer"},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"description": "the scheme to send: Bearer", "schema": {"type": "string"}}
}
_ALLOW = {"Allow": {"description": "the methods the path serves", "schema": {"type": "string"}}}

STATUSES: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("a body that cannot be read, or a request the service cannot act on", {}),
    401: ("no valid credentials, or a wrong password or one-time code", _WWW_AUTHENTICATE),
    403: (
        "the role lacks the permission, the account must enrol in MFA first, or the "
        "resource may be read but not changed",
        {},
    ),
    404: ("no such resource, or one the caller may not see", {}),
    405: ("the path does not serve this method", _ALLOW),
    409: ("the request conflicts with the current state", {}),
    413: ("the request body is larger than server.max_body_mb", {}),
    415: ("an unsupported file type", {}),
    422: ("the request fails validation, or a value the service refuses", {}),
    429: ("too many failed logins, or too many questions waiting for the model", _RETRY_AFTER),
    502: ("the language model failed while generating", {}),
    503: (
        "the database, audit log or language model is unavailable right now, or the "
        "circuit breaker is open",
        _RETRY_AFTER,
    ),
    507: ("the disk holding the data directory is full; nothing was changed", {}),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route or router: each status with the error body."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        description, headers = STATUSES[code]
        entry: dict[str, Any] = {"model": ErrorBody, "description": description}
        if headers:
            entry["headers"] = headers
        out[code] = entry
    return out


# Statuses by access rule (api/security.py): what any route with that rule can answer.
# Every route reads the database (503 while it cannot be reached or the audit log cannot
# be written), refuses invalid requests (422) and bodies that cannot be read (400) or are
# over the limit (413), and may write (a session, an audit event): 507 on a full disk.
PUBLIC = errors(400, 413, 422, 503, 507)
ENROLLING = errors(400, 401, 413, 422, 503, 507)
SIGNED_IN = errors(400, 401, 403, 413, 422, 503, 507)

EVENT_STREAM = {
    "text/event-stream": {
        "schema": {"type": "string"},
        "description": 'server-sent events, when the request has "stream": true',
    }
}

NEW_PASSWORD = "x-new-password"
"""Marks a field holding a new password: its ``minLength`` is the configured minimum."""


def publish_password_policy(schema: dict[str, Any], min_length: int) -> dict[str, Any]:
    """Set the configured minimum length (``enterprise.security.password_min_length``) on
    every new-password field of an OpenAPI document."""
    for model in schema.get("components", {}).get("schemas", {}).values():
        for prop in model.get("properties", {}).values():
            if prop.get(NEW_PASSWORD):
                for option in [prop, *prop.get("anyOf", [])]:
                    if "minLength" in option:
                        option["minLength"] = min_length
    return schema
