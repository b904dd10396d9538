"""User management: the first admin, roles, enabling, password resets and unlocks.

Only principals with ``manage:users`` may call these; the command line runs as LOCAL_ADMIN,
the only principal that may grant the ``system`` role.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

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

# Passwords installers and vendors ship with; the compliance check tries each against every
# account (argon2 verification: a handful of guesses, not a dictionary attack).
DEFAULT_PASSWORDS = ("admin", "password", "changeme", "xnai", "admin123", "letmein")


class UserAdmin(IdentityCore):
    """What admins do to other users."""

    def bootstrap_admin(self, username: str = "admin") -> tuple[User, str] | None:
        """The first admin with a random password, or None when users already exist."""
        if self.repo.count_users() > 0:
            return None
        password = random_password()
        user = self._new_user(username, Role.ADMIN, password)
        try:
            with self._audited(
                "user_created",
                action="create_user",
                user_id="local",
                resource=f"user:{user.username}",
                details={"role": "admin", "first": True},
            ):
                self.repo.add_user(user)
        except ConflictError:  # another process created it first
            return None
        return user, password

    def create_user(
        self, actor: Principal, username: str, role: Role, password: str | None = None
    ) -> tuple[User, str | None]:
        """A new user; without a password a random one is made and returned once."""
        self._require_manager(actor)
        self._check_grant(actor, role)
        generated = random_password() if password is None else None
        user = self._new_user(username, role, password or generated or "")
        with self._audited(
            "user_created",
            action="create_user",
            user_id=actor.user_id,
            resource=f"user:{user.username}",
            details={"role": role.value},
        ):
            self.repo.add_user(user)
        return user, generated

    def users(self, actor: Principal) -> list[UserSummary]:
        """Every user with their lock state."""
        self._require_manager(actor)
        return [self._summary(u) for u in self.repo.users()]

    def describe(self, actor: Principal, ref: str) -> UserSummary:
        """One user by name or id."""
        return self._summary(self._managed(actor, ref))

    def set_role(self, actor: Principal, ref: str, role: Role) -> User:
        """Change a user's role (never one's own; ``system`` only from the command line)."""
        self._require_manager(actor)
        self._check_grant(actor, role)
        user = self._target(ref)
        if user.user_id == actor.user_id:
            raise PermissionDeniedError("you cannot change your own role")
        if user.role is not role:
            details = {"from": user.role.value, "to": role.value}
            with self._changing(actor, user, "role_changed", "set_role", details=details):
                _keep_an_admin(self.repo.set_role(user.user_id, role), user)
        return self._existing(user.user_id)

    def set_enabled(self, actor: Principal, ref: str, enabled: bool) -> User:
        """Enable or disable a user; disabling revokes every session and API key."""
        user = self._managed(actor, ref)
        event, action = (
            ("user_enabled", "enable_user") if enabled else ("user_disabled", "disable_user")
        )
        with self._changing(actor, user, event, action):
            _keep_an_admin(self.repo.set_enabled(user.user_id, enabled), user)
            if not enabled:
                self._revoke_all(user, actor, "user_disabled")
        return self._existing(user.user_id)

    def reset_password(self, actor: Principal, ref: str, password: str | None = None) -> str | None:
        """Set a new password (random when None, returned once), revoke credentials, unlock."""
        user = self._managed(actor, ref)
        generated = random_password() if password is None else None
        new = password if password is not None else generated or ""
        self.check_password(new, user.username)
        self._replace_password(user, new, ("password_reset", "reset_password"), actor, self.clock())
        self.repo.clear_failures(name_key(user.username))  # what the reset's event says too
        return generated

    def unlock(self, actor: Principal, ref: str) -> None:
        """Lift a lockout and forget the failed logins."""
        user = self._managed(actor, ref)
        with self._changing(actor, user, "account_unlocked", "unlock"):
            self.repo.clear_failures(name_key(user.username))

    def reset_mfa(self, actor: Principal, ref: str) -> None:
        """Remove a user's TOTP enrolment (a lost phone); they enrol again."""
        user = self._managed(actor, ref)
        with self._changing(actor, user, "mfa_reset", "reset_mfa", severity="warning"):
            self.repo.set_mfa(user.user_id, None, enrolled=False)

    def erase_account(self, actor: Principal, ref: str) -> User:
        """Delete a user with every credential (data subject erasure); refuses the last
        enabled admin."""
        user = self._managed(actor, ref)
        details = {"target_user_id": user.user_id}
        with self._changing(
            actor, user, "user_deleted", "erase_user", severity="warning", details=details
        ):
            _keep_an_admin(self.repo.delete_user(user.user_id, name_key(user.username)), user)
        return user

    def account_record(self, ref: str) -> dict[str, Any]:
        """What the store keeps about a user, without password hash or secrets (export)."""
        user = self._target(ref)
        return {
            **self._summary(user).as_dict(),
            "sessions": [
                {
                    "session_id": s.session_id,
                    "created_at": s.created_at.isoformat(),
                    "last_seen_at": s.last_seen_at.isoformat(),
                    "revoked_at": s.revoked_at.isoformat() if s.revoked_at else None,
                    "source_ip": s.source_ip,
                }
                for s in self.repo.sessions_of(user.user_id)
            ],
            "api_keys": [
                {
                    "key_id": k.key_id,
                    "name": k.name,
                    "created_at": k.created_at.isoformat(),
                    "expires_at": k.expires_at.isoformat() if k.expires_at else None,
                    "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                    "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                }
                for k in self.repo.api_keys(user.user_id)
            ],
        }

    def admins_without_mfa(self) -> tuple[int, list[str]]:
        """(enabled admins, usernames of those not enrolled in TOTP)."""
        admins = [u for u in self.repo.users() if u.role is Role.ADMIN and u.enabled]
        return len(admins), [u.username for u in admins if not u.mfa_enrolled]

    def default_password_users(self, guesses: Sequence[str] = DEFAULT_PASSWORDS) -> list[str]:
        """Enabled users whose password is a well-known default or their own username."""
        found = []
        for user in self.repo.users():
            if not user.enabled:
                continue
            # A hash is checked once per process: each guess costs a full argon2 run.
            key = (user.password_hash, user.username, tuple(guesses))
            if key not in self._default_verdicts:
                candidates = dict.fromkeys([*guesses, user.username])
                self._default_verdicts[key] = any(
                    self.hasher.verify(user.password_hash, g) for g in candidates
                )
            if self._default_verdicts[key]:
                found.append(user.username)
        return found

    def _managed(self, actor: Principal, ref: str) -> User:
        """The user ``ref`` names, when ``actor`` may manage users."""
        self._require_manager(actor)
        return self._target(ref)

    def _new_user(self, username: str, role: Role, password: str) -> User:
        """A valid new user, not stored yet."""
        name = normalise(username)
        if not USERNAME.match(name):
            raise InvalidInputError(
                "a username has 1 to 64 characters: letters, digits and . _ @ -, "
                "starting with a letter or digit"
            )
        self.check_password(password, name)
        now = self.clock()
        return User(f"u_{secrets.token_hex(8)}", name, role, self.hasher.hash(password), now, now)


def _keep_an_admin(done: bool, user: User) -> None:
    """ConflictError when the store refused a change that would leave no enabled admin."""
    if not done:
        raise ConflictError(f"{user.username} is the last enabled admin: make another first")
