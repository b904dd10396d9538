"""Dependencies shared by routes: the container, and the services routes take from it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xnai.bootstrap import Container
from xnai.services.ask import AskService


async def get_container(request: Request) -> Container:
    """The application's container (a plain attribute: no worker thread needed)."""
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_ask(c: ContainerDep) -> AskService:
    """The service that answers questions."""
    return c.ask


AskDep = Annotated[AskService, Depends(get_ask)]
