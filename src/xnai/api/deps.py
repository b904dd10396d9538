"""Dependencies shared by routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xnai.bootstrap import Container


async def get_container(request: Request) -> Container:
    """The application's container (a plain attribute: no worker thread needed)."""
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]
