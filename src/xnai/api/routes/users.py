"""User management for admins: /v1/users (the manage:users permission)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from xnai.api.deps import AuthDep
from xnai.api.openapi import SIGNED_IN, errors
from xnai.api.routes.auth import user_json
from xnai.api.schemas import NewUser, PasswordReset, RoleChange
from xnai.api.security import PrincipalDep, require
from xnai.domain.rbac import Permission, Role

router = APIRouter(tags=["users"], responses=SIGNED_IN)
MANAGE = Permission.MANAGE_USERS


@router.get("/v1/users", dependencies=[require(MANAGE)])
def list_users(principal: PrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """Every user with role, state and lockout."""
    return {"users": [user_json(u) for u in auth.users(principal)]}


@router.post("/v1/users", status_code=201, dependencies=[require(MANAGE)], responses=errors(409))
def create_user(body: NewUser, principal: PrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """Create a user; a generated password is in this response only."""
    user, generated = auth.create_user(principal, body.username, Role(body.role), body.password)
    return {"user": user_json(auth.describe(principal, user.user_id)), "password": generated}


@router.get("/v1/users/{username}", dependencies=[require(MANAGE)], responses=errors(404))
def get_user(username: str, principal: PrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """One user."""
    return {"user": user_json(auth.describe(principal, username))}


@router.put("/v1/users/{username}/role", dependencies=[require(MANAGE)], responses=errors(404, 409))
def set_role(
    username: str, body: RoleChange, principal: PrincipalDep, auth: AuthDep
) -> dict[str, Any]:
    """Change another user's role (``system`` only from the command line)."""
    user = auth.set_role(principal, username, Role(body.role))
    return {"user": user_json(auth.describe(principal, user.user_id))}


@router.post(
    "/v1/users/{username}/disable", dependencies=[require(MANAGE)], responses=errors(404, 409)
)
def disable_user(username: str, principal: PrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """Disable a user and revoke all their sessions and API keys."""
    user = auth.set_enabled(principal, username, False)
    return {"user": user_json(auth.describe(principal, user.user_id))}


@router.post("/v1/users/{username}/enable", dependencies=[require(MANAGE)], responses=errors(404))
def enable_user(username: str, principal: PrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """Enable a disabled user."""
    user = auth.set_enabled(principal, username, True)
    return {"user": user_json(auth.describe(principal, user.user_id))}


@router.post(
    "/v1/users/{username}/reset-password", dependencies=[require(MANAGE)], responses=errors(404)
)
def reset_password(
    username: str, principal: PrincipalDep, auth: AuthDep, body: PasswordReset | None = None
) -> dict[str, Any]:
    """Set a new password (random when none is given); revokes credentials and unlocks."""
    generated = auth.reset_password(principal, username, body.password if body else None)
    return {"username": username.strip().lower(), "password": generated}


@router.post("/v1/users/{username}/unlock", dependencies=[require(MANAGE)], responses=errors(404))
def unlock_user(username: str, principal: PrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """Lift a lockout after failed logins."""
    auth.unlock(principal, username)
    return {"user": user_json(auth.describe(principal, username))}


@router.delete("/v1/users/{username}/mfa", dependencies=[require(MANAGE)], responses=errors(404))
def reset_mfa(username: str, principal: PrincipalDep, auth: AuthDep) -> dict[str, Any]:
    """Remove a user's MFA enrolment (a lost device); they enrol again."""
    auth.reset_mfa(principal, username)
    return {"user": user_json(auth.describe(principal, username))}
