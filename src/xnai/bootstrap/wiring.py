"""``build``: wire adapters into services according to the settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial

from xnai.bootstrap.answers import build_answer_bundles, build_bundle_store
from xnai.bootstrap.container import Container
from xnai.bootstrap.models import build_embedder, guard_model, lazy_chat_model, model_label
from xnai.bootstrap.observability import build_anomalies, build_cache, build_metrics
from xnai.bootstrap.security import (
    build_auditor,
    build_auth,
    build_keyring,
    encrypted_files,
    key_rotation,
)
from xnai.bootstrap.storage import (
    build_access,
    build_knowledge,
    build_originals,
    build_repository,
    build_state,
    prepare_data_dir,
)
from xnai.bootstrap.use_cases import (
    build_checkpoints,
    build_compliance,
    build_config_audit,
    build_ingestion,
    build_privacy,
    build_retention,
    forget_cached_answers,
    scheduled_jobs,
)
from xnai.bootstrap.voice import build_speech_to_text, build_text_to_speech
from xnai.config import Settings, disable_telemetry
from xnai.domain.cache import Cache
from xnai.domain.layout import DataLayout
from xnai.domain.metrics import Metrics
from xnai.domain.models import SearchMode
from xnai.domain.ports import AuditSink, ChatModel, KeyRing
from xnai.services.answer import AnswerPolicy, AnswerService
from xnai.services.answer_cache import CachedAnswerService, IndexVersion
from xnai.services.ask import AskService
from xnai.services.knowledge import KnowledgeBase
from xnai.services.metrics import report_health
from xnai.services.resilience import LateMetrics
from xnai.services.retrieval import RetrievalPolicy, Retriever
from xnai.services.startup import Readiness, Startup


def prepare_process() -> None:
    """Process-wide setup of entrypoints: telemetry off, owner-only files."""
    disable_telemetry()
    os.umask(0o077)


def answer_policy(settings: Settings) -> AnswerPolicy:
    """How answers are retrieved and generated, from ``[rag]`` and ``[models]``."""
    return AnswerPolicy(
        mode=SearchMode(settings.rag.mode),
        top_k=settings.rag.top_k,
        max_tokens=settings.models.max_tokens,
        temperature=settings.models.temperature,
        min_score=settings.rag.min_score,
        context_tokens=settings.rag.context_tokens,
        evidence=settings.rag.evidence,
        evidence_tokens=settings.rag.evidence_tokens,
    )


def build_answers(
    settings: Settings,
    retriever: Retriever,
    model: ChatModel,
    audit: AuditSink,
    *,
    kb: KnowledgeBase,
    cache: Cache | None,
    keyring: KeyRing,
    metrics: Callable[[], Metrics],
) -> AnswerService:
    """The answer service, behind the shared answer cache when one is configured."""
    answers = AnswerService(retriever, model, answer_policy(settings), audit=audit)
    if cache is None or settings.redis.answer_cache_ttl <= 0:
        return answers
    return CachedAnswerService(
        answers,
        cache,
        index_version=IndexVersion(lambda: kb.snapshot),
        model_id=f"{settings.models.llm_backend}:{model_label(settings)}",
        ttl=settings.redis.answer_cache_ttl,
        metrics=metrics,
        keyring=keyring,
    )


def build(settings: Settings) -> Container:
    """Wire adapters into services according to ``settings``."""
    disable_telemetry()
    # Read once by the OpenMP runtime when llama.cpp loads; an explicit variable wins.
    os.environ.setdefault("OMP_WAIT_POLICY", settings.models.omp_wait_policy.upper())
    from xnai.adapters.loaders.registry import default_loaders

    layout = DataLayout(settings.data_dir)
    prepare_data_dir(layout)
    keyring = build_keyring(settings)
    embedder = build_embedder(settings)
    repo = build_repository(settings, keyring)
    kb = build_knowledge(settings, repo, keyring, embedder)
    retriever = Retriever(
        lambda: kb.snapshot,
        embedder,
        RetrievalPolicy(candidates=settings.rag.candidates, rrf_k=settings.rag.rrf_k),
    )
    model = lazy_chat_model(settings)
    audit = build_auditor(settings, keyring, repo)
    auth = build_auth(settings, repo, audit, keyring)
    # Components report to the container's metrics even when a test replaces them.
    metrics = LateMetrics(lambda: c.metrics)
    guarded = guard_model(settings, model, metrics)
    cache = build_cache(settings, partial(report_health, metrics, "redis"))
    answers = build_answers(
        settings,
        retriever,
        guarded,
        audit,
        kb=kb,
        cache=cache,
        keyring=keyring,
        metrics=lambda: c.metrics,
    )
    access = build_access(repo, kb, audit, auth.user_id_of)
    state = build_state(layout)
    bundle_store = build_bundle_store(layout, keyring)
    bundles = build_answer_bundles(settings, bundle_store, keyring, kb, state)
    stores = [repo, encrypted_files(layout, keyring), auth.sealed_secrets, bundle_store]
    loaders = default_loaders()
    originals = build_originals(layout, keyring, kb.store)
    checkpoints = build_checkpoints(settings, cache)
    forget_cached = forget_cached_answers(answers)
    rotation = key_rotation(settings, keyring, stores, kb.store, audit)
    retention = build_retention(settings, kb, auth, audit, state, bundles)
    compliance = build_compliance(
        settings,
        keyring=keyring,
        key_rotation=rotation,
        audit=audit,
        auth=auth,
        retention=retention,
        state=state,
    )
    readiness = Readiness()
    c = Container(
        settings=settings,
        kb=kb,
        retriever=retriever,
        answers=answers,
        model=model,
        embedder=embedder,
        keyring=keyring,
        loaders=loaders,
        readiness=readiness,
        startup=Startup(kb, embedder, model, readiness),
        audit=audit,
        metrics=build_metrics(settings),
        encrypted_stores=stores,
        key_rotation=rotation,
        access=access,
        auth=auth,
        ask=AskService(answers, access, guarded.limiter, metrics, bundles=bundles),
        answer_bundles=bundles,
        breaker=guarded.breaker,
        generation=guarded.limiter,
        cache=cache,
        checkpoints=checkpoints,
        forget_cached_answers=forget_cached,
        anomalies=build_anomalies(settings),
        speech_to_text=build_speech_to_text(settings),
        text_to_speech=build_text_to_speech(settings),
        ingestion=build_ingestion(
            settings,
            kb,
            loaders,
            originals=originals,
            audit=audit,
            metrics=metrics,
            checkpoints=checkpoints,
        ),
        originals=originals,
        state=state,
        config_audit=build_config_audit(settings, state, audit),
        retention=retention,
        privacy=build_privacy(kb, auth, audit, originals, access, forget_cached, bundles),
        compliance=compliance,
        scheduled_jobs=partial(scheduled_jobs, settings, compliance, retention, state),
    )
    guarded.breaker.publish()
    guarded.limiter.publish()
    return c
