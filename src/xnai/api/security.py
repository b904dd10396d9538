"""Authentication and authorisation of HTTP routes.

Every route declares exactly one access rule in its decorator, as a dependency:

- ``require(Permission.X)``: a signed-in principal whose role holds the permission;
- ``authenticated()``: any signed-in principal (their own account, API keys, password);
- ``enrolling()``: any signed-in principal, even one who must still enrol in MFA;
- ``public()``: no credentials (health, readiness, login).

``create_app`` refuses to build an app with a route that declares none or several, and each
rule is published in the OpenAPI document as ``x-permission``. Credentials are
``Authorization: Bearer <session token or API key>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Mount

from xnai.bootstrap import Container
from xnai.domain.errors import AuthenticationError, MfaEnrolmentRequiredError, PermissionDeniedError
from xnai.domain.identity import Authenticated
from xnai.domain.network import is_loopback
from xnai.domain.rbac import Permission, Principal

PUBLIC, AUTHENTICATED, ENROLLING, PERMISSION = "public", "authenticated", "enrolling", "permission"
ENROL_FIRST = "multi-factor authentication is required: enrol first (POST /v1/auth/mfa/enrol)"


@dataclass(frozen=True, slots=True)
class Guard:
    """One route's access rule; ``check`` is the dependency that enforces it."""

    kind: str
    permission: Permission | None = None

    @property
    def label(self) -> str:
        """What the route needs, as published in ``x-permission``."""
        return self.permission.value if self.permission is not None else self.kind

    async def check(self, request: Request) -> None:
        """Raise AuthenticationError (401) or PermissionDeniedError (403) unless allowed.

        Runs on the event loop: a credential verified within the last second costs no
        database access, anything else is verified in a worker thread."""
        if self.kind == PUBLIC:
            return
        try:
            auth = await verify(request)
        except AuthenticationError:
            count_violation(request, "unauthenticated")
            raise
        if self.kind == ENROLLING:
            return
        if auth.restricted:
            await run_in_threadpool(_denied, request, auth.principal, "mfa_enrolment")
            raise MfaEnrolmentRequiredError(ENROL_FIRST)
        permission = self.permission
        if permission is not None and not auth.principal.can(permission):
            await run_in_threadpool(_denied, request, auth.principal, permission.value)
            raise PermissionDeniedError(
                f"the role {auth.principal.role.value} lacks the {permission.value} permission"
            )


def require(permission: Permission) -> Any:
    """Route dependency: the caller's role must hold ``permission``."""
    return Depends(Guard(PERMISSION, permission).check)


def authenticated() -> Any:
    """Route dependency: any signed-in caller (enrolled in MFA when it is required)."""
    return Depends(Guard(AUTHENTICATED).check)


def enrolling() -> Any:
    """Route dependency: any signed-in caller, including one who must still enrol in MFA."""
    return Depends(Guard(ENROLLING).check)


def public() -> Any:
    """Route dependency: no credentials needed (declared on purpose, never by omission)."""
    return Depends(Guard(PUBLIC).check)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    token = value.strip()
    return token if scheme.lower() == "bearer" and token else None


def client_ip(request: Request) -> str | None:
    """The peer address of the request."""
    return request.client.host if request.client else None


async def verify(request: Request) -> Authenticated:
    """The verified credential of this request (checked once, then kept on it)."""
    cached = getattr(request.state, "xnai_auth", None)
    if isinstance(cached, Authenticated):
        return cached
    token = bearer_token(request)
    if token is None:
        raise AuthenticationError("authentication required: send Authorization: Bearer <token>")
    container: Container = request.app.state.container
    auth = container.auth.recently_verified(token)
    if auth is None:
        auth = await run_in_threadpool(container.auth.authenticate, token)
    request.state.xnai_auth = auth
    return auth


async def current_principal(request: Request) -> Principal:
    """The signed-in principal; 403 while they must still enrol in MFA."""
    auth = await verify(request)
    if auth.restricted:
        raise MfaEnrolmentRequiredError(ENROL_FIRST)
    return auth.principal


async def enrolling_principal(request: Request) -> Principal:
    """The signed-in principal, even one who must still enrol in MFA."""
    return (await verify(request)).principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
EnrollingPrincipalDep = Annotated[Principal, Depends(enrolling_principal)]


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One HTTP route as served, with the access rules it declares."""

    path: str
    methods: frozenset[str]
    guards: tuple[Guard, ...]
    route: BaseRoute


def route_rules(routes: Sequence[BaseRoute]) -> list[RouteRule]:
    """Every route (included routers flattened) with its declared access rules."""
    rules = []
    for route, path, methods, deps in _flatten(routes):
        guards = tuple(
            owner
            for d in deps
            if isinstance(owner := getattr(d.dependency, "__self__", None), Guard)
        )
        rules.append(RouteRule(path, frozenset(methods), guards, route))
    return rules


def enforce_declarations(routes: Sequence[BaseRoute]) -> list[RouteRule]:
    """Refuse routes without exactly one access rule; return the rules."""
    rules = route_rules(routes)
    for rule in rules:
        if isinstance(rule.route, Mount):
            continue  # a mounted application authenticates its own requests
        if not isinstance(rule.route, APIRoute) or len(rule.guards) != 1:
            raise RuntimeError(
                f"route {sorted(rule.methods)} {rule.path} declares {len(rule.guards)} access "
                "rules; it needs exactly one: require(...), authenticated(), enrolling() "
                "or public()"
            )
    return rules


def _flatten(routes: Sequence[BaseRoute]) -> Iterator[tuple[BaseRoute, str, set[str], list[Any]]]:
    try:  # newer FastAPI includes routers lazily: flatten them
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI lists the routes themselves
        for route in routes:
            yield (
                route,
                getattr(route, "path", ""),
                set(getattr(route, "methods", None) or ()),
                [*getattr(route, "dependencies", [])],
            )
        return
    for ctx in iter_route_contexts(routes):
        deps = getattr(ctx, "dependencies", None) or []
        yield ctx.original_route, ctx.path or "", set(ctx.methods or ()), list(deps)


def publish_rules(schema: dict[str, Any], rules: Sequence[RouteRule]) -> dict[str, Any]:
    """Add each operation's rule (``x-permission``) and the bearer scheme to an OpenAPI
    document."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
    for rule in rules:
        operations = schema.get("paths", {}).get(rule.path, {})
        for method in rule.methods:
            op = operations.get(method.lower())
            if op is not None and rule.guards:
                op["x-permission"] = rule.guards[0].label
                op["security"] = [] if rule.guards[0].kind == PUBLIC else [{"bearer": []}]
    return schema


def local_only(host: str, behind_proxy: bool) -> bool:
    """Whether only this machine's own programs can reach the server: bound to loopback and
    not behind a proxy (a local reverse proxy forwards requests of anybody from 127.0.0.1)."""
    return is_loopback(host) and not behind_proxy


def install(app: FastAPI, *, local: bool) -> None:
    """Serve ``/openapi.json`` (public when the server is ``local``, see ``local_only``, else
    to any signed-in caller) and check every route."""
    guard = public() if local else authenticated()

    @app.get("/openapi.json", include_in_schema=False, dependencies=[guard])
    def openapi() -> JSONResponse:
        if app.openapi_schema is None:
            publish_rules(app.openapi(), rules)
        return JSONResponse(app.openapi_schema)

    rules = enforce_declarations(app.routes)


def count_violation(request: Request, kind: str, amount: int = 1) -> None:
    """Count refused requests or files in ``xoe_security_violation_total`` (``kind``: a fixed
    word such as unauthenticated, forbidden, login_failed, locked, invalid_upload)."""
    container: Container = request.app.state.container
    container.metrics.inc("xoe_security_violation_total", amount, kind=kind)


def _denied(request: Request, principal: Principal, needed: str) -> None:
    count_violation(request, "forbidden")
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    container: Container = request.app.state.container
    container.audit.record(
        "permission_denied",
        action=f"{request.method} {path}",
        resource=path,
        user_id=principal.user_id,
        success=False,
        severity="warning",
        source_ip=client_ip(request),
        details={"permission": needed, "role": principal.role.value, "via": principal.via},
    )
