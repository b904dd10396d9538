"""The use-case services over the wired components: ingestion, retention, privacy,
compliance, key rotation, configuration audit and the scheduled jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

from xnai.config import TELEMETRY_OFF, Settings, redacted
from xnai.domain.cache import Cache
from xnai.domain.metrics import Metrics
from xnai.domain.ports import AuditSink, KeyRing, Loader, OriginalsStore, StateStore
from xnai.services.access import AccessService
from xnai.services.answer import AnswerService
from xnai.services.answer_bundles import AnswerBundles
from xnai.services.answer_cache import CachedAnswerService
from xnai.services.audit import Auditor
from xnai.services.auth import AuthService
from xnai.services.checkpoints import IngestCheckpoints
from xnai.services.compliance import ComplianceService
from xnai.services.compliance_facts import ComplianceFacts, CompliancePolicy
from xnai.services.config_audit import ConfigAudit
from xnai.services.filetype import ArchiveLimits
from xnai.services.ingestion import IngestionService, IngestLimits
from xnai.services.jobs import Job, PeriodicJobs
from xnai.services.keys import KeyRotation
from xnai.services.knowledge import KnowledgeBase
from xnai.services.privacy import PrivacyService
from xnai.services.retention import RetentionJob
from xnai.services.sources import MB
from xnai.services.subject_data import subject_data


def ingest_limits(settings: Settings) -> IngestLimits:
    """The configured suffixes, file size limit and archive expansion limits."""
    i = settings.ingest
    archive = ArchiveLimits(int(i.max_archive_mb * MB), i.max_archive_ratio, i.max_archive_members)
    return IngestLimits(tuple(i.suffixes), int(i.max_file_mb * MB), archive)


def build_checkpoints(settings: Settings, cache: Cache | None) -> IngestCheckpoints | None:
    """The ingest checkpoints (``<namespace>:snapshot:<collection>``), when Redis is
    configured."""
    if cache is None:
        return None
    return IngestCheckpoints(cache, settings.redis.snapshot_ttl)


def build_ingestion(
    settings: Settings,
    kb: KnowledgeBase,
    loaders: list[Loader],
    *,
    originals: OriginalsStore,
    audit: AuditSink,
    metrics: Metrics,
    checkpoints: IngestCheckpoints | None,
) -> IngestionService:
    """Ingestion of files and uploads with the loaders of ``loaders``."""
    from xnai.adapters.loaders.registry import loader_for

    def find_loader(path: Path) -> Loader:
        return loader_for(path, loaders)

    return IngestionService(
        kb,
        find_loader,
        ingest_limits(settings),
        originals=originals,
        audit=audit,
        metrics=metrics,
        checkpoints=checkpoints,
    )


def forget_cached_answers(answers: AnswerService) -> Callable[[], int]:
    """Drops every cached answer and says how many; nothing to drop without a cache."""
    if isinstance(answers, CachedAnswerService):
        return answers.forget
    return lambda: 0


def build_retention(
    settings: Settings,
    kb: KnowledgeBase,
    auth: AuthService,
    audit: AuditSink,
    state: StateStore,
    bundles: AnswerBundles | None = None,
) -> RetentionJob:
    """The retention job over documents, credentials, the audit log and answer bundles."""
    return RetentionJob(
        kb,
        settings.enterprise.compliance.data_retention_days,
        audit,
        purge_credentials=auth.purge_stale,
        trim_audit=audit.trim if isinstance(audit, Auditor) else lambda _cutoff: 0,
        purge_answers=bundles.purge_before if bundles is not None else lambda _cutoff: 0,
        remember=partial(state.set, "last_run:retention"),
    )


def build_privacy(
    kb: KnowledgeBase,
    auth: AuthService,
    audit: AuditSink,
    originals: OriginalsStore,
    access: AccessService,
    forget_cached: Callable[[], int],
    bundles: AnswerBundles | None = None,
) -> PrivacyService:
    """Data subject export and erasure over every store that holds personal data."""
    data = subject_data(auth, audit, originals, access, forget_cached, bundles)
    return PrivacyService(kb, data, audit)


def compliance_policy(settings: Settings) -> CompliancePolicy:
    """The configured values the compliance checks compare against."""
    sec, comp = settings.enterprise.security, settings.enterprise.compliance
    return CompliancePolicy(
        key_max_age_days=sec.key_max_age_days,
        retention_days=comp.data_retention_days,
        mfa_required=sec.mfa_required,
        bind_host=settings.server.host,
        behind_tls_proxy=settings.server.behind_tls_proxy,
        backups_dir=settings.absolute(comp.backups_dir) if comp.backups_dir is not None else None,
        telemetry_off=TELEMETRY_OFF,
    )


def build_compliance(
    settings: Settings,
    *,
    keyring: KeyRing,
    key_rotation: KeyRotation,
    audit: AuditSink,
    auth: AuthService,
    retention: RetentionJob,
    state: StateStore,
) -> ComplianceService:
    """Compliance self-audits over this installation's live state."""
    facts = ComplianceFacts(
        partial(compliance_policy, settings),
        keyring=keyring,
        key_rotation=key_rotation,
        audit=audit,
        users=auth,
        retention=retention,
        state=state,
    )
    return ComplianceService(facts, audit)


def scheduled_jobs(
    settings: Settings, compliance: ComplianceService, retention: RetentionJob, state: StateStore
) -> PeriodicJobs:
    """The server's periodic jobs: each configured framework's audit and retention."""
    comp = settings.enterprise.compliance
    every = timedelta(hours=comp.audit_interval_hours)
    jobs = [
        Job(f"compliance:{name}", every, partial(compliance.run, name)) for name in comp.frameworks
    ]
    jobs.append(Job("retention", timedelta(days=1), retention.run))
    return PeriodicJobs(
        jobs,
        last_run=lambda name: state.get(f"last_run:{name}"),
        remember=lambda name, stamp: state.set(f"last_run:{name}", stamp),
    )


def build_config_audit(settings: Settings, state: StateStore, audit: AuditSink) -> ConfigAudit:
    """Configuration changes as audit events; the settings are read (redacted) at each call."""
    return ConfigAudit(partial(redacted, settings), state, audit)
