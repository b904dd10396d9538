"""Start-up of a process: open the committed index, warm the models, report readiness."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from xnai.domain.models import ChatMessage
from xnai.domain.ports import Embedder
from xnai.services.knowledge import KnowledgeBase
from xnai.services.lazy import LazyChatModel

log = logging.getLogger("xnai")


@dataclass
class Readiness:
    """What has finished loading."""

    index_ready: bool = False
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
        """Recover and load the committed index generation."""
        self.kb.open()
        self.readiness.index_ready = True

    def warm_up(self) -> None:
        """Load the index and the model and run one token, so the first query is fast."""
        try:
            if not self.readiness.index_ready:
                self.open_index()
            self.embedder.embed(["warm up"])
            model = self.model.load()
            for _ in model.stream([ChatMessage("user", "Hi")], max_tokens=1):
                break
        except Exception as exc:  # reported by /ready; the process keeps serving /health
            self.readiness.model_error = f"{type(exc).__name__}: {exc}"
            log.exception("warm-up failed")
