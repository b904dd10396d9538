"""Privileged changes are audited before they are made: with an unwritable audit trail each
one is refused with AuditUnavailableError and nothing changes; a change that fails after
its event was written is recorded as failed; an ingest stopped part way has an event for
every document it committed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.broken_audit import AuditTrail
from tests.clock import WALL_START, FakeClock
from tests.memory_wiring import MemoryServices, memory_services
from xnai.adapters.memory import MemoryCollectionStore, MemoryKeyRing, RecordingAudit
from xnai.adapters.memory.identity import (
    FastPasswordHasher,
    MemoryUserRepository,
    PlainTotpCodes,
)
from xnai.domain.access import AccessScope, Collection, default_collection
from xnai.domain.errors import AuditUnavailableError, AuthenticationError, ConflictError
from xnai.domain.models import SearchMode
from xnai.domain.rbac import LOCAL_ADMIN, Principal, Role
from xnai.services.access import AccessService
from xnai.services.auth import AuthService
from xnai.services.identity import name_key
from xnai.services.keys import KeyRotation
from xnai.services.knowledge import ChunkingPolicy

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase to remember"
REFUSED = "the audit trail cannot be written"


@pytest.fixture
def trail(tmp_path: Path) -> AuditTrail:
    return AuditTrail(tmp_path / "audit")


def assert_refused(trail: AuditTrail, change: Callable[[], object]) -> None:
    """``change`` fails with AuditUnavailableError and writes nothing to the trail."""
    before = len(trail.lines())
    with trail.broken(), pytest.raises(AuditUnavailableError) as refused:
        change()
    message = str(refused.value)
    assert message.startswith(REFUSED) and "nothing was changed" in message
    assert str(trail.directory) not in message  # file names stay in the server's log
    assert len(trail.lines()) == before


# -- users and credentials -----------------------------------------------------------------


@dataclass
class People:
    auth: AuthService
    clock: FakeClock
    alice: Principal  # signed in with a session, holds an API key
    key_id: str


@pytest.fixture
def people(trail: AuditTrail) -> People:
    clock = FakeClock(WALL_START)
    auth = AuthService(
        MemoryUserRepository(),
        FastPasswordHasher(),
        PlainTotpCodes(),
        audit=trail.auditor,
        clock=clock,
        keyring=MemoryKeyRing("people"),
    )
    auth.create_user(LOCAL_ADMIN, "root", Role.ADMIN, PASSWORD)
    auth.create_user(LOCAL_ADMIN, "alice", Role.VIEWER, PASSWORD)
    auth.create_user(LOCAL_ADMIN, "bob", Role.VIEWER, PASSWORD)
    auth.create_user(LOCAL_ADMIN, "erin", Role.VIEWER, PASSWORD)
    auth.set_enabled(LOCAL_ADMIN, "erin", False)
    for _ in range(auth.policy.failed_login_lockout):  # bob is locked out
        with pytest.raises(AuthenticationError):
            auth.login("bob", "not the password at all")
    token = auth.login("alice", PASSWORD).token
    alice = auth.authenticate(token).principal
    record, _ = auth.create_api_key(alice, "reports")
    auth.begin_mfa_enrolment(alice, PASSWORD)  # a secret waiting for its first code
    return People(auth, clock, alice, record.key_id)


def identity_state(auth: AuthService) -> list[Any]:
    """Every user with their sessions, API keys and failed-login state."""
    repo = auth.repo
    return [
        (
            u,
            repo.sessions_of(u.user_id),
            repo.api_keys(u.user_id),
            repo.failure_state(name_key(u.username)),
        )
        for u in repo.users()
    ]


def confirm_mfa(p: People) -> None:
    user = p.auth.repo.user(p.alice.user_id)
    assert user is not None and user.mfa_secret is not None and p.auth.keyring is not None
    plain = p.auth.keyring.decrypt("user_data", user.mfa_secret).decode()
    code = PlainTotpCodes().code_at(plain, p.clock.now)
    p.auth.confirm_mfa_enrolment(p.alice, code)


USER_CHANGES: dict[str, Callable[[People], object]] = {
    "create user": lambda p: p.auth.create_user(LOCAL_ADMIN, "dave", Role.EDITOR, PASSWORD),
    "change role": lambda p: p.auth.set_role(LOCAL_ADMIN, "alice", Role.EDITOR),
    "disable user": lambda p: p.auth.set_enabled(LOCAL_ADMIN, "alice", False),
    "enable user": lambda p: p.auth.set_enabled(LOCAL_ADMIN, "erin", True),
    "reset password": lambda p: p.auth.reset_password(LOCAL_ADMIN, "alice", NEW_PASSWORD),
    "unlock": lambda p: p.auth.unlock(LOCAL_ADMIN, "bob"),
    "reset MFA": lambda p: p.auth.reset_mfa(LOCAL_ADMIN, "alice"),
    "delete user": lambda p: p.auth.erase_account(LOCAL_ADMIN, "alice"),
    "issue API key": lambda p: p.auth.create_api_key(p.alice, "another"),
    "revoke API key": lambda p: p.auth.revoke_api_key(p.alice, p.key_id),
    "change own password": lambda p: p.auth.change_password(p.alice, PASSWORD, NEW_PASSWORD),
    "enrol in MFA": confirm_mfa,
    "log out": lambda p: p.auth.logout(p.alice),
}


def test_user_creation_is_refused_when_audit_cannot_be_written(
    people: People, trail: AuditTrail
) -> None:
    assert_refused(trail, lambda: USER_CHANGES["create user"](people))
    assert people.auth.repo.user_by_name("dave") is None
    USER_CHANGES["create user"](people)  # the trail is back: the same request works
    assert people.auth.repo.user_by_name("dave") is not None
    assert trail.lines()[-1]["event_type"] == "user_created"


@pytest.mark.parametrize("change", list(USER_CHANGES))
def test_user_and_credential_changes_are_refused_when_audit_cannot_be_written(
    people: People, trail: AuditTrail, change: str
) -> None:
    before = identity_state(people.auth)
    assert_refused(trail, lambda: USER_CHANGES[change](people))
    assert identity_state(people.auth) == before
    USER_CHANGES[change](people)  # and it is made once the trail can be written again
    assert identity_state(people.auth) != before


def test_a_change_refused_after_its_event_is_recorded_as_failed(people: People) -> None:
    root = people.auth.repo.user_by_name("root")
    assert root is not None
    with pytest.raises(ConflictError, match="last enabled admin"):
        people.auth.set_role(LOCAL_ADMIN, "root", Role.VIEWER)
    attempted, failed = people.auth.audit.events[-2:]  # type: ignore[union-attr]
    assert (attempted["event_type"], attempted["success"]) == ("role_changed", True)
    assert (failed["event_type"], failed["success"]) == ("role_changed", False)
    assert "last enabled admin" in failed["details"]["error"]
    assert people.auth.repo.user(root.user_id).role is Role.ADMIN  # type: ignore[union-attr]


# -- collections -----------------------------------------------------------------------------


@pytest.fixture
def access(trail: AuditTrail) -> AccessService:
    store = MemoryCollectionStore([default_collection(), Collection("empty", "nothing yet")])
    service = AccessService(store, lambda: [], audit=trail.auditor)
    service.create("finance", readable_users=("alice",), actor="root")
    return service


COLLECTION_CHANGES: dict[str, Callable[[AccessService], object]] = {
    "grant": lambda a: a.grant("finance", roles=["editor"], users=["bob"], write=True),
    "revoke": lambda a: a.revoke("finance", users=["alice"]),
    "create": lambda a: a.create("legal", readable_roles=["viewer"]),
    "remove": lambda a: a.remove("empty"),
}


def test_grant_is_refused_when_audit_cannot_be_written(
    access: AccessService, trail: AuditTrail
) -> None:
    before = access.store.get("finance")
    assert_refused(trail, lambda: access.grant("finance", users=["bob"], write=True))
    assert access.store.get("finance") == before
    assert not access.collections()["finance"].writable_by(Principal("u_b", "bob", Role.VIEWER))


@pytest.mark.parametrize("change", list(COLLECTION_CHANGES))
def test_collection_changes_are_refused_when_audit_cannot_be_written(
    access: AccessService, trail: AuditTrail, change: str
) -> None:
    before = sorted(access.store.list(), key=lambda c: c.name)
    assert_refused(trail, lambda: COLLECTION_CHANGES[change](access))
    assert sorted(access.store.list(), key=lambda c: c.name) == before
    COLLECTION_CHANGES[change](access)
    assert sorted(access.store.list(), key=lambda c: c.name) != before


# -- documents -------------------------------------------------------------------------------


@pytest.fixture
def library(tmp_path: Path, trail: AuditTrail) -> Iterator[MemoryServices]:
    services = memory_services(tmp_path / "knowledge")
    services.ingestion.audit = trail.auditor
    yield services


def write_library(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"note{i:03d}.md"
        path.write_text(f"# Note {i}\n\nThe valve {i} of turbine {i * 7} is checked weekly.\n")
        paths.append(path)
    return paths


def test_document_deletion_is_refused_when_audit_cannot_be_written(
    library: MemoryServices, trail: AuditTrail, tmp_path: Path
) -> None:
    (path,) = write_library(tmp_path / "lib", 1)
    library.ingestion.ingest_files([path], user="tester")
    generation = library.kb.repo.current_generation()
    assert_refused(trail, lambda: library.ingestion.remove_document(str(path)))
    assert library.kb.find(str(path)) is not None
    assert library.kb.repo.current_generation() == generation
    hits = library.retriever.search(
        "valve turbine", mode=SearchMode.HYBRID, top_k=1, scope=AccessScope.everything()
    )
    assert hits  # still in every index
    doc = library.ingestion.remove_document(str(path))
    assert library.kb.find(str(path)) is None
    event = trail.lines()[-1]
    assert event["event_type"] == "delete" and event["details"]["doc_id"] == doc.doc_id


def test_ingest_is_refused_when_audit_cannot_be_written(
    library: MemoryServices, trail: AuditTrail, tmp_path: Path
) -> None:
    paths = write_library(tmp_path / "lib", 3)
    assert_refused(trail, lambda: library.ingestion.ingest_files(paths, user="tester"))
    assert library.kb.repo.documents() == [] and library.kb.repo.current_generation() == 0
    report = library.ingestion.ingest_files(paths, user="tester")  # recovery tidies up
    assert len(report.added) == 3 and report.generation == 1


class Stopped(Exception):
    """The process dies here."""


def test_an_ingest_stopped_after_k_commits_has_audited_exactly_their_documents(
    tmp_path: Path,
) -> None:
    services = memory_services(tmp_path / "knowledge")
    services.kb.chunking = ChunkingPolicy(max_tokens=40, overlap=0)
    services.kb.commit_every_chunks = 3
    paths = write_library(tmp_path / "lib", 40)

    def die_after_three_commits(_: int) -> None:
        if services.kb.repo.current_generation() >= 3:
            raise Stopped

    with pytest.raises(Stopped):
        services.ingestion.ingest_files(paths, user="tester", progress=die_after_three_commits)
    committed = {d.source for d in services.kb.repo.documents()}
    assert 0 < len(committed) < len(paths)
    commits = [e for e in services.audit.events if e["event_type"] == "ingest"]
    assert [e["action"] for e in commits] == ["commit"] * 3  # no run summary: it died
    assert [e["details"]["generation"] for e in commits] == [1, 2, 3]
    audited = [s for e in commits for s in e["details"]["added"]]
    assert sorted(audited) == sorted(committed)


# -- keys ------------------------------------------------------------------------------------


class Probe:
    """A store that counts its re-encryptions."""

    name = "probe"

    def __init__(self) -> None:
        self.calls = 0

    def reencrypt(self) -> int:
        self.calls += 1
        return 0


@contextmanager
def no_lock() -> Iterator[None]:
    yield


def test_key_rotation_is_refused_when_audit_cannot_be_written(trail: AuditTrail) -> None:
    ring, probe = MemoryKeyRing("rotation"), Probe()
    rotation = KeyRotation(ring, [probe], no_lock, trail.auditor)
    before = ring.list_keys()
    assert_refused(trail, lambda: rotation.rotate(user_id="root"))
    assert ring.list_keys() == before and probe.calls == 0
    report = rotation.rotate(user_id="root")
    assert probe.calls == 1 and report.key_id != before[0].key_id
    begin, done = trail.lines()[-2:]
    assert (begin["action"], done["action"]) == ("rotate_begin", "rotate")


def test_recording_sinks_keep_working(tmp_path: Path) -> None:
    """Services over the in-memory recording sink behave as before (no trail to lose)."""
    services = memory_services(tmp_path)
    assert isinstance(services.audit, RecordingAudit)
    (path,) = write_library(tmp_path / "lib", 1)
    services.ingestion.ingest_files([path], user="tester")
    services.ingestion.remove_document(str(path))
    assert [e["action"] for e in services.audit.events] == ["commit", "files", "delete"]
