"""The role x route matrix, derived from the app's own routes: every cell is checked.

For each route the app serves: 401 without credentials and with a bad, expired, revoked or
disabled user's credential; 403 for each role that lacks the declared permission; neither
401 nor 403 for each role that holds it. A route that declares no access rule fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import FAST_HASHER, bearer, password_of, seed
from tests.clock import WALL_START, FakeClock
from tests.conftest import FAKES
from xnai.api.app import create_app
from xnai.api.security import PERMISSION, RouteRule, enforce_declarations, public, route_rules
from xnai.bootstrap import Container, build
from xnai.config import load_settings
from xnai.domain.rbac import LOCAL_ADMIN, ROLE_PERMISSIONS, Permission, Role

ROLES = list(Role)

# What the product promises for the routes that existed before authentication.
EXPECTED = {
    ("POST", "/v1/query"): "execute:queries",
    ("POST", "/query"): "execute:queries",
    ("POST", "/v1/chat/completions"): "execute:queries",
    ("GET", "/v1/models"): "execute:queries",
    ("GET", "/v1/answers/{answer_id}/bundle"): "execute:queries",
    ("GET", "/v1/documents"): "read:documents",
    ("POST", "/v1/documents"): "write:documents",
    ("DELETE", "/v1/documents/{doc_id}"): "delete:documents",
    ("GET", "/v1/users"): "manage:users",
    ("POST", "/v1/users"): "manage:users",
    ("GET", "/health"): "public",
    ("GET", "/ready"): "public",
    ("POST", "/v1/auth/login"): "public",
    ("GET", "/openapi.json"): "public",
}


@dataclass
class World:
    container: Container
    app: FastAPI
    client: TestClient
    clock: FakeClock
    dead: dict[str, str]  # credentials that must all be refused


def _login(c: Container, username: str, role: Role) -> str:
    if c.auth.repo.user_by_name(username) is None:
        c.auth.create_user(LOCAL_ADMIN, username, role, password_of(username))
    return c.auth.login(username, password_of(username)).token


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("matrix")
    empty = tmp / "config.toml"
    empty.write_text("", encoding="utf-8")
    settings = load_settings(empty, models=FAKES, storage={"data_dir": tmp / "data"})
    c = build(settings)
    c.startup.open_index()
    c.auth.hasher = FAST_HASHER
    clock = FakeClock(WALL_START)
    c.auth.clock = clock
    seed(c)
    expired = _login(c, "expiring", Role.ADMIN)
    expired_key = c.auth.create_api_key(c.auth.authenticate(expired).principal, "old")[1]
    revoked = _login(c, "leaving", Role.ADMIN)
    c.auth.logout(c.auth.authenticate(revoked).principal)
    disabled = _login(c, "disabled", Role.ADMIN)
    gone_key = c.auth.create_api_key(c.auth.authenticate(disabled).principal, "k")[1]
    c.auth.set_enabled(LOCAL_ADMIN, "disabled", False)
    clock.advance(9 * 3600)  # past the absolute lifetime of every session made so far
    c.auth.repo.revoke_api_key(expired_key.split("_")[1], clock.now)
    dead = {
        "garbage": "garbage",
        "forged api key": "xnai_0123456789abcdef_forged",
        "expired session": expired,
        "revoked session": revoked,
        "revoked api key": expired_key,
        "disabled user's session": disabled,
        "disabled user's api key": gone_key,
    }
    app = create_app(c, warm=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(c, app, client, clock, dead)
    c.close()


def _rules(app: FastAPI) -> list[RouteRule]:
    return [r for r in route_rules(app.routes) if r.methods]


def _cells(app: FastAPI) -> list[tuple[str, str]]:
    return sorted((m, r.path) for r in _rules(app) for m in r.methods if m != "HEAD")


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "no-such-thing", path)


def _rule(world: World, method: str, path: str) -> RouteRule:
    return next(r for r in _rules(world.app) if r.path == path and method in r.methods)


def test_every_route_declares_exactly_one_rule(world: World) -> None:
    rules = _rules(world.app)
    assert len(rules) >= len({p for _, p in EXPECTED})
    undeclared = [f"{sorted(r.methods)} {r.path}" for r in rules if len(r.guards) != 1]
    assert undeclared == []


def test_routes_declare_the_promised_permissions(world: World) -> None:
    declared = {(m, r.path): r.guards[0].label for r in _rules(world.app) for m in r.methods}
    for cell, label in EXPECTED.items():
        assert declared.get(cell) == label, cell


def test_an_undeclared_route_is_refused() -> None:
    app = FastAPI(openapi_url=None)  # FastAPI's own schema and docs routes declare nothing

    @app.get("/declared", dependencies=[public()])
    def declared() -> dict[str, str]:
        return {}

    enforce_declarations(app.router.routes)

    @app.get("/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="/forgotten"):
        enforce_declarations(app.router.routes)

    @app.get("/twice", dependencies=[public(), public()])
    def twice() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="exactly one"):
        enforce_declarations(
            [r for r in app.router.routes if getattr(r, "path", "") != "/forgotten"]
        )


def _check(world: World, method: str, path: str) -> list[str]:
    """The failed cells of one route (an empty list when it behaves)."""
    guard = _rule(world, method, path).guards[0]
    url, send, failures = _url(path), world.client.request, []
    anonymous = send(method, url)
    if guard.kind == "public":
        if anonymous.status_code in (401, 403):
            failures.append(f"anonymous: {anonymous.status_code}")
        return failures
    if anonymous.status_code != 401 or anonymous.headers.get("www-authenticate") != "Bearer":
        failures.append(f"anonymous: {anonymous.status_code}")
    for what, credential in world.dead.items():
        r = send(method, url, headers=bearer(credential))
        if r.status_code != 401:
            failures.append(f"{what}: {r.status_code}")
    for role in ROLES:
        token = _login(world.container, f"matrix-{role.value}", role)  # fresh: logout revokes
        r = send(method, url, headers=bearer(token))
        allowed = guard.kind != PERMISSION or Permission(guard.label) in ROLE_PERMISSIONS[role]
        if allowed and r.status_code in (401, 403):
            failures.append(f"{role.value} (allowed): {r.status_code} {r.text}")
        if not allowed and r.status_code != 403:
            failures.append(f"{role.value} (not allowed): {r.status_code} {r.text}")
    return failures


def test_every_cell_of_the_matrix(world: World) -> None:
    cells = _cells(world.app)
    assert len(cells) >= len(EXPECTED)
    failures = {f"{m} {p}": f for m, p in cells if (f := _check(world, m, p))}
    assert failures == {}


def test_unenrolled_users_may_only_enrol_when_mfa_is_required(world: World) -> None:
    auth = world.container.auth
    auth.policy = replace(auth.policy, mfa_required=True)
    try:
        token = _login(world.container, "matrix-unenrolled", Role.ADMIN)
        for method, path in _cells(world.app):
            guard = _rule(world, method, path).guards[0]
            r = world.client.request(method, _url(path), headers=bearer(token))
            if guard.kind in ("public", "enrolling"):
                assert r.status_code not in (401, 403), (method, path, r.text)
            else:
                assert r.status_code == 403, (method, path, r.text)
                assert r.json()["mfa_enrolment_required"] is True
            if path == "/v1/auth/logout":
                token = _login(world.container, "matrix-unenrolled", Role.ADMIN)
    finally:
        auth.policy = replace(auth.policy, mfa_required=False)
