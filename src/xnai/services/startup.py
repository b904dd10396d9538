"""Start-up of a process: open the committed index, warm the models, report readiness."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from xnai.domain.errors import IndexDamagedError
from xnai.domain.models import ChatMessage
from xnai.domain.ports import Embedder
from xnai.services.knowledge import KnowledgeBase
from xnai.services.lazy import LazyChatModel

log = logging.getLogger("xnai")


@dataclass
class Readiness:
    """What has finished loading."""

    index_ready: bool = False
    index_error: str | None = None  # the index files are damaged: what and how to fix it
    model_error: str | None = None


class Startup:
    """Loads what the first query needs and records how far it got in ``readiness``."""

    def __init__(
        self, kb: KnowledgeBase, embedder: Embedder, model: LazyChatModel, readiness: Readiness
    ) -> None:
        self.kb = kb
        self.embedder = embedder
        self.model = model
        self.readiness = readiness

    def open_index(self) -> None:
        """Recover and load the committed index generation; IndexDamagedError (also noted
        in ``readiness``) when its files are damaged."""
        try:
            self.kb.open()
        except IndexDamagedError as exc:
            self.readiness.index_ready, self.readiness.index_error = False, str(exc)
            raise
        self.readiness.index_ready, self.readiness.index_error = True, None

    def try_open_index(self) -> bool:
        """``open_index`` for a server: damage is noted in ``readiness`` and logged, so the
        process still starts and says why it is not ready."""
        try:
            self.open_index()
        except IndexDamagedError as exc:
            log.error("index not loaded: %s", exc)
            return False
        return True

    def check_index(self) -> bool:
        """Whether the committed index is loaded and intact now (a rebuild or ingest by
        another process is picked up); keeps ``readiness`` current."""
        try:
            self.kb.refresh()
        except IndexDamagedError as exc:
            self.readiness.index_ready, self.readiness.index_error = False, str(exc)
            return False
        self.readiness.index_ready, self.readiness.index_error = True, None
        return True

    def warm_up(self) -> None:
        """Load the index and the model and run one token, so the first query is fast."""
        try:
            if not self.readiness.index_ready:
                self.try_open_index()
            self.embedder.embed(["warm up"])
            model = self.model.load()
            for _ in model.stream([ChatMessage("user", "Hi")], max_tokens=1):
                break
        except Exception as exc:  # reported by /ready; the process keeps serving /health
            self.readiness.model_error = f"{type(exc).__name__}: {exc}"
            log.exception("warm-up failed")
