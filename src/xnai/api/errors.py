"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path, get_route_path
from starlette.types import Scope

from xnai.api.metrics import count_error, route_template
from xnai.api.security import route_rules
from xnai.domain.errors import (
    AccountLockedError,
    AuditUnavailableError,
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    ConflictError,
    DocumentError,
    IntegrityError,
    InvalidInputError,
    MfaEnrolmentRequiredError,
    MfaRequiredError,
    ModelError,
    ModelUnavailableError,
    NotFoundError,
    NotReadyError,
    PermissionDeniedError,
    QueueFullError,
    StorageFullError,
    UnsupportedFileError,
    XnaiError,
)
from xnai.services.disk import is_disk_full, storage_full

log = logging.getLogger("xnai.api")

STATUS: list[tuple[type[XnaiError], int]] = [
    (NotFoundError, 404),
    (AccountLockedError, 429),
    (QueueFullError, 429),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (ConflictError, 409),
    (InvalidInputError, 422),
    (UnsupportedFileError, 415),
    (DocumentError, 422),
    (NotReadyError, 503),
    (StorageFullError, 507),  # before AuditUnavailableError: an audit trail on a full disk
    (AuditUnavailableError, 503),
    (ModelUnavailableError, 503),
    (ModelError, 502),
    (ConfigError, 500),
    (IntegrityError, 500),  # stored data was altered: the server's problem, not the request's
    (XnaiError, 400),
]


def status_for(exc: XnaiError) -> int:
    """HTTP status of a domain error (most specific class first)."""
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def error_body(message: str, **extra: object) -> dict[str, object]:
    """The JSON shape of every error."""
    return {"error": message, **extra}


def response_details(exc: XnaiError, code: int) -> tuple[dict[str, str] | None, dict[str, object]]:
    """Headers and machine-readable fields some errors add to the response."""
    if isinstance(exc, AccountLockedError | CircuitOpenError | QueueFullError):
        return {"Retry-After": str(exc.retry_after)}, {"retry_after": exc.retry_after}
    if isinstance(exc, MfaRequiredError):
        return {"WWW-Authenticate": "Bearer"}, {"mfa_required": True}
    if isinstance(exc, AuthenticationError):
        return {"WWW-Authenticate": "Bearer"}, {}
    if isinstance(exc, MfaEnrolmentRequiredError):
        return None, {"mfa_enrolment_required": True}
    return ({"Retry-After": "5"} if code == 503 else None), {}


STORAGE_RETRY_AFTER = 5


def allowed_methods(app: FastAPI, scope: Scope) -> str:
    """The ``Allow`` header of a 405: every method some route serves at the request's path.

    The router hands a request whose path matches but whose method does not to the first
    route of that path, which would name only its own methods (``GET`` where ``POST`` is
    served at the same path by a later route)."""
    path = get_route_path(scope)
    methods: set[str] = set()
    for rule in route_rules(app.routes):
        if rule.methods and compile_path(rule.path)[0].match(path):
            methods |= rule.methods
    return ", ".join(sorted(methods))


def _root(exc: BaseException) -> BaseException:
    """The first error of a chain of ``raise ... from``."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def install(app: FastAPI, *, unavailable: tuple[type[Exception], ...] = ()) -> None:
    """Register the exception handlers; ``unavailable`` are the storage errors that mean
    the database cannot be reached right now (503, try again), not a bug (500)."""

    async def _storage_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning(
            "storage unavailable on %s %s: %s", request.method, route_template(request.scope), exc
        )
        count_error(request, exc, 503)
        return JSONResponse(
            error_body("storage temporarily unavailable", retry_after=STORAGE_RETRY_AFTER),
            status_code=503,
            headers={"Retry-After": str(STORAGE_RETRY_AFTER)},
        )

    for kind in unavailable:
        app.add_exception_handler(kind, _storage_down)

    @app.exception_handler(XnaiError)
    async def _domain(request: Request, exc: XnaiError) -> JSONResponse:
        code = status_for(exc)
        count_error(request, exc, code)
        if isinstance(exc, AuditUnavailableError):  # the response leaves out file names
            log.warning("%s %s refused: %r", request.method, request.url.path, _root(exc))
        headers, extra = response_details(exc, code)
        return JSONResponse(error_body(str(exc), **extra), status_code=code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(error_body("invalid request", detail=details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = "not found" if exc.status_code == 404 else str(exc.detail)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(app, request.scope)
        return JSONResponse(error_body(message), status_code=exc.status_code, headers=headers)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> JSONResponse:
        if is_disk_full(exc):  # met where no service named what it refused
            log.warning("disk full on %s %s: %r", request.method, request.url.path, exc)
            return await _domain(request, storage_full("the request was not completed"))
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, route_template(request.scope))
        count_error(request, exc, 500)
        return JSONResponse(error_body("internal error"), status_code=500)
