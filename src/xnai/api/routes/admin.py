"""Administration: compliance self-audits, retention, audit verification, data subject rights."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from xnai.api.deps import AuditDep, ComplianceDep, PrivacyDep, RetentionDep
from xnai.api.openapi import SIGNED_IN, errors
from xnai.api.security import PrincipalDep, require
from xnai.domain.errors import NotReadyError
from xnai.domain.rbac import Permission
from xnai.services.audit import Auditor

router = APIRouter(tags=["admin"], responses=SIGNED_IN)
ADMIN = Permission.ADMIN_SYSTEM
MANAGE = Permission.MANAGE_USERS


@router.get(
    "/v1/admin/compliance/{framework}", dependencies=[require(ADMIN)], responses=errors(404)
)
async def compliance(
    framework: str, principal: PrincipalDep, audits: ComplianceDep
) -> dict[str, Any]:
    """Run the self-audit of one framework (gdpr, soc2, ccpa, iso27001) now."""
    report = await run_in_threadpool(audits.run, framework, user_id=principal.user_id)
    return report.as_dict()


@router.post("/v1/admin/retention", dependencies=[require(ADMIN)])
async def retention(principal: PrincipalDep, job: RetentionDep) -> dict[str, Any]:
    """Enforce the retention period now (the server also runs it daily)."""
    report = await run_in_threadpool(job.run, user_id=principal.user_id)
    return report.as_dict()


@router.get("/v1/admin/audit/verify", dependencies=[require(ADMIN)])
async def audit_verify(audit: AuditDep) -> dict[str, Any]:
    """Check the audit log's HMAC chain and anchor."""
    if not isinstance(audit, Auditor):
        raise NotReadyError("no audit log is configured")
    result = await run_in_threadpool(audit.verify)
    return {
        "ok": result.ok,
        "lines": result.lines,
        "bad_line": result.bad_line,
        "reason": result.reason,
        "result": result.describe(),
    }


@router.get(
    "/v1/admin/users/{username}/export", dependencies=[require(MANAGE)], responses=errors(404)
)
async def export_user(
    username: str, principal: PrincipalDep, privacy: PrivacyDep
) -> dict[str, Any]:
    """Everything stored about a user, as JSON (right of access and portability)."""
    return await run_in_threadpool(privacy.export, username, actor=principal.user_id)


@router.post(
    "/v1/admin/users/{username}/erase",
    dependencies=[require(MANAGE)],
    responses=errors(404, 409),
)
async def erase_user(username: str, principal: PrincipalDep, privacy: PrivacyDep) -> dict[str, Any]:
    """Erase a user's documents everywhere and their account; pseudonymise their audit lines."""
    report = await run_in_threadpool(privacy.erase, username, actor=principal.user_id)
    return report.as_dict()
