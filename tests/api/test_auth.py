"""Sign-in, sessions, API keys, MFA and user management over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import FAST_HASHER, bearer, password_of, token_for
from tests.clock import WALL_START, FakeClock
from xnai.adapters.memory.audit import RecordingAudit
from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.domain.errors import PermissionDeniedError
from xnai.domain.rbac import LOCAL_ADMIN, Role

WRONG = "wrong password 123"


@pytest.fixture
def clock(seeded: Container) -> FakeClock:
    clock = FakeClock(WALL_START)
    seeded.auth.clock = clock
    return clock


@pytest.fixture
def audit(seeded: Container) -> RecordingAudit:
    """Events of this test, from the service and the API layer alike."""
    rec = RecordingAudit()
    seeded.audit = rec
    seeded.auth.audit = rec
    return rec


@pytest.fixture
def api(seeded: Container, clock: FakeClock, audit: RecordingAudit) -> Iterator[TestClient]:
    """A client without default credentials."""
    with TestClient(create_app(seeded, warm=False)) as tc:
        yield tc


def login(api: TestClient, username: str, password: str, **extra: Any) -> Any:
    return api.post("/v1/auth/login", json={"username": username, "password": password, **extra})


def test_login_me_logout(api: TestClient, seeded: Container) -> None:
    token_for(seeded, "alice", Role.EDITOR)
    r = login(api, "Alice", password_of("alice"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["user"]["role"] == "editor"
    assert body["idle_timeout"] == 1800 and not body["mfa_enrolment_required"]
    me = api.get("/v1/auth/me", headers=bearer(body["token"])).json()
    assert me["username"] == "alice" and me["via"] == "session"
    assert "write:documents" in me["permissions"] and "manage:users" not in me["permissions"]
    assert api.post("/v1/auth/logout", headers=bearer(body["token"])).json() == {"logged_out": True}
    r = api.get("/v1/auth/me", headers=bearer(body["token"]))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_unknown_and_known_names_get_identical_responses(
    api: TestClient, seeded: Container
) -> None:
    token_for(seeded, "alice", Role.VIEWER)
    known, unknown = login(api, "alice", WRONG), login(api, "nobody", WRONG)
    assert (
        (known.status_code, known.json())
        == (unknown.status_code, unknown.json())
        == (
            401,
            {"error": "invalid username or password"},
        )
    )
    for _ in range(3):
        login(api, "alice", WRONG), login(api, "nobody", WRONG)
    known, unknown = login(api, "alice", WRONG), login(api, "nobody", WRONG)
    assert known.status_code == unknown.status_code == 429
    assert (
        known.json()
        == unknown.json()
        == {
            "error": "too many failed logins: try again later",
            "retry_after": 900,
        }
    )
    assert known.headers["retry-after"] == unknown.headers["retry-after"] == "900"


def test_spraying_from_one_address_gets_429_with_retry_after(
    api: TestClient, seeded: Container, audit: RecordingAudit
) -> None:
    token_for(seeded, "alice", Role.VIEWER)
    limit = seeded.auth.policy.login_client_failures
    assert {login(api, f"user{i}", WRONG).status_code for i in range(limit)} == {401}
    r = login(api, "alice", password_of("alice"))
    assert r.status_code == 429 and r.headers["retry-after"] == "900"
    assert r.json() == {
        "error": "too many failed logins from this address: try again later",
        "retry_after": 900,
    }
    assert any(e["event_type"] == "login_throttled" for e in audit.events)


def test_lockout_expires_and_admin_unlocks(
    api: TestClient, seeded: Container, clock: FakeClock
) -> None:
    admin = bearer(token_for(seeded, "root"))
    token_for(seeded, "alice", Role.VIEWER)
    for _ in range(5):
        login(api, "alice", WRONG)
    assert login(api, "alice", password_of("alice")).status_code == 429
    locked = api.get("/v1/users/alice", headers=admin).json()["user"]
    assert locked["locked_until"] is not None
    r = api.post("/v1/users/alice/unlock", headers=admin)
    assert r.status_code == 200 and r.json()["user"]["locked_until"] is None
    assert login(api, "alice", password_of("alice")).status_code == 200
    for _ in range(5):
        login(api, "alice", WRONG)
    clock.advance(900)
    assert login(api, "alice", password_of("alice")).status_code == 200


def test_idle_and_absolute_expiry(api: TestClient, seeded: Container, clock: FakeClock) -> None:
    token = token_for(seeded, "alice", Role.VIEWER)
    clock.advance(1799)
    assert api.get("/v1/documents", headers=bearer(token)).status_code == 200
    clock.advance(1800)
    assert api.get("/v1/documents", headers=bearer(token)).status_code == 401
    token = token_for(seeded, "alice")
    for _ in range(16):
        clock.advance(1800 - 1)
        assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 200
    clock.advance(16)  # 8 hours after the login
    assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 401


def test_api_keys_over_http(api: TestClient, seeded: Container, clock: FakeClock) -> None:
    session = bearer(token_for(seeded, "alice", Role.VIEWER))
    r = api.post(
        "/v1/auth/api-keys", json={"name": "nightly", "expires_in_days": 2}, headers=session
    )
    assert r.status_code == 201
    created = r.json()
    key = created["api_key"]
    assert key.startswith("xnai_")
    listed = api.get("/v1/auth/api-keys", headers=session).json()["api_keys"]
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    assert key not in str(listed)  # shown once, at creation
    assert api.get("/v1/documents", headers=bearer(key)).status_code == 200
    assert api.get("/v1/auth/me", headers=bearer(key)).json()["via"] == "api_key"
    assert api.post("/v1/auth/logout", headers=bearer(key)).status_code == 422
    r = api.delete(f"/v1/auth/api-keys/{created['key_id']}", headers=session)
    assert r.status_code == 200
    assert api.get("/v1/documents", headers=bearer(key)).status_code == 401
    r = api.post("/v1/auth/api-keys", json={"name": "short", "expires_in_days": 1}, headers=session)
    clock.advance(86400)
    assert api.get("/v1/documents", headers=bearer(r.json()["api_key"])).status_code == 401


def test_change_own_password(api: TestClient, seeded: Container) -> None:
    token = token_for(seeded, "alice", Role.VIEWER)
    body = {"current_password": "not the password", "new_password": "a fresh passphrase here"}
    assert api.post("/v1/auth/password", json=body, headers=bearer(token)).status_code == 403
    body["current_password"] = password_of("alice")
    r = api.post("/v1/auth/password", json={**body, "role": "admin"}, headers=bearer(token))
    assert r.status_code == 422  # no extra fields, no way to smuggle a role in
    weak = {**body, "new_password": "password1234"}
    r = api.post("/v1/auth/password", json=weak, headers=bearer(token))
    assert r.status_code == 422 and "common or breached" in r.json()["error"]
    assert api.post("/v1/auth/password", json=body, headers=bearer(token)).status_code == 200
    assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 401
    assert login(api, "alice", "a fresh passphrase here").status_code == 200


def test_mfa_enrolment_and_login(api: TestClient, seeded: Container, clock: FakeClock) -> None:
    token = token_for(seeded, "alice", Role.VIEWER)
    body = {"password": password_of("alice")}
    started = api.post("/v1/auth/mfa/enrol", json=body, headers=bearer(token)).json()
    totp = pyotp.TOTP(started["secret"])
    assert started["otpauth_uri"].startswith("otpauth://totp/Xoe-NovAi:alice")
    r = api.post("/v1/auth/mfa/confirm", json={"code": totp.at(clock.now)}, headers=bearer(token))
    assert r.json() == {"mfa_enrolled": True}
    r = login(api, "alice", password_of("alice"))
    assert r.status_code == 401 and r.json()["mfa_required"] is True
    assert r.headers["www-authenticate"] == "Bearer"
    clock.advance(30)
    code = totp.at(clock.now)
    assert login(api, "alice", password_of("alice"), totp_code=code).status_code == 200
    replay = login(api, "alice", password_of("alice"), totp_code=code)
    assert replay.status_code == 401 and replay.json()["mfa_required"] is True


def test_mfa_enrolment_requires_password(
    api: TestClient, seeded: Container, audit: RecordingAudit
) -> None:
    """A stolen session or API key alone cannot bind the account to an attacker's app."""
    token = bearer(token_for(seeded, "alice", Role.VIEWER))
    principal = seeded.auth.authenticate(token["Authorization"].split()[1]).principal
    enrol = "/v1/auth/mfa/enrol"
    assert api.post(enrol, headers=token).status_code == 422
    wrong = api.post(enrol, json={"password": "not her password"}, headers=token)
    assert wrong.status_code == 403 and "secret" not in wrong.text
    failure = [e for e in audit.events if e["event_type"] == "login_failure"][-1]
    assert failure["user_id"] == principal.user_id
    assert failure["details"]["reason"] == "current password"
    assert failure["source_ip"] == "testclient"
    user = seeded.auth.repo.user(principal.user_id)
    assert user is not None and user.mfa_secret is None  # nothing was issued
    with pytest.raises(PermissionDeniedError):
        seeded.auth.begin_mfa_enrolment(principal, "not her password")
    ok = api.post(enrol, json={"password": password_of("alice")}, headers=token)
    assert ok.status_code == 200 and ok.json()["secret"]


def test_mfa_required_allows_only_enrolment(seeded: Container, clock: FakeClock) -> None:
    seeded.auth.policy = replace(seeded.auth.policy, mfa_required=True)
    token_for(seeded, "alice", Role.VIEWER)
    with TestClient(create_app(seeded, warm=False)) as api:
        r = login(api, "alice", password_of("alice"))
        assert r.status_code == 200 and r.json()["mfa_enrolment_required"] is True
        token = bearer(r.json()["token"])
        denied = api.get("/v1/documents", headers=token)
        assert denied.status_code == 403 and denied.json()["mfa_enrolment_required"] is True
        assert api.post("/v1/auth/api-keys", json={"name": "x"}, headers=token).status_code == 403
        assert api.get("/v1/auth/me", headers=token).json()["mfa_enrolment_required"] is True
        body = {"password": password_of("alice")}
        secret = api.post("/v1/auth/mfa/enrol", json=body, headers=token).json()["secret"]
        code = pyotp.TOTP(secret).at(clock.now)
        assert (
            api.post("/v1/auth/mfa/confirm", json={"code": code}, headers=token).status_code == 200
        )
        assert api.get("/v1/documents", headers=token).status_code == 200


def test_admin_manages_users(api: TestClient, seeded: Container, audit: RecordingAudit) -> None:
    admin = bearer(token_for(seeded, "root"))
    r = api.post("/v1/users", json={"username": "Bob", "role": "editor"}, headers=admin)
    assert r.status_code == 201
    created = r.json()
    assert created["user"]["username"] == "bob" and created["user"]["role"] == "editor"
    assert login(api, "bob", created["password"]).status_code == 200
    r = api.post("/v1/users", json={"username": "bob", "role": "viewer"}, headers=admin)
    assert r.status_code == 409
    names = [u["username"] for u in api.get("/v1/users", headers=admin).json()["users"]]
    assert names == ["bob", "root"]
    r = api.put("/v1/users/bob/role", json={"role": "viewer"}, headers=admin)
    assert r.json()["user"]["role"] == "viewer"
    bob = bearer(login(api, "bob", created["password"]).json()["token"])
    assert api.post("/v1/users/bob/disable", headers=admin).json()["user"]["enabled"] is False
    assert api.get("/v1/documents", headers=bob).status_code == 401  # revoked at once
    assert login(api, "bob", created["password"]).status_code == 401
    assert api.post("/v1/users/bob/enable", headers=admin).json()["user"]["enabled"] is True
    r = api.post("/v1/users/bob/reset-password", headers=admin)
    new_password = r.json()["password"]
    assert login(api, "bob", new_password).status_code == 200
    r = api.post("/v1/users/bob/reset-password", json={"password": "short"}, headers=admin)
    assert r.status_code == 422
    assert api.delete("/v1/users/bob/mfa", headers=admin).status_code == 200
    assert api.get("/v1/users/ghost", headers=admin).status_code == 404
    kinds = [e["event_type"] for e in audit.events]
    for kind in ("user_created", "role_changed", "user_disabled", "user_enabled", "password_reset"):
        assert kind in kinds


@pytest.mark.parametrize(
    "call",
    [
        lambda api, h: api.post(
            "/v1/users", json={"username": "x1", "role": "viewer", "enabled": False}, headers=h
        ),
        lambda api, h: api.put(
            "/v1/users/alice/role", json={"role": "admin", "username": "root"}, headers=h
        ),
        lambda api, h: api.post("/v1/auth/login", json={"username": "a", "password": "b", "x": 1}),
        lambda api, h: api.post(
            "/v1/auth/api-keys", json={"name": "k", "user_id": "u_x"}, headers=h
        ),
    ],
)
def test_no_mass_assignment(
    api: TestClient, seeded: Container, call: Callable[[TestClient, dict[str, str]], Any]
) -> None:
    admin = bearer(token_for(seeded, "root"))
    token_for(seeded, "alice", Role.VIEWER)
    r = call(api, admin)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "extra_forbidden"


def test_role_rules_over_http(api: TestClient, seeded: Container) -> None:
    root = bearer(token_for(seeded, "root"))
    token_for(seeded, "alice", Role.EDITOR)
    r = api.put("/v1/users/root/role", json={"role": "viewer"}, headers=root)
    assert r.status_code == 403 and "own role" in r.json()["error"]
    r = api.put("/v1/users/alice/role", json={"role": "system"}, headers=root)
    assert r.status_code == 403 and "command line" in r.json()["error"]
    r = api.post("/v1/users", json={"username": "robot", "role": "system"}, headers=root)
    assert r.status_code == 403
    assert api.post("/v1/users/root/disable", headers=root).status_code == 409  # last admin
    seeded.auth.create_user(LOCAL_ADMIN, "robot", Role.SYSTEM, password_of("robot"))
    assert api.get("/v1/users/robot", headers=root).json()["user"]["role"] == "system"
    alice = bearer(token_for(seeded, "alice"))
    r = api.put("/v1/users/alice/role", json={"role": "admin"}, headers=alice)
    assert r.status_code == 403  # an editor changes no role, not even their own


def test_permission_denied_is_audited(
    api: TestClient, seeded: Container, audit: RecordingAudit
) -> None:
    viewer = bearer(token_for(seeded, "vera", Role.VIEWER))
    r = api.delete("/v1/documents/d_123", headers=viewer)
    assert r.status_code == 403
    assert r.json() == {"error": "the role viewer lacks the delete:documents permission"}
    event = [e for e in audit.events if e["event_type"] == "permission_denied"][-1]
    assert event["action"] == "DELETE /v1/documents/{doc_id}"
    assert event["details"]["permission"] == "delete:documents"
    assert event["severity"] == "warning" and event["success"] is False
    assert event["user_id"] == seeded.auth.repo.user_by_name("vera").user_id  # type: ignore[union-attr]


def test_openapi_is_public_on_loopback_only(
    make_container: Callable[..., Container], tmp_path: Path
) -> None:
    local = make_container(tmp_path / "a")
    with TestClient(create_app(local, warm=False)) as api:
        r = api.get("/openapi.json")
        assert r.status_code == 200
        ops = r.json()["paths"]
        assert ops["/v1/query"]["post"]["x-permission"] == "execute:queries"
        assert ops["/v1/auth/login"]["post"]["x-permission"] == "public"
        assert ops["/v1/users"]["get"]["security"] == [{"bearer": []}]
    exposed = make_container(tmp_path / "b", server={"host": "0.0.0.0"})
    exposed.auth.hasher = FAST_HASHER
    with TestClient(create_app(exposed, warm=False)) as api:
        assert api.get("/openapi.json").status_code == 401
        token = token_for(exposed, "vera", Role.VIEWER)
        assert api.get("/openapi.json", headers=bearer(token)).status_code == 200
