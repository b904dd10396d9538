"""Sign in and out, one's own account, API keys and MFA enrolment: /v1/auth/*."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request

from xnai.api.deps import AuthDep
from xnai.api.openapi import ENROLLING, PUBLIC, SIGNED_IN, errors
from xnai.api.schemas import LoginRequest, MfaCode, MfaEnrol, NewApiKey, PasswordChange
from xnai.api.security import (
    EnrollingPrincipalDep,
    PrincipalDep,
    authenticated,
    client_ip,
    count_violation,
    enrolling,
    public,
)
from xnai.domain.errors import AccountLockedError, AuthenticationError, MfaRequiredError
from xnai.domain.identity import ApiKeyRecord
from xnai.services.auth import UserSummary

router = APIRouter(tags=["auth"])


def user_json(u: UserSummary) -> dict[str, Any]:
    """A user as JSON (never a secret)."""
    return u.as_dict()


def key_json(k: ApiKeyRecord) -> dict[str, Any]:
    """An API key's metadata (the key itself is shown once, at creation)."""
    return {
        "key_id": k.key_id,
        "name": k.name,
        "created_at": k.created_at.isoformat(),
        "expires_at": _iso(k.expires_at),
        "last_used_at": _iso(k.last_used_at),
        "revoked_at": _iso(k.revoked_at),
    }


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


@router.post("/v1/auth/login", dependencies=[public()], responses={**PUBLIC, **errors(401, 429)})
def login(body: LoginRequest, request: Request, auth: AuthDep) -> dict[str, Any]:
    """Exchange a username, password (and one-time code) for a session token."""
    try:
        r = auth.login(body.username, body.password, body.totp_code, source_ip=client_ip(request))
    except AccountLockedError:
        count_violation(request, "locked")
        raise
    except AuthenticationError as exc:
        # A missing one-time code is the first step of an MFA login, not a failure.
        if not (isinstance(exc, MfaRequiredError) and body.totp_code is None):
            count_violation(request, "login_failed")
        raise
    return {
        "token": r.token,
        "token_type": "bearer",
        "expires_at": auth.session_expires_at(r.session).isoformat(),
        "idle_timeout": auth.policy.session_idle_timeout,
        "mfa_enrolment_required": r.mfa_enrolment_required,
        "user": {"user_id": r.user.user_id, "username": r.user.username, "role": r.user.role.value},
    }


@router.post("/v1/auth/logout", dependencies=[enrolling()], responses=ENROLLING)
def logout(principal: EnrollingPrincipalDep, request: Request, auth: AuthDep) -> dict[str, Any]:
    """End the current session."""
    auth.logout(principal, source_ip=client_ip(request))
    return {"logged_out": True}


@router.get("/v1/auth/me", dependencies=[enrolling()], responses={**ENROLLING, **errors(404)})
def me(principal: EnrollingPrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """The signed-in account, how it signed in and what it may do."""
    summary = auth.me(principal)
    return {
        **user_json(summary),
        "via": principal.via,
        "permissions": sorted(p.value for p in principal.permissions),
        "mfa_enrolment_required": auth.policy.mfa_required and not summary.mfa_enrolled,
    }


@router.post(
    "/v1/auth/password", dependencies=[authenticated()], responses={**SIGNED_IN, **errors(429)}
)
def change_password(
    body: PasswordChange, principal: PrincipalDep, request: Request, auth: AuthDep
) -> dict[str, Any]:
    """Change one's own password; every session and API key of the account ends."""
    auth.change_password(
        principal, body.current_password, body.new_password, source_ip=client_ip(request)
    )
    return {"changed": True, "credentials_revoked": True}


@router.post(
    "/v1/auth/mfa/enrol",
    dependencies=[enrolling()],
    responses={**ENROLLING, **errors(403, 409, 429)},
)
def mfa_enrol(
    body: MfaEnrol, request: Request, principal: EnrollingPrincipalDep, auth: AuthDep
) -> dict[str, Any]:
    """Start TOTP enrolment (the account's password is needed again): a secret and an
    otpauth:// URI for an authenticator app."""
    secret, uri = auth.begin_mfa_enrolment(principal, body.password, source_ip=client_ip(request))
    return {"secret": secret, "otpauth_uri": uri}


@router.post(
    "/v1/auth/mfa/confirm", dependencies=[enrolling()], responses={**ENROLLING, **errors(409)}
)
def mfa_confirm(body: MfaCode, principal: EnrollingPrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """Finish enrolment with a code from the app."""
    auth.confirm_mfa_enrolment(principal, body.code)
    return {"mfa_enrolled": True}


@router.get("/v1/auth/api-keys", dependencies=[authenticated()], responses=SIGNED_IN)
def list_api_keys(principal: PrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """One's own API keys (metadata only)."""
    return {"api_keys": [key_json(k) for k in auth.api_keys(principal)]}


@router.post(
    "/v1/auth/api-keys", status_code=201, dependencies=[authenticated()], responses=SIGNED_IN
)
def create_api_key(body: NewApiKey, principal: PrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """A new API key for programs; the key is in this response only."""
    expires = None
    if body.expires_in_days is not None:
        expires = auth.clock() + timedelta(days=body.expires_in_days)
    record, key = auth.create_api_key(principal, body.name, expires)
    return {"api_key": key, **key_json(record)}


@router.delete(
    "/v1/auth/api-keys/{key_id}",
    dependencies=[authenticated()],
    responses={**SIGNED_IN, **errors(404)},
)
def revoke_api_key(key_id: str, principal: PrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """Revoke one of one's own API keys."""
    auth.revoke_api_key(principal, key_id)
    return {"revoked": key_id}
