"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from xnai import __version__
from xnai.api import errors, headers, security
from xnai.api.limits import BodyLimitMiddleware
from xnai.api.routes import (
    admin,
    auth,
    collections,
    documents,
    health,
    openai_compat,
    query,
    users,
)
from xnai.bootstrap import Container, build, prepare_process
from xnai.config import load_settings

log = logging.getLogger("xnai.api")


def create_app(container: Container, *, warm: bool = True, schedule: bool | None = None) -> FastAPI:
    """An app serving ``container``; with ``warm`` the model loads in the background, with
    ``schedule`` (default: as ``warm``) compliance runs and retention run periodically."""
    jobs = container.scheduled_jobs() if (warm if schedule is None else schedule) else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm:
            threading.Thread(target=container.warm_up, name="xnai-warm-up", daemon=True).start()
        if jobs is not None:
            jobs.start()
        try:
            yield
        finally:
            if jobs is not None:
                jobs.stop()

    app = FastAPI(
        title="Xoe-NovAi",
        version=__version__,
        summary="Answers from your own documents, with cited sources, offline.",
        lifespan=lifespan,
        # The interactive pages load their scripts from a CDN: an offline product serves
        # only the schema (/openapi.json).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by security.install: public on a loopback address only
    )
    app.state.container = container
    errors.install(app)
    for module in (health, query, openai_compat, documents, auth, users, collections, admin):
        app.include_router(module.router)
    security.install(app, container)  # after the last router: every route declares access
    max_bytes = int(container.settings.server.max_body_mb * 1024 * 1024)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)
    headers.install(app, hsts=container.settings.server.behind_tls_proxy)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from config file and environment."""
    prepare_process()
    container = build(load_settings())
    container.open_index()
    container.note_config()
    return create_app(container)
