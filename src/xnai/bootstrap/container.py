"""The container: every service a process needs, built by ``build`` from one Settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xnai.config import Settings
from xnai.domain.cache import Cache
from xnai.domain.keys import Reencryptable
from xnai.domain.metrics import Metrics
from xnai.domain.ports import AuditSink, Embedder, KeyRing, Loader, OriginalsStore, StateStore
from xnai.domain.voice import SpeechToText, TextToSpeech
from xnai.services.access import AccessService
from xnai.services.anomaly import AnomalyWatch
from xnai.services.answer import AnswerService
from xnai.services.answer_bundles import AnswerBundles
from xnai.services.ask import AskService
from xnai.services.auth import AuthService
from xnai.services.breaker import CircuitBreaker
from xnai.services.checkpoints import IngestCheckpoints
from xnai.services.compliance import ComplianceService
from xnai.services.config_audit import ConfigAudit
from xnai.services.generation import GenerationLimiter
from xnai.services.ingestion import IngestionService
from xnai.services.jobs import PeriodicJobs
from xnai.services.keys import KeyRotation
from xnai.services.knowledge import KnowledgeBase
from xnai.services.lazy import LazyChatModel
from xnai.services.privacy import PrivacyService
from xnai.services.retention import RetentionJob
from xnai.services.retrieval import Retriever
from xnai.services.startup import Readiness, Startup


@dataclass(kw_only=True)
class Container:
    """Everything a process needs, built from one Settings object."""

    settings: Settings
    kb: KnowledgeBase
    retriever: Retriever
    answers: AnswerService
    model: LazyChatModel
    embedder: Embedder
    keyring: KeyRing
    loaders: list[Loader]
    readiness: Readiness
    # Opens the index and warms the models (``open_index``, ``warm_up``) into ``readiness``.
    startup: Startup
    audit: AuditSink
    # Measurements for /metrics (Prometheus) or kept in memory.
    metrics: Metrics
    # Everything encrypted with the key ring; `xnai keys rotate` rewrites each of them.
    encrypted_stores: list[Reencryptable]
    key_rotation: KeyRotation
    # Collections and access scopes.
    access: AccessService
    # Users, sessions, API keys (the same database as the documents).
    auth: AuthService
    # Asking a question, the one way every entry point does it.
    ask: AskService
    # Each answer's signed bundle: kept for its asker, verified against the library.
    answer_bundles: AnswerBundles
    # Guards of the language model: its circuit breaker and the bounded generation queue.
    breaker: CircuitBreaker
    generation: GenerationLimiter
    # The shared cache (Redis) when [redis] is configured: answers and ingest checkpoints.
    cache: Cache | None
    checkpoints: IngestCheckpoints | None
    forget_cached_answers: Callable[[], int]
    # Anomaly detection over query latency and error rate (GET /v1/admin/alerts).
    anomalies: AnomalyWatch
    # Speech in and out ([voice]), each loaded on first use; None when turned off.
    speech_to_text: SpeechToText | None
    text_to_speech: TextToSpeech | None
    ingestion: IngestionService
    originals: OriginalsStore
    # Last runs of scheduled jobs and the last configuration seen.
    state: StateStore
    config_audit: ConfigAudit
    retention: RetentionJob
    privacy: PrivacyService
    compliance: ComplianceService
    # A new set of the server's periodic jobs, from the settings as they are then.
    scheduled_jobs: Callable[[], PeriodicJobs]

    def close(self) -> None:
        """Release database connections."""
        self.kb.repo.close()
        close_cache = getattr(self.cache, "close", None)
        if close_cache is not None:
            close_cache()
