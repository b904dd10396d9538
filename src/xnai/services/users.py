"""User management: the first admin, roles, enabling, password resets and unlocks.

Only principals with ``manage:users`` may call these; the command line runs as LOCAL_ADMIN,
the only principal that may grant the ``system`` role.
"""

from __future__ import annotations

import secrets

from xnai.domain.errors import ConflictError, InvalidInputError, PermissionDeniedError
from xnai.domain.identity import User
from xnai.domain.rbac import Principal, Role
from xnai.services.identity import (
    USERNAME,
    IdentityCore,
    UserSummary,
    name_key,
    normalise,
    random_password,
)


class UserAdmin(IdentityCore):
    """What admins do to other users."""

    def bootstrap_admin(self, username: str = "admin") -> tuple[User, str] | None:
        """The first admin with a random password, or None when users already exist."""
        if self.repo.count_users() > 0:
            return None
        password = random_password()
        try:
            user = self._add(username, Role.ADMIN, password)
        except ConflictError:  # another process created it first
            return None
        self._event(
            "user_created",
            action="create_user",
            user_id="local",
            resource=f"user:{user.username}",
            details={"role": "admin", "first": True},
        )
        return user, password

    def create_user(
        self, actor: Principal, username: str, role: Role, password: str | None = None
    ) -> tuple[User, str | None]:
        """A new user; without a password a random one is made and returned once."""
        self._require_manager(actor)
        self._check_grant(actor, role)
        generated = random_password() if password is None else None
        user = self._add(username, role, password or generated or "")
        self._event(
            "user_created",
            action="create_user",
            user_id=actor.user_id,
            resource=f"user:{user.username}",
            details={"role": role.value},
        )
        return user, generated

    def users(self, actor: Principal) -> list[UserSummary]:
        """Every user with their lock state."""
        self._require_manager(actor)
        return [self._summary(u) for u in self.repo.users()]

    def describe(self, actor: Principal, ref: str) -> UserSummary:
        """One user by name or id."""
        self._require_manager(actor)
        return self._summary(self._target(ref))

    def set_role(self, actor: Principal, ref: str, role: Role) -> User:
        """Change a user's role (never one's own; ``system`` only from the command line)."""
        self._require_manager(actor)
        self._check_grant(actor, role)
        user = self._target(ref)
        if user.user_id == actor.user_id:
            raise PermissionDeniedError("you cannot change your own role")
        if user.role is not role:
            if not self.repo.set_role(user.user_id, role):
                raise ConflictError(
                    f"{user.username} is the last enabled admin: make another first"
                )
            self._event(
                "role_changed",
                action="set_role",
                user_id=actor.user_id,
                resource=f"user:{user.username}",
                details={"from": user.role.value, "to": role.value},
            )
        return self._existing(user.user_id)

    def set_enabled(self, actor: Principal, ref: str, enabled: bool) -> User:
        """Enable or disable a user; disabling revokes every session and API key."""
        self._require_manager(actor)
        user = self._target(ref)
        if not self.repo.set_enabled(user.user_id, enabled):
            raise ConflictError(f"{user.username} is the last enabled admin: make another first")
        if not enabled:
            self._revoke_all(user, actor, "user_disabled")
        self._event(
            "user_enabled" if enabled else "user_disabled",
            action="enable_user" if enabled else "disable_user",
            user_id=actor.user_id,
            resource=f"user:{user.username}",
        )
        return self._existing(user.user_id)

    def reset_password(self, actor: Principal, ref: str, password: str | None = None) -> str | None:
        """Set a new password (random when None, returned once), revoke credentials, unlock."""
        self._require_manager(actor)
        user = self._target(ref)
        generated = random_password() if password is None else None
        new = password if password is not None else generated or ""
        self.check_password(new, user.username)
        self._replace_password(user, new, ("password_reset", "reset_password"), actor, self.clock())
        self.repo.clear_failures(name_key(user.username))
        return generated

    def unlock(self, actor: Principal, ref: str) -> None:
        """Lift a lockout and forget the failed logins."""
        self._require_manager(actor)
        user = self._target(ref)
        self.repo.clear_failures(name_key(user.username))
        self._event(
            "account_unlocked",
            action="unlock",
            user_id=actor.user_id,
            resource=f"user:{user.username}",
        )

    def reset_mfa(self, actor: Principal, ref: str) -> None:
        """Remove a user's TOTP enrolment (a lost phone); they enrol again."""
        self._require_manager(actor)
        user = self._target(ref)
        self.repo.set_mfa(user.user_id, None, enrolled=False)
        self._event(
            "mfa_reset",
            action="reset_mfa",
            user_id=actor.user_id,
            resource=f"user:{user.username}",
            severity="warning",
        )

    def _add(self, username: str, role: Role, password: str) -> User:
        name = normalise(username)
        if not USERNAME.match(name):
            raise InvalidInputError(
                "a username has 1 to 64 characters: letters, digits and . _ @ -, "
                "starting with a letter or digit"
            )
        self.check_password(password, name)
        now = self.clock()
        user = User(f"u_{secrets.token_hex(8)}", name, role, self.hasher.hash(password), now, now)
        self.repo.add_user(user)
        return user
