"""Routes take the services they use (api/deps.py), never the whole container.

Every route of the built app is inspected: no callable in its dependency tree, the endpoint
included, takes or returns a ``Container``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from xnai.api.app import create_app
from xnai.api.security import public, route_rules
from xnai.bootstrap import Container


def _mentions_container(hint: Any) -> bool:
    """Whether a type hint is, or contains (Annotated, unions, generics), ``Container``."""
    if hint is Container:
        return True
    return any(_mentions_container(arg) for arg in typing.get_args(hint))


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    """Every callable of a dependency tree, its root first."""
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _wanting_the_container(app: FastAPI) -> tuple[list[str], int]:
    """The routes whose dependency tree asks for the container, and how many were seen."""
    offenders, seen = [], 0
    for rule in route_rules(app.routes):
        if not isinstance(rule.route, APIRoute):
            continue
        seen += 1
        for call in _calls(rule.route.dependant):
            hints = typing.get_type_hints(call, include_extras=True)
            if any(_mentions_container(h) for h in hints.values()):
                name = getattr(call, "__qualname__", repr(call))
                offenders.append(f"{sorted(rule.methods)} {rule.path}: {name}")
    return offenders, seen


def test_no_route_takes_the_whole_container(container: Container) -> None:
    app = create_app(container, warm=False)
    offenders, seen = _wanting_the_container(app)
    assert offenders == []
    paths = {r.path for r in route_rules(app.routes)}
    assert {"/ready", "/v1/documents", "/v1/admin/alerts", "/metrics"} <= paths
    assert seen >= 30  # every route of the API, not a few


async def _the_container(request: Request) -> Container:
    return typing.cast(Container, request.app.state.container)


def test_a_route_taking_the_container_is_found() -> None:
    app = FastAPI(openapi_url=None)

    @app.get("/narrow", dependencies=[public()])
    def narrow() -> dict[str, str]:
        return {}

    @app.get("/wide", dependencies=[public()])
    def wide(c: Annotated[Container, Depends(_the_container)]) -> dict[str, str]:
        return {}

    offenders, seen = _wanting_the_container(app)
    assert seen == 2
    assert offenders == [
        "['GET'] /wide: test_a_route_taking_the_container_is_found.<locals>.wide",
        "['GET'] /wide: _the_container",
    ]
