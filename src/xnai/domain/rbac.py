"""Roles, permissions and the principal a request runs as (the seed's role table)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Permission(StrEnum):
    """What a principal may do."""

    READ_DOCUMENTS = "read:documents"
    WRITE_DOCUMENTS = "write:documents"
    DELETE_DOCUMENTS = "delete:documents"
    READ_METRICS = "read:metrics"
    EXECUTE_QUERIES = "execute:queries"
    MANAGE_USERS = "manage:users"
    ADMIN_SYSTEM = "admin:system"
    CONFIGURE_COMPONENTS = "configure:components"


class Role(StrEnum):
    """The four roles; each has exactly the seed's permissions."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"
    SYSTEM = "system"


P = Permission

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({P.READ_DOCUMENTS, P.READ_METRICS, P.EXECUTE_QUERIES}),
    Role.EDITOR: frozenset(
        {P.READ_DOCUMENTS, P.WRITE_DOCUMENTS, P.READ_METRICS, P.EXECUTE_QUERIES}
    ),
    Role.ADMIN: frozenset(
        {
            P.READ_DOCUMENTS,
            P.WRITE_DOCUMENTS,
            P.DELETE_DOCUMENTS,
            P.ADMIN_SYSTEM,
            P.READ_METRICS,
            P.MANAGE_USERS,
            P.EXECUTE_QUERIES,
            P.CONFIGURE_COMPONENTS,
        }
    ),
    Role.SYSTEM: frozenset({P.READ_METRICS, P.CONFIGURE_COMPONENTS, P.EXECUTE_QUERIES}),
}


def permissions_of(role: Role) -> frozenset[Permission]:
    """The permissions a role grants."""
    return ROLE_PERMISSIONS[role]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request or command runs as.

    ``via`` says how the principal was authenticated: ``session``, ``api_key`` or ``local``
    (the command line, run by whoever can read the data directory).
    """

    user_id: str
    username: str
    role: Role
    via: str = "session"
    credential_id: str | None = None  # the session or API key id

    @property
    def permissions(self) -> frozenset[Permission]:
        """What this principal may do."""
        return ROLE_PERMISSIONS[self.role]

    def can(self, permission: Permission) -> bool:
        """Whether the principal holds ``permission``."""
        return permission in ROLE_PERMISSIONS[self.role]

    @property
    def is_admin(self) -> bool:
        """Admins read every collection and manage everything."""
        return self.role is Role.ADMIN


LOCAL_ADMIN = Principal(user_id="local", username="local", role=Role.ADMIN, via="local")
