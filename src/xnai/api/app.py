"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI

from xnai import __version__
from xnai.api import errors, headers, metrics, openapi, readiness, request_ids, security
from xnai.api.limits import BodyLimitMiddleware
from xnai.api.routes import (
    admin,
    alerts,
    answers,
    auth,
    collections,
    documents,
    health,
    openai_compat,
    query,
    users,
)
from xnai.api.watch import QueryWatchMiddleware
from xnai.bootstrap import Container, build, prepare_process, storage_outage_errors
from xnai.config import load_settings

log = logging.getLogger("xnai.api")


def create_app(
    container: Container,
    *,
    warm: bool = True,
    schedule: bool | None = None,
    metrics_port: bool = False,
) -> FastAPI:
    """An app serving ``container``; with ``warm`` the model loads in the background, with
    ``schedule`` (default: as ``warm``) compliance runs and retention run periodically, with
    ``metrics_port`` the metrics are also served on ``enterprise.monitoring.prometheus_port``."""
    jobs = container.scheduled_jobs() if (warm if schedule is None else schedule) else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm:
            threading.Thread(
                target=container.startup.warm_up, name="xnai-warm-up", daemon=True
            ).start()
        if jobs is not None:
            jobs.start()
        stop_metrics = metrics.start_port_server(container) if metrics_port else None
        try:
            yield
        finally:
            if stop_metrics is not None:
                stop_metrics()
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
        openapi_url=None,  # served by security.install: public to local callers only
    )
    app.state.container = container  # each route takes the services it uses (api/deps.py)
    app.state.probe = readiness.Probe.of(container)
    errors.install(app, unavailable=storage_outage_errors())
    for module in (health, query, openai_compat, answers, documents, auth, users, collections):
        app.include_router(module.router)
    app.include_router(admin.router)
    app.include_router(alerts.router)
    server = container.settings.server
    components = partial(metrics.loaded_components, container)
    local = security.local_only(server.host, server.behind_tls_proxy)
    metrics.install(app, container.metrics, local=local, components=components)
    _publish_policies(app, container.settings.enterprise.security.password_min_length)
    security.install(app, local=local)  # after the last router: every route declares access
    max_bytes = int(server.max_body_mb * 1024 * 1024)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)
    # The chat UI (mounted at /chat by xnai.server) gets the same-origin page policy.
    headers.install(app, prefixes={"/chat": headers.UI_POLICY}, hsts=server.behind_tls_proxy)
    metrics.install_middleware(app, container.metrics)  # outside the body limit: counts 413s
    # Anomaly detection over every query's latency and outcome.
    app.add_middleware(
        QueryWatchMiddleware, anomalies=container.anomalies, metrics=container.metrics
    )
    request_ids.install(app)  # the very outermost: every line and response has the id
    return app


def _publish_policies(app: FastAPI, password_min_length: int) -> None:
    """The OpenAPI document shows the configured rules, as the server enforces them."""
    build_schema = app.openapi

    def schema() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        built = build_schema()
        return openapi.publish_password_policy(built, password_min_length) if fresh else built

    app.openapi = schema  # type: ignore[method-assign]


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from config file and environment."""
    prepare_process()
    container = build(load_settings())
    container.startup.try_open_index()  # damaged files: /ready says why, queries get 503
    container.config_audit.note_config()
    return create_app(container, metrics_port=True)
