"""The server ``xnai serve`` runs: the HTTP API with the chat UI mounted at ``/chat``.

The API (``xnai.api``) and the chat (``xnai.ui``) are entrypoints that never import each
other; this module, above both, puts them together.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from xnai.api import app as api
from xnai.bootstrap import Container
from xnai.ui import mount as chat

log = logging.getLogger("xnai.server")


def with_chat(app: FastAPI, container: Container) -> FastAPI:
    """``app`` with the chat mounted at ``/chat``; without it (a warning) when Chainlit is
    not installed."""
    try:
        chat.mount(app, container)
    except ImportError as exc:
        log.warning("the chat UI is not served: %s", exc)
    return app


def create_server(container: Container, **options: bool) -> FastAPI:
    """``create_app(container, **options)`` with the chat UI."""
    return with_chat(api.create_app(container, **options), container)


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory``: the API and the chat, settings from the config file
    and the environment."""
    app = api.app_from_environment()
    return with_chat(app, app.state.container)
