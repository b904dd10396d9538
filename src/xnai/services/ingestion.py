"""Ingestion: files and uploads into a collection, and document removal, each measured,
audited and checkpointed.

Every commit is audited before it is made: the ``ingest`` event of each batch (action
``commit``) names the documents it adds or replaces, the ``delete`` event the document it
removes. When the event cannot be written the commit is refused, so an ingest stopped part
way has an event for every document it committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from xnai.domain.errors import StorageFullError
from xnai.domain.metrics import Metrics
from xnai.domain.models import Document, IngestReport
from xnai.domain.ports import AuditSink, Loader, OriginalsStore
from xnai.domain.rbac import Principal
from xnai.services.access import into_collection
from xnai.services.audit import audited, log_follow_up
from xnai.services.checkpoints import IngestCheckpoints
from xnai.services.disk import refused_when_full
from xnai.services.filetype import ArchiveLimits
from xnai.services.knowledge import (
    CommitGuard,
    CommitPlan,
    KnowledgeBase,
    Progress,
    find_documents,
    sha256_bytes,
)
from xnai.services.sources import file_sources, passes_checks, upload_sources


@dataclass(frozen=True, slots=True)
class _Run:
    """Who ingests into which collection, and how: what each commit's event names."""

    user: str
    principal: Principal | None
    collection: str
    via: str
    source_ip: str | None = None

    @property
    def actor(self) -> str:
        return self.principal.user_id if self.principal else self.user


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """What one ingested file may be: its suffix, its size and the expansion of archives."""

    suffixes: tuple[str, ...]
    max_file_bytes: int
    archive: ArchiveLimits


class IngestionService:
    """Ingests files and uploads, removes documents; every run is a metric, an audit event
    and (with a cache) a checkpoint of its collection."""

    def __init__(
        self,
        kb: KnowledgeBase,
        loader_for: Callable[[Path], Loader],
        limits: IngestLimits,
        *,
        originals: OriginalsStore,
        audit: AuditSink,
        metrics: Metrics,
        checkpoints: IngestCheckpoints | None = None,
    ) -> None:
        self.kb = kb
        self.loader_for = loader_for
        self.limits = limits
        self.originals = originals
        self.audit = audit
        self.metrics = metrics
        self.checkpoints = checkpoints

    @property
    def max_file_bytes(self) -> int:
        """The configured size limit of one ingested file."""
        return self.limits.max_file_bytes

    @property
    def archive_limits(self) -> ArchiveLimits:
        """The configured expansion limits of ZIP-based documents (.docx)."""
        return self.limits.archive

    def document_files(self, paths: Sequence[Path]) -> list[Path]:
        """Files to ingest under ``paths`` (folders recursively, supported types)."""
        return find_documents(paths, self.limits.suffixes)

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
            files,
            self.loader_for,
            self.max_file_bytes,
            self.kb.is_unchanged,
            self.archive_limits,
        )
        placed = into_collection(sources, collection, self.kb.repo.document_by_source)
        run = _Run(user, principal, collection, "files")
        report = self.kb.ingest(placed, user=user, progress=progress, guard=self._commit_guard(run))
        self._finish(report, run, started)
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
        kept: list[str] = []
        try:
            with refused_when_full("the uploaded files were not added"):
                for name, data in uploads:
                    # Only files that pass the size, type and content checks are worth keeping.
                    if passes_checks(
                        name, data, self.loader_for, self.max_file_bytes, self.archive_limits
                    ):
                        self.originals.keep(name, data)
                        kept.append(sha256_bytes(data))
                if collection != "default":
                    uploads = [(f"{collection}/{name}", data) for name, data in uploads]
                sources = upload_sources(
                    uploads, self.loader_for, self.max_file_bytes, self.archive_limits
                )
                placed = into_collection(sources, collection, self.kb.repo.document_by_source)
                run = _Run(user, principal, collection, "upload", source_ip)
                report = self.kb.ingest(placed, user=user, guard=self._commit_guard(run))
        except StorageFullError:
            self._forget_uncommitted(kept)
            raise
        self._finish(report, run, started)
        return report

    def _forget_uncommitted(self, digests: Sequence[str]) -> None:
        """Remove the originals just kept whose document was not committed (a full disk
        stopped the upload): an upload leaves nothing behind that the library does not hold."""
        committed = {d.sha256 for d in self.kb.repo.documents()}
        for digest in dict.fromkeys(digests):
            if digest not in committed:
                self.originals.forget(digest)

    def remove_document(
        self,
        ref: str,
        *,
        principal: Principal | None = None,
        source_ip: str | None = None,
    ) -> Document:
        """Delete one document (by id or source) from every index, as a ``delete`` audit
        event of ``principal`` written before the commit; NotFoundError when unknown,
        AuditUnavailableError (and nothing deleted) when the event cannot be written."""

        def guard(plan: CommitPlan) -> AbstractContextManager[None]:
            doc = plan.removed[0]
            return audited(
                self.audit,
                "delete",
                action="delete",
                resource=f"document/{doc.doc_id}",
                user_id=principal.user_id if principal else None,
                source_ip=source_ip,
                details={
                    "doc_id": doc.doc_id,
                    "source": doc.source,
                    "chunks_removed": len(doc.chunk_ids),
                    "generation": plan.generation,
                    "permission": "delete:documents",
                },
            )

        return self.kb.remove(ref, guard=guard)

    def _commit_guard(self, run: _Run) -> CommitGuard:
        """The ``ingest`` event of one batch, written before the batch is committed."""

        def guard(plan: CommitPlan) -> AbstractContextManager[None]:
            return audited(
                self.audit,
                "ingest",
                action="commit",
                resource=f"collection/{run.collection}",
                user_id=run.actor,
                source_ip=run.source_ip,
                details={
                    "ingested_by": run.user,
                    "via": run.via,
                    "added": [d.source for d in plan.added],
                    "replaced": [d.source for d in plan.replaced],
                    "chunks_added": plan.chunks_added,
                    "generation": plan.generation,
                },
            )

        return guard

    def _finish(self, report: IngestReport, run: _Run, started: float) -> None:
        """Measure, audit and checkpoint one ingest run."""
        self._measure(report)
        self._audit(report, run)
        self._checkpoint(report, run.actor, run.collection, started)

    def _measure(self, report: IngestReport) -> None:
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

    def _audit(self, report: IngestReport, run: _Run) -> None:
        """The run's summary; its commits were audited one by one before they were made."""
        log_follow_up(
            self.audit,
            "ingest",
            action=run.via,
            resource=f"collection/{run.collection}",
            user_id=run.actor,
            success=report.ok,
            severity="info" if report.ok else "warning",
            source_ip=run.source_ip,
            details={
                "ingested_by": run.user,
                "added": list(report.added),
                "replaced": list(report.replaced),
                "unchanged": len(report.unchanged),
                "failed": [list(f) for f in report.failed],
                "chunks_added": report.chunks_added,
                "generation": report.generation,
            },
        )

    def _checkpoint(
        self, report: IngestReport, user_id: str, collection: str, started: float
    ) -> None:
        """Record the checkpoint of ``collection`` after an ingest run."""
        if self.checkpoints is None:
            return
        docs = self.kb.snapshot.documents.values()
        self.checkpoints.record(
            collection,
            user_id=user_id,
            documents_count=sum(1 for d in docs if d.collection == collection),
            ingestion_time=time.perf_counter() - started,
            generation=report.generation,
            added=len(report.added),
            replaced=len(report.replaced),
            failed=len(report.failed),
        )
