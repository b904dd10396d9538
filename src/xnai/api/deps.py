"""Dependencies shared by routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xnai.bootstrap import Container


def get_container(request: Request) -> Container:
    """The application's container."""
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]
