"""Composition root: the only place that knows concrete adapters."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnai.config import TELEMETRY_OFF, Settings, disable_telemetry, redacted
from xnai.domain.cache import Cache
from xnai.domain.errors import ConfigError, ModelError, NotFoundError
from xnai.domain.keys import USER_DATA, Reencryptable, RotatableKeyRing
from xnai.domain.metrics import Metrics
from xnai.domain.models import ChatMessage, Document, IngestReport, SearchMode
from xnai.domain.ports import (
    AuditSink,
    ChatModel,
    Embedder,
    KeyRing,
    LexicalIndex,
    Loader,
    VectorIndex,
)
from xnai.domain.rbac import LOCAL_ADMIN, Principal
from xnai.domain.voice import SpeechToText, TextToSpeech
from xnai.services.access import AccessService, MemoryCollectionStore, into_collection
from xnai.services.anomaly import AnomalyPolicy, AnomalyWatch
from xnai.services.answer import AnswerPolicy, AnswerService
from xnai.services.answer_cache import CachedAnswerService, IndexVersion
from xnai.services.ask import AskService
from xnai.services.audit import Auditor, RecordingAudit
from xnai.services.auth import AuthPolicy, AuthService
from xnai.services.checkpoints import IngestCheckpoints
from xnai.services.compliance import ComplianceService, Facts
from xnai.services.filetype import ArchiveLimits
from xnai.services.generation import GenerationLimiter
from xnai.services.identity import CONTEXT_WORDS
from xnai.services.jobs import Job, PeriodicJobs
from xnai.services.keys import KeyRotation
from xnai.services.knowledge import (
    ChunkingPolicy,
    KnowledgeBase,
    Progress,
    find_documents,
    sha256_bytes,
)
from xnai.services.metrics import RecordingMetrics
from xnai.services.privacy import PrivacyService, Subject, SubjectData
from xnai.services.resilience import CircuitBreaker, GuardedChatModel, LateMetrics, RetryPolicy
from xnai.services.retention import RetentionJob
from xnai.services.retrieval import RetrievalPolicy, Retriever
from xnai.services.sources import MB, file_sources, passes_checks, upload_sources
from xnai.services.users import UserAdmin
from xnai.services.voice import LazySpeechToText, LazyTextToSpeech, SentenceSpeech

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from xnai.adapters.storage.state import JsonStateFile

log = logging.getLogger("xnai")


class LazyChatModel:
    """Loads the real model on first use so commands that never generate stay fast."""

    def __init__(self, factory: Callable[[], ChatModel], name: str, context_size: int) -> None:
        self._factory = factory
        self._model: ChatModel | None = None
        self._lock = threading.Lock()
        self.name = name
        self.context_size = context_size

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    def load(self) -> ChatModel:
        """Load (once) and return the model."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._factory()
                    self.name = self._model.name
        return self._model

    def count_tokens(self, text: str) -> int:
        """Tokens as the loaded model counts them."""
        return self.load().count_tokens(text)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Stream from the loaded model."""
        return self.load().stream(
            messages, max_tokens=max_tokens, temperature=temperature, stop=stop
        )


@dataclass
class Readiness:
    """What has finished loading."""

    index_ready: bool = False
    model_error: str | None = None


@dataclass
class Container:
    """Everything a process needs, built from one Settings object."""

    settings: Settings
    kb: KnowledgeBase
    retriever: Retriever
    answers: AnswerService
    model: LazyChatModel
    embedder: Embedder
    keyring: KeyRing
    loaders: list[Loader] = field(default_factory=list)
    readiness: Readiness = field(default_factory=Readiness)
    audit: AuditSink = field(default_factory=RecordingAudit)
    # Measurements for /metrics (Prometheus) or kept in memory.
    metrics: Metrics = field(default_factory=RecordingMetrics)
    # Everything encrypted with the key ring; `xnai keys rotate` rewrites each of them.
    encrypted_stores: list[Reencryptable] = field(default_factory=list)
    # Collections and access scopes; the default (no collections) lets only admins read.
    access: AccessService = field(
        default_factory=lambda: AccessService(MemoryCollectionStore(), list)
    )
    # Users, sessions, API keys (the same database as the documents).
    auth: AuthService = field(kw_only=True)
    # Asking a question, the one way every entry point does it.
    ask: AskService = field(kw_only=True)
    # Guards of the language model: its circuit breaker and the bounded generation queue.
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker, kw_only=True)
    generation: GenerationLimiter = field(default_factory=GenerationLimiter, kw_only=True)
    # The shared cache (Redis) when [redis] is configured: answers and ingest checkpoints.
    cache: Cache | None = field(default=None, kw_only=True)
    # Anomaly detection over query latency and error rate (GET /v1/admin/alerts).
    anomalies: AnomalyWatch = field(default_factory=AnomalyWatch, kw_only=True)
    # Speech in and out ([voice]), each loaded on first use; None when turned off.
    speech_to_text: SpeechToText | None = field(default=None, kw_only=True)
    text_to_speech: TextToSpeech | None = field(default=None, kw_only=True)

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

    def loader_for(self, path: Path) -> Loader:
        """The loader for a file by its suffix."""
        from xnai.adapters.loaders.registry import loader_for

        return loader_for(path, self.loaders)

    @property
    def max_file_bytes(self) -> int:
        """The configured size limit of one ingested file."""
        return int(self.settings.ingest.max_file_mb * MB)

    @property
    def archive_limits(self) -> ArchiveLimits:
        """The configured expansion limits of ZIP-based documents (.docx)."""
        i = self.settings.ingest
        return ArchiveLimits(int(i.max_archive_mb * MB), i.max_archive_ratio, i.max_archive_members)

    def document_files(self, paths: Sequence[Path]) -> list[Path]:
        """Files to ingest under ``paths`` (folders recursively, supported types)."""
        return find_documents(paths, self.settings.ingest.suffixes)

    def ingest_files(
        self,
        files: Sequence[Path],
        *,
        user: str,
        progress: Progress | None = None,
        collection: str = "default",
        principal: Principal | None = None,
    ) -> IngestReport:
        """Ingest files (see ``document_files``) into ``collection``; errors are per file.
        The run is an ``ingest`` audit event of ``principal`` (else of ``user``)."""
        started = time.perf_counter()
        sources = file_sources(
            files, self.loader_for, self.max_file_bytes, self.kb.is_unchanged, self.archive_limits
        )
        placed = into_collection(sources, collection, self.kb.repo.document_by_source)
        report = self.kb.ingest(placed, user=user, progress=progress)
        self._measure_ingest(report)
        self._audit_ingest(report, user, principal, collection, "files")
        self._checkpoint(report, principal.user_id if principal else user, collection, started)
        return report

    def ingest_uploads(
        self,
        uploads: Sequence[tuple[str, bytes]],
        *,
        user: str,
        collection: str = "default",
        principal: Principal | None = None,
        source_ip: str | None = None,
    ) -> IngestReport:
        """Keep the originals and ingest uploaded files into ``collection``; errors are per
        file. Outside ``default`` an upload is named ``upload:<collection>/<name>``, so a
        file of the same name in another collection is never replaced."""
        started = time.perf_counter()
        for name, data in uploads:
            # Only files that pass the size, type and content checks are worth keeping.
            if passes_checks(name, data, self.loader_for, self.max_file_bytes, self.archive_limits):
                self.keep_original(name, data)
        if collection != "default":
            uploads = [(f"{collection}/{name}", data) for name, data in uploads]
        sources = upload_sources(uploads, self.loader_for, self.max_file_bytes, self.archive_limits)
        placed = into_collection(sources, collection, self.kb.repo.document_by_source)
        report = self.kb.ingest(placed, user=user)
        self._measure_ingest(report)
        self._audit_ingest(report, user, principal, collection, "upload", source_ip)
        self._checkpoint(report, principal.user_id if principal else user, collection, started)
        return report

    def _measure_ingest(self, report: IngestReport) -> None:
        """``xoe_ingest_chunks_total`` and ``xoe_ingest_documents_total{result}``."""
        if report.chunks_added:
            self.metrics.inc("xoe_ingest_chunks_total", report.chunks_added)
        for result, count in (
            ("added", len(report.added)),
            ("replaced", len(report.replaced)),
            ("unchanged", len(report.unchanged)),
            ("failed", len(report.failed)),
        ):
            if count:
                self.metrics.inc("xoe_ingest_documents_total", count, result=result)

    def _audit_ingest(
        self,
        report: IngestReport,
        user: str,
        principal: Principal | None,
        collection: str,
        via: str,
        source_ip: str | None = None,
    ) -> None:
        self.audit.record(
            "ingest",
            action=via,
            resource=f"collection/{collection}",
            user_id=principal.user_id if principal else user,
            success=report.ok,
            severity="info" if report.ok else "warning",
            source_ip=source_ip,
            details={
                "ingested_by": user,
                "added": list(report.added),
                "replaced": list(report.replaced),
                "unchanged": len(report.unchanged),
                "failed": [list(f) for f in report.failed],
                "chunks_added": report.chunks_added,
                "generation": report.generation,
            },
        )

    @property
    def checkpoints(self) -> IngestCheckpoints | None:
        """The ingest checkpoints (``<namespace>:snapshot:<collection>``), when Redis is
        configured."""
        if self.cache is None:
            return None
        return IngestCheckpoints(self.cache, self.settings.redis.snapshot_ttl)

    def _checkpoint(
        self, report: IngestReport, user_id: str, collection: str, started: float
    ) -> None:
        """Record the checkpoint of ``collection`` after an ingest run."""
        checkpoints = self.checkpoints
        if checkpoints is None:
            return
        docs = self.kb.snapshot.documents.values()
        checkpoints.record(
            collection,
            user_id=user_id,
            documents_count=sum(1 for d in docs if d.collection == collection),
            ingestion_time=time.perf_counter() - started,
            generation=report.generation,
            added=len(report.added),
            replaced=len(report.replaced),
            failed=len(report.failed),
        )

    def forget_cached_answers(self) -> int:
        """Drop every cached answer (erasure, or on demand); how many were removed."""
        if isinstance(self.answers, CachedAnswerService):
            return self.answers.forget()
        return 0

    def remove_document(
        self,
        ref: str,
        *,
        principal: Principal | None = None,
        source_ip: str | None = None,
    ) -> Document:
        """Delete one document (by id or source) from every index, as a ``delete`` audit
        event of ``principal``; NotFoundError when unknown."""
        doc = self.kb.remove(ref)
        self.audit.record(
            "delete",
            action="delete",
            resource=f"document/{doc.doc_id}",
            user_id=principal.user_id if principal else None,
            source_ip=source_ip,
            details={
                "doc_id": doc.doc_id,
                "source": doc.source,
                "chunks_removed": len(doc.chunk_ids),
                "permission": "delete:documents",
            },
        )
        return doc

    def keep_original(self, name: str, data: bytes) -> Path:
        """Store an uploaded file's bytes (content-addressed, owner-only, encrypted with the
        user_data key) and return the path. Holds the writer lock: a key rotation that runs
        at the same time would miss a file written under the key it retires."""
        from xnai.adapters.storage.fsutil import atomic_write_bytes

        digest = sha256_bytes(data)
        path = self.settings.data_dir / "originals" / f"{digest}{Path(name).suffix.lower()}"
        with self.kb.store.lock():
            if not path.exists():
                atomic_write_bytes(path, self.keyring.encrypt(USER_DATA, data))
        return path

    def read_original(self, path: Path) -> bytes:
        """The bytes of a file stored by ``keep_original``; IntegrityError when tampered."""
        from xnai.adapters.security.encrypted_files import read_decrypted

        return read_decrypted(path, self.keyring, USER_DATA)

    def key_rotation(self) -> KeyRotation:
        """The master-key rotation over every encrypted store of this container."""
        if not isinstance(self.keyring, RotatableKeyRing):
            raise ConfigError("this key ring cannot rotate its keys")
        return KeyRotation(
            self.keyring,
            self.encrypted_stores,
            self.kb.store.lock,
            self.audit,
            max_age_days=self.settings.enterprise.security.key_max_age_days,
        )

    @cached_property
    def state(self) -> JsonStateFile:
        """Last runs of scheduled jobs and the last configuration seen
        (``<data_dir>/compliance/state.json``): one object, so its lock serialises every
        read-modify-write of the file in this process."""
        from xnai.adapters.storage.state import JsonStateFile

        return JsonStateFile(self.settings.data_dir / "compliance" / "state.json")

    def retention(self) -> RetentionJob:
        """The retention job over documents, credentials and the audit log."""
        audit = self.audit
        return RetentionJob(
            self.kb,
            self.settings.enterprise.compliance.data_retention_days,
            audit,
            purge_credentials=self.auth.purge_sessions,
            trim_audit=audit.trim if isinstance(audit, Auditor) else lambda _cutoff: 0,
            remember=lambda stamp: self.state.set("last_run:retention", stamp),
        )

    def privacy(self) -> PrivacyService:
        """Data subject export and erasure over every store that holds personal data."""
        return PrivacyService(self.kb, subject_data(self), self.audit)

    def compliance(self) -> ComplianceService:
        """Compliance self-audits over this installation's live state."""
        return ComplianceService(lambda: gather_facts(self), self.audit)

    def scheduled_jobs(self) -> PeriodicJobs:
        """The server's periodic jobs: each configured framework's audit and retention."""
        comp = self.settings.enterprise.compliance
        every = timedelta(hours=comp.audit_interval_hours)
        jobs = [
            Job(f"compliance:{name}", every, partial(self.compliance().run, name))
            for name in comp.frameworks
        ]
        jobs.append(Job("retention", timedelta(days=1), self.retention().run))
        state = self.state
        return PeriodicJobs(
            jobs,
            last_run=lambda name: state.get(f"last_run:{name}"),
            remember=lambda name, stamp: state.set(f"last_run:{name}", stamp),
        )

    def note_config(self) -> list[str]:
        """Record a ``config_change`` audit event when the effective configuration differs
        from the one last seen (secrets compared only as set or unset); the changed keys."""
        current = flat_settings(self.settings)
        state = self.state
        previous = state.get("config")
        if not isinstance(previous, dict):
            previous = {}
        changed = sorted(
            k for k in current.keys() | previous.keys() if current.get(k) != previous.get(k)
        )
        if changed:
            self.audit.record(
                "config_change",
                action="configure",
                resource="config",
                user_id="local",
                details={
                    "first": not previous,
                    "changed": changed,
                    "values": {k: current.get(k) for k in changed[:50]},
                },
            )
            state.set("config", current)
        return changed

    def close(self) -> None:
        """Release database connections."""
        self.kb.repo.close()
        close_cache = getattr(self.cache, "close", None)
        if close_cache is not None:
            close_cache()


def flat_settings(settings: Settings) -> dict[str, Any]:
    """The effective settings as ``section.key`` -> value, secrets redacted."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            out[prefix] = value

    walk("", redacted(settings))
    return out


def subject_data(c: Container) -> SubjectData:
    """Where a user's personal data lives in this installation."""
    audit = c.audit

    def find(ref: str) -> Subject | None:
        try:
            record = c.auth.account_record(ref)
        except NotFoundError:
            return None
        return Subject(record["user_id"], record["username"])

    def forget_account(subject: Subject) -> None:
        c.auth.erase_account(LOCAL_ADMIN, subject.user_id)

    def audit_events(subject: Subject) -> list[dict[str, Any]]:
        if isinstance(audit, Auditor):
            return audit.events_about(subject.user_id, also=[subject.username])
        return []

    def pseudonymise(subject: Subject) -> int:
        if isinstance(audit, Auditor):
            return audit.pseudonymise(subject.user_id, also=[subject.username])
        return 0

    def forget_original(doc: Document) -> int:
        folder = c.settings.data_dir / "originals"
        gone = 0
        with c.kb.store.lock():
            for path in folder.glob(f"{doc.sha256}*"):
                path.unlink(missing_ok=True)
                gone += 1
        return gone

    def forget_cached() -> None:
        c.forget_cached_answers()

    return SubjectData(
        find=find,
        account=lambda subject: c.auth.account_record(subject.user_id),
        audit_events=audit_events,
        forget_account=forget_account,
        pseudonymise_audit=pseudonymise,
        forget_original=forget_original,
        forget_cached=forget_cached,
        extra={
            "collections": lambda subject: [
                col.name
                for col in c.access.store.list()
                if subject.user_id in col.readable_users or subject.username in col.readable_users
            ]
        },
    )


def gather_facts(c: Container) -> Facts:
    """Read the state every compliance check inspects from the live components."""
    s = c.settings
    sec, comp = s.enterprise.security, s.enterprise.compliance
    key_age = None
    if isinstance(c.keyring, RotatableKeyRing):
        key_age = c.key_rotation().status().age_days()
    if isinstance(c.audit, Auditor):
        verified = c.audit.verify()
        audit_ok, audit_message, audit_lines = verified.ok, verified.describe(), verified.lines
    else:
        audit_ok, audit_message, audit_lines = False, "no audit log is configured", 0
    admins, without_mfa = c.auth.admins_without_mfa()
    backups = s.absolute(comp.backups_dir) if comp.backups_dir is not None else None
    listed = getattr(c.auth.is_common, "entries", ())
    return Facts(
        encryption_enabled=bool(getattr(c.keyring, "enabled", False)),
        key_age_days=key_age,
        key_max_age_days=sec.key_max_age_days,
        audit_ok=audit_ok,
        audit_message=audit_message,
        audit_lines=audit_lines,
        retention_days=comp.data_retention_days,
        retention_last_run=c.state.get("last_run:retention"),
        retention_overdue=c.retention().overdue(),
        admins_total=admins,
        admins_without_mfa=without_mfa,
        mfa_required=sec.mfa_required,
        password_min_length=c.auth.policy.password_min_length,
        common_password_entries=len(listed),
        default_password_users=c.auth.default_password_users(),
        session_timeout_s=c.auth.policy.session_timeout,
        session_idle_timeout_s=c.auth.policy.session_idle_timeout,
        lockout_threshold=c.auth.policy.failed_login_lockout,
        lockout_duration_s=c.auth.policy.lockout_duration,
        bind_host=s.server.host,
        behind_tls_proxy=s.server.behind_tls_proxy,
        backups_dir=str(backups) if backups is not None else None,
        backups_dir_writable=backups is not None
        and backups.is_dir()
        and os.access(backups, os.W_OK),
        telemetry_unset=[k for k, v in TELEMETRY_OFF.items() if os.environ.get(k) != v],
        export_available=isinstance(c.auth, UserAdmin),
        erasure_available=isinstance(c.auth, UserAdmin) and isinstance(c.audit, Auditor),
    )


def prepare_process() -> None:
    """Process-wide setup of entrypoints: telemetry off, owner-only files."""
    disable_telemetry()
    os.umask(0o077)


def build(settings: Settings) -> Container:
    """Wire adapters into services according to ``settings``."""
    disable_telemetry()
    # Read once by the OpenMP runtime when llama.cpp loads; an explicit variable wins.
    os.environ.setdefault("OMP_WAIT_POLICY", settings.models.omp_wait_policy.upper())
    from xnai.adapters.loaders.registry import default_loaders
    from xnai.adapters.storage.generations import FileIndexStore
    from xnai.adapters.storage.sql import SqlDocumentRepository, sqlite_url
    from xnai.adapters.storage.sql_collections import SqlCollectionStore

    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    keyring = build_keyring(settings)
    embedder = build_embedder(settings)
    repo = SqlDocumentRepository(settings.storage.database_url or sqlite_url(data_dir), keyring)
    kb = KnowledgeBase(
        repo,
        FileIndexStore(data_dir, keyring),
        embedder,
        vector_index_factory(embedder.dim),
        lexical_index_factory(keyring),
        chunking=ChunkingPolicy(settings.ingest.chunk_tokens, settings.ingest.chunk_overlap),
        commit_every_chunks=settings.ingest.commit_every_chunks,
        keep_generations=settings.storage.keep_generations,
    )
    retriever = Retriever(
        lambda: kb.snapshot,
        embedder,
        RetrievalPolicy(candidates=settings.rag.candidates, rrf_k=settings.rag.rrf_k),
    )
    model = LazyChatModel(
        lambda: build_chat_model(settings), model_label(settings), settings.models.n_ctx
    )
    policy = AnswerPolicy(
        mode=SearchMode(settings.rag.mode),
        top_k=settings.rag.top_k,
        max_tokens=settings.models.max_tokens,
        temperature=settings.models.temperature,
        min_score=settings.rag.min_score,
        context_tokens=settings.rag.context_tokens,
    )
    audit = build_auditor(settings, keyring)
    auth = build_auth(settings, repo.engine, audit, keyring)
    guarded = guard_model(settings, model, LateMetrics(lambda: c.metrics))
    answers = AnswerService(retriever, guarded, policy, audit=audit)
    cache = build_cache(settings, lambda ok: report_cache_health(c, ok))
    if cache is not None and settings.redis.answer_cache_ttl > 0:
        answers = CachedAnswerService(
            answers,
            cache,
            index_version=IndexVersion(lambda: kb.snapshot),
            model_id=f"{settings.models.llm_backend}:{model_label(settings)}",
            ttl=settings.redis.answer_cache_ttl,
            metrics=lambda: c.metrics,
            keyring=keyring,
        )
    access = AccessService(
        SqlCollectionStore(repo.engine), lambda: kb.snapshot.documents.values(), audit=audit
    )
    c = Container(
        settings,
        kb,
        retriever,
        answers,
        model,
        embedder,
        keyring,
        default_loaders(),
        audit=audit,
        access=access,
        encrypted_stores=[repo, encrypted_files(data_dir, keyring), auth.sealed_secrets],
        auth=auth,
        ask=AskService(answers, access, guarded.limiter, LateMetrics(lambda: c.metrics)),
        breaker=guarded.breaker,
        generation=guarded.limiter,
        metrics=build_metrics(settings),
        cache=cache,
        anomalies=AnomalyWatch(anomaly_policy(settings)),
        speech_to_text=build_speech_to_text(settings),
        text_to_speech=build_text_to_speech(settings),
    )
    guarded.breaker.publish()
    guarded.limiter.publish()
    return c


def guard_model(settings: Settings, model: ChatModel, metrics: Metrics) -> GuardedChatModel:
    """``model`` behind its circuit breaker, deadline, retries and generation queue."""
    m, cb = settings.models, settings.enterprise.circuit_breaker
    breaker = CircuitBreaker(
        m.llm_backend, fail_max=cb.fail_max, reset_timeout=cb.reset_timeout, metrics=metrics
    )
    limiter = GenerationLimiter(
        m.max_concurrent_generations, m.generation_queue, metrics=metrics, precheck=breaker.check
    )
    return GuardedChatModel(
        model,
        breaker=breaker,
        limiter=limiter,
        deadline_s=m.timeout_s,
        retry=RetryPolicy(m.retry_attempts, m.retry_backoff_s),
        metrics=metrics,
    )


def build_metrics(settings: Settings) -> Metrics:
    """Prometheus metrics in a registry of their own when monitoring is on, else in memory."""
    if not settings.enterprise.monitoring.enabled:
        return RecordingMetrics()
    from xnai.adapters.metrics.prometheus import PrometheusMetrics

    return PrometheusMetrics(settings.data_dir)


def build_cache(
    settings: Settings, on_change: Callable[[bool], None] | None = None
) -> Cache | None:
    """The shared cache on Redis; None when ``redis.url`` is empty."""
    r = settings.redis
    if not r.url:
        return None
    from xnai.adapters.cache.redis_cache import RedisCache

    return RedisCache(
        r.url,
        password=r.password.get_secret_value() or None,
        namespace=r.namespace,
        timeout=r.socket_timeout,
        retry_interval=r.retry_interval,
        on_change=on_change,
    )


def report_cache_health(c: Container, healthy: bool) -> None:
    """``xoe_component_health_status{component="redis"}`` after the cache changed state."""
    c.metrics.set("xoe_component_health_status", 1.0 if healthy else 0.0, component="redis")


def anomaly_policy(settings: Settings) -> AnomalyPolicy:
    """The anomaly detector's policy from ``enterprise.monitoring.anomaly_*``."""
    m = settings.enterprise.monitoring
    return AnomalyPolicy(
        bucket_s=m.anomaly_bucket_s,
        window=m.anomaly_window,
        min_samples=min(12, m.anomaly_window),
        threshold=m.anomaly_threshold,
        persistence=m.anomaly_persistence,
    )


def build_auditor(settings: Settings, keyring: KeyRing | None = None) -> Auditor:
    """The tamper-evident audit trail ``<data_dir>/audit/audit.jsonl`` (audit_logs key)."""
    from xnai.adapters.audit import JsonlAuditLog

    ring = keyring if keyring is not None else build_keyring(settings)
    return Auditor(JsonlAuditLog(settings.data_dir / "audit", ring))


def build_auth(
    settings: Settings, engine: Engine, audit: AuditSink, keyring: KeyRing | None
) -> AuthService:
    """Users and credentials in the database at ``engine`` (argon2id, TOTP, bundled list)."""
    from xnai.adapters.security.passwords import Argon2Hasher, CommonPasswords
    from xnai.adapters.security.totp import TotpCodes
    from xnai.adapters.storage.sql_identity import SqlIdentityRepository

    sec = settings.enterprise.security
    policy = AuthPolicy(
        session_timeout=sec.session_timeout,
        session_idle_timeout=sec.session_idle_timeout,
        failed_login_lockout=sec.failed_login_lockout,
        lockout_duration=sec.lockout_duration,
        password_min_length=sec.password_min_length,
        mfa_required=sec.mfa_required,
        issuer=settings.enterprise.name,
        context_words=(*CONTEXT_WORDS, *sec.password_context_words),
    )
    return AuthService(
        SqlIdentityRepository(engine),
        Argon2Hasher(),
        TotpCodes(),
        policy=policy,
        audit=audit,
        keyring=keyring,
        is_common=CommonPasswords(),
    )


def storage_outage_errors() -> tuple[type[Exception], ...]:
    """Errors of the database adapter that mean it cannot be reached now (refused or lost
    connections, a locked SQLite file, an exhausted pool): the API answers them with 503."""
    from sqlalchemy import exc

    return (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedder."""
    m = settings.models
    match m.embedder_backend:
        case "onnx":
            from xnai.adapters.embed.onnx_minilm import OnnxMiniLMEmbedder

            return OnnxMiniLMEmbedder(
                variant=m.embedder_variant,
                models_dir=settings.models_dir,
                max_seq_length=m.max_seq_length,
                batch_size=m.embed_batch_size,
                threads=m.embed_threads,
            )
        case "fake":
            from xnai.adapters.embed.fake import HashingEmbedder

            return HashingEmbedder()
    raise ConfigError(f"unknown models.embedder_backend {m.embedder_backend!r}")


def vector_index_factory(dim: int) -> Callable[[], VectorIndex]:
    """A factory of empty vector indexes."""
    from xnai.adapters.index.faiss_index import FaissVectorIndex

    return lambda: FaissVectorIndex(dim)


def lexical_index_factory(keyring: KeyRing | None = None) -> Callable[[], LexicalIndex]:
    """A factory of empty lexical indexes (saved encrypted when given a key ring)."""
    from xnai.adapters.index.bm25_index import Bm25LexicalIndex

    return lambda: Bm25LexicalIndex(keyring=keyring)


def key_file_path(settings: Settings) -> Path | None:
    """The master key file, or None when the key is given in the configuration."""
    sec = settings.enterprise.security
    if sec.master_key is not None and sec.master_key.get_secret_value().strip():
        return None
    if sec.master_key_file is not None:
        return settings.absolute(sec.master_key_file)
    return settings.data_dir / "keys" / "master.key"


def build_keyring(settings: Settings) -> RotatableKeyRing:
    """The key ring: from the configured key(s), else from the key file (made for a new
    data directory; missing for one that holds data is an error, never a silent new key)."""
    from xnai.adapters.security.keyring import FernetKeyRing

    sec = settings.enterprise.security
    path = key_file_path(settings)
    if path is None:
        assert sec.master_key is not None
        keys = sec.master_key.get_secret_value().split(",")
        return FernetKeyRing.from_keys(keys, enabled=sec.encryption_enabled)
    if not path.exists() and holds_data(settings):
        raise ConfigError(
            f"the data directory {settings.data_dir} holds data but the master key file "
            f"{path} is missing: restore it from your backup, or give the key in "
            "enterprise.security.master_key (XNAI_ENTERPRISE__SECURITY__MASTER_KEY). "
            "A new key is made only for a new data directory"
        )
    return FernetKeyRing.open(path, enabled=sec.encryption_enabled, create=True)


def holds_data(settings: Settings) -> bool:
    """True when the data directory or the database already holds anything."""
    from xnai.adapters.storage.sql import database_has_rows, sqlite_url

    data_dir = settings.data_dir
    markers = [
        data_dir / "index" / "CURRENT",
        data_dir / "knowledge" / "ingest_manifest.json",
        data_dir / "audit" / "audit.jsonl",
    ]
    if any(p.exists() for p in markers):
        return True
    if any(any((data_dir / d).glob("*")) for d in ("originals", "audit")):
        return True
    return database_has_rows(settings.storage.database_url or sqlite_url(data_dir))


def encrypted_files(data_dir: Path, keyring: KeyRing) -> Reencryptable:
    """The files under the data directory that are encrypted whole with the user_data key."""
    from xnai.adapters.index.bm25_index import ENCRYPTED_FILES
    from xnai.adapters.security.encrypted_files import EncryptedFiles

    patterns = [
        "knowledge/ingest_manifest.json",
        "originals/*",
        *(f"index/gen-*/{name}" for name in ENCRYPTED_FILES),
    ]
    return EncryptedFiles("files", data_dir, patterns, keyring, USER_DATA)


def model_label(settings: Settings) -> str:
    """A display name for the configured model before it is loaded."""
    m = settings.models
    match m.llm_backend:
        case "llama_cpp":
            return m.llm_path.stem if m.llm_path else m.llm_preset
        case "openai":
            return m.openai_model
    return "fake"


def model_path(settings: Settings) -> Path:
    """The GGUF file to load: the configured path or the assembled bundled preset."""
    if settings.models.llm_path is not None:
        path = settings.models.llm_path.expanduser()
        if not path.is_file():
            raise ConfigError(f"models.llm_path: no such file: {path}")
        return path
    return install_model(settings)


def install_model(settings: Settings, preset: str | None = None) -> Path:
    """Assemble a bundled model preset into the models directory and verify it."""
    from xnai.adapters.model_files import assemble

    return assemble(preset or settings.models.llm_preset, settings.models_dir)


def install_embedder(settings: Settings) -> Path | None:
    """Build the fp32 embedding model into the models directory if it is missing."""
    m = settings.models
    if m.embedder_backend != "onnx" or m.embedder_variant != "fp32":
        return None
    from xnai.adapters.embed.minilm_build import MODEL_FILENAME, build_minilm_onnx

    target = settings.models_dir / MODEL_FILENAME
    return target if target.is_file() else build_minilm_onnx(target)


def build_chat_model(settings: Settings) -> ChatModel:
    """The configured chat model, loaded."""
    m = settings.models
    match m.llm_backend:
        case "llama_cpp":
            from xnai.adapters.llm.llama_cpp import LlamaCppChatModel

            return LlamaCppChatModel(
                model_path(settings), n_ctx=m.n_ctx, n_threads=m.n_threads, n_batch=m.n_batch
            )
        case "openai":
            from xnai.adapters.llm.openai_http import OpenAIChatModel

            return OpenAIChatModel(
                m.openai_base_url,
                m.openai_model,
                m.openai_api_key.get_secret_value(),
                m.timeout_s,
                context_size=m.n_ctx,
            )
        case "fake":
            from xnai.adapters.llm.fake import FakeChatModel

            fault_file = settings.absolute(m.fake_fault_file) if m.fake_fault_file else None
            return FakeChatModel(context_size=m.n_ctx, fault_file=fault_file)
    raise ConfigError(f"unknown models.llm_backend {m.llm_backend!r}")


def build_speech_to_text(settings: Settings) -> SpeechToText | None:
    """Whisper of ``voice.stt_model``, loaded on first use; None when it is ``off``."""
    v = settings.voice
    if v.stt_model == "off":
        return None
    if v.stt_model == "tiny.en" and v.stt_language not in ("", "en"):
        raise ConfigError(
            f"voice.stt_language {v.stt_language!r} needs voice.stt_model = 'base' "
            "(tiny.en understands English only)"
        )
    return LazySpeechToText(partial(load_speech_to_text, settings), f"whisper-{v.stt_model}")


def load_speech_to_text(settings: Settings) -> SpeechToText:
    """The configured Whisper model, loaded (Whisper base is assembled and verified first)."""
    from xnai.adapters.voice.model_files import whisper_base_dir, whisper_tiny_en_dir
    from xnai.adapters.voice.whisper_stt import WhisperSpeechToText

    v = settings.voice
    if v.stt_model == "base":
        folder = whisper_base_dir(settings.models_dir)
    else:
        folder = whisper_tiny_en_dir()
    return WhisperSpeechToText(
        folder,
        name=f"whisper-{v.stt_model}",
        threads=v.stt_threads,
        language=v.stt_language or None,
        beam_size=v.stt_beam_size,
        max_seconds=v.max_audio_seconds,
    )


def build_text_to_speech(settings: Settings, backend: str | None = None) -> TextToSpeech | None:
    """Text to speech of ``backend`` (default ``voice.tts_backend``), sentence by sentence,
    loaded on first use; None when it is ``off``."""
    backend = backend or settings.voice.tts_backend
    if backend == "off":
        return None
    lazy = LazyTextToSpeech(partial(load_text_to_speech, settings, backend), backend)
    return SentenceSpeech(lazy)


def load_text_to_speech(settings: Settings, backend: str) -> TextToSpeech:
    """The voice of ``backend``, loaded. The bundled Piper voice falls back to espeak-ng
    when piper-tts or the voice package is not installed."""
    from xnai.adapters.voice.espeak_tts import EspeakTextToSpeech, espeak_binary
    from xnai.adapters.voice.kokoro_tts import KokoroTextToSpeech
    from xnai.adapters.voice.model_files import piper_voice_file
    from xnai.adapters.voice.piper_tts import PiperTextToSpeech

    v = settings.voice
    rate, threads = v.speaking_rate, v.tts_threads
    match backend:
        case "piper" if v.piper_voice is not None:
            return PiperTextToSpeech(settings.absolute(v.piper_voice), threads=threads, rate=rate)
        case "piper":
            try:
                return PiperTextToSpeech(piper_voice_file(), threads=threads, rate=rate)
            except ModelError as exc:
                if espeak_binary() is None:
                    raise
                log.warning("Piper is unavailable (%s); speaking with espeak-ng", exc)
                return EspeakTextToSpeech(v.espeak_voice, rate=rate)
        case "espeak":
            return EspeakTextToSpeech(v.espeak_voice, rate=rate)
        case "kokoro":
            model, voices = v.kokoro_model, v.kokoro_voices
            return KokoroTextToSpeech(
                settings.absolute(model) if model else None,
                settings.absolute(voices) if voices else None,
                voice=v.kokoro_voice,
                lang=v.kokoro_lang,
                rate=rate,
                threads=threads,
            )
    raise ConfigError(f"unknown voice.tts_backend {backend!r}")
