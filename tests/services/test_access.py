"""Collection rules, access scopes and the admin operations of AccessService."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.memory_wiring import MemoryServices
from xnai.adapters.memory.access import MemoryCollectionStore
from xnai.adapters.memory.audit import RecordingAudit
from xnai.domain.access import AccessScope, Collection, RowFilter
from xnai.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from xnai.domain.rbac import LOCAL_ADMIN, Principal, Role
from xnai.services.access import AccessService, into_collection
from xnai.services.knowledge import Source, sha256_bytes

ALICE = Principal("u-alice", "alice", Role.VIEWER)
BOB = Principal("u-bob", "bob", Role.EDITOR)
VIEWER = Principal("u-vic", "vic", Role.VIEWER)
SYSTEM = Principal("u-sys", "robot", Role.SYSTEM)
ADMIN = Principal("u-root", "root", Role.ADMIN)


def source(name: str, text: str, collection: str = "default") -> Source:
    data = text.encode()
    return Source(
        name, sha256_bytes(data), len(data), name, text, "text/plain", "t", "1", collection
    )


@pytest.fixture
def access(services: MemoryServices) -> AccessService:
    return services.access


def test_default_collection_is_readable_by_every_role(access: AccessService) -> None:
    for who in (ALICE, BOB, VIEWER, SYSTEM, ADMIN):
        assert access.can_read(who, "default")
    assert access.scope_for(VIEWER) == AccessScope(frozenset({"default"}), "u-vic")


def test_admins_read_everything_even_unknown_collections(access: AccessService) -> None:
    scope = access.scope_for(ADMIN)
    assert scope.unrestricted and scope.user_id == "u-root"
    assert access.can_read(ADMIN, "no-such-collection")
    assert access.scope_for(LOCAL_ADMIN).unrestricted


def test_a_new_collection_is_readable_by_admins_only(access: AccessService) -> None:
    access.create("secret")
    assert not any(access.can_read(p, "secret") for p in (ALICE, BOB, VIEWER, SYSTEM))
    assert access.can_read(ADMIN, "secret")
    assert "secret" not in (access.scope_for(BOB).collections or ())


def test_unknown_collection_is_denied_to_everyone_but_admins(access: AccessService) -> None:
    assert not access.can_read(ALICE, "ghost")
    assert not AccessScope.only(["default"]).allows("ghost")
    assert AccessScope.everything().allows("ghost")


def test_users_match_by_user_id_only(access: AccessService) -> None:
    access.create("a", readable_users=["alice"])  # a name: whoever holds it later is no match
    access.create("b", readable_users=["u-bob"])
    assert access.scope_for(ALICE).collections == frozenset({"default"})
    assert access.scope_for(BOB).collections == frozenset({"default", "b"})
    # A role grant covers everyone holding the role, and only them.
    access.create("editors", readable_roles=["editor"])
    assert access.can_read(BOB, "editors") and not access.can_read(ALICE, "editors")


def test_grant_and_revoke(access: AccessService) -> None:
    access.create("team")
    access.grant("team", users=["u-alice"])
    assert access.can_read(ALICE, "team")
    with pytest.raises(PermissionDeniedError):
        access.check_write(ALICE, "team")
    access.grant("team", users=["u-alice"], write=True)
    access.check_write(ALICE, "team")
    access.revoke("team", users=["u-alice"], write_only=True)
    assert access.can_read(ALICE, "team")
    with pytest.raises(PermissionDeniedError):
        access.check_write(ALICE, "team")
    access.revoke("team", users=["u-alice"])
    assert not access.can_read(ALICE, "team")
    with pytest.raises(NotFoundError):
        access.check_write(ALICE, "team")  # its existence stays hidden


def test_write_access_hides_what_cannot_be_seen(access: AccessService) -> None:
    access.check_write(BOB, "default")  # editors write the default collection
    with pytest.raises(PermissionDeniedError):
        access.check_write(VIEWER, "default")
    with pytest.raises(NotFoundError):
        access.check_write(ADMIN, "ghost")  # nobody writes into a collection that is not there
    access.create("drop-box", writable_users=["u-alice"])
    access.check_write(ALICE, "drop-box")  # may add without reading


def test_names_and_roles_are_validated(access: AccessService) -> None:
    for bad in ("", "has space", "../up", "-leading", "x" * 129):
        with pytest.raises(InvalidInputError):
            access.create(bad)
    with pytest.raises(InvalidInputError):
        access.create("ok", readable_roles=["superuser"])
    assert access.create("Ok_1.x-y", readable_roles=[" Viewer "]).readable_roles == ("viewer",)
    with pytest.raises(ConflictError):
        access.create("Ok_1.x-y")
    with pytest.raises(NotFoundError):
        access.grant("ghost", roles=["viewer"])


def test_remove_refuses_a_collection_that_holds_documents(services: MemoryServices) -> None:
    access = services.access
    access.create("team", readable_roles=["viewer"])
    services.kb.ingest([source("/t/a.txt", "Team notes about the harbour.", "team")])
    with pytest.raises(ConflictError):
        access.remove("team")
    assert access.document_counts() == {"team": 1}
    services.kb.remove("/t/a.txt")
    access.remove("team")
    assert access.store.get("team") is None
    with pytest.raises(NotFoundError):
        access.remove("team")


def test_changes_are_audited(services: MemoryServices) -> None:
    audit = RecordingAudit()
    access = AccessService(services.access.store, list, audit=audit)
    access.create("team", readable_roles=["viewer"], actor="u-root")
    access.grant("team", users=["bob"], write=True, actor="u-root")
    access.revoke("team", roles=["viewer"], actor="u-root")
    access.remove("team", actor="u-root")
    actions = [(e["action"], e["resource"], e["user_id"]) for e in audit.events]
    assert actions == [
        ("collection_create", "collection:team", "u-root"),
        ("collection_grant", "collection:team", "u-root"),
        ("collection_revoke", "collection:team", "u-root"),
        ("collection_remove", "collection:team", "u-root"),
    ]
    assert audit.events[1]["details"]["writable_users"] == ["bob"]


def test_changes_from_another_process_apply_within_the_ttl() -> None:
    now = [0.0]
    store = MemoryCollectionStore([Collection("team")])
    access = AccessService(store, list, ttl_s=2.0, clock=lambda: now[0])
    assert not access.can_read(ALICE, "team")
    store.replace(Collection("team", readable_users=("u-alice",)))  # as another process would
    now[0] = 1.0
    assert not access.can_read(ALICE, "team")  # cached
    now[0] = 2.5
    assert access.can_read(ALICE, "team")
    access.revoke("team", users=["u-alice"])  # through the service: at once
    assert not access.can_read(ALICE, "team")


def test_a_container_without_collections_lets_only_admins_read() -> None:
    access = AccessService(MemoryCollectionStore(), list)
    assert access.scope_for(ALICE).collections == frozenset()
    assert access.scope_for(ADMIN).unrestricted


def test_into_collection_places_sources_and_refuses_silent_moves(services: MemoryServices) -> None:
    services.access.create("team")
    services.kb.ingest([source("/a.txt", "Alpha text.")])
    placed = list(
        into_collection(
            [source("/a.txt", "Alpha text."), source("/b.txt", "Beta."), ("/c.txt", OSError("x"))],
            "team",
            services.kb.repo.document_by_source,
        )
    )
    assert isinstance(placed[0], tuple) and isinstance(placed[0][1], ConflictError)
    assert "already in collection 'default'" in str(placed[0][1])
    assert isinstance(placed[1], Source) and placed[1].collection == "team"
    assert isinstance(placed[2], tuple) and placed[2][0] == "/c.txt"


def test_ingest_files_into_a_collection(services: MemoryServices, tmp_path: Path) -> None:
    services.access.create("team", readable_users=["u-alice"])
    (tmp_path / "n.md").write_text("# Notes\n\nThe harbour opens at dawn.\n")
    report = services.ingestion.ingest_files([tmp_path / "n.md"], user="t", collection="team")
    assert report.ok and len(report.added) == 1
    doc = next(iter(services.kb.snapshot.documents.values()))
    assert doc.collection == "team"
    again = services.ingestion.ingest_files([tmp_path / "n.md"], user="t", collection="default")
    assert not again.ok and "remove it first" in again.failed[0][1]


def test_uploads_outside_default_are_named_by_collection(services: MemoryServices) -> None:
    services.access.create("a")
    services.access.create("b")
    data = b"Minutes of the harbour committee."
    services.ingestion.ingest_uploads([("notes.txt", data + b" A")], user="t", collection="a")
    services.ingestion.ingest_uploads([("notes.txt", data + b" B")], user="t", collection="b")
    docs = {d.source: d.collection for d in services.kb.snapshot.documents.values()}
    assert docs == {"upload:a/notes.txt": "a", "upload:b/notes.txt": "b"}


def test_row_filter_is_read_only_and_memoised() -> None:
    f = RowFilter.of(["x", "y", "z"], {"y"})
    assert f.count == 1 and len(f) == 3 and list(f.mask) == [False, True, False]
    with pytest.raises(TypeError):
        f.mask[0] = True
    built: list[int] = []

    def build() -> int:
        built.append(1)
        return len(built) + 6

    assert f.memo("k", build) == 7
    assert f.memo("k", build) == 7 and built == [1]
    with pytest.raises(ValueError):
        f.check(4)
    assert RowFilter(np.ones(2, bool)).count == 2


def test_scope_key_is_stable_and_distinguishes_scopes() -> None:
    a = AccessScope.only(["x", "y"], "u1")
    assert a.key == AccessScope.only(["y", "x"], "u2").key
    assert a.key != AccessScope.only(["x"]).key != AccessScope.everything().key
    assert AccessScope.everything().key == "all"


def test_visible_and_check_remove(services: MemoryServices) -> None:
    access = services.access
    access.create("team", readable_users=["u-alice"], writable_users=["u-bob"])
    services.kb.ingest([source("/pub.txt", "Public."), source("/t.txt", "Team.", "team")])
    docs = sorted(services.kb.snapshot.documents.values(), key=lambda d: d.source)
    assert [d.source for d in access.visible(ALICE, docs)] == ["/pub.txt", "/t.txt"]
    assert [d.source for d in access.visible(VIEWER, docs)] == ["/pub.txt"]
    team_doc = docs[1]
    with pytest.raises(NotFoundError):
        access.check_remove(VIEWER, team_doc)  # cannot read it: it does not exist for them
    with pytest.raises(PermissionDeniedError):
        access.check_remove(ALICE, team_doc)  # reads it, may not change it
    with pytest.raises(NotFoundError):
        access.check_remove(BOB, team_doc)  # writers must also read to remove
    access.check_remove(ADMIN, team_doc)


def test_failures_name_only_documents_the_reader_may_see(services: MemoryServices) -> None:
    access = services.access
    access.create("team")
    services.kb.ingest([source("/t.txt", "Team.", "team"), source("/p.txt", "Pub.")])
    failed = [
        ("upload:a", "duplicate content of /t.txt (same sha256)"),
        ("upload:b", "duplicate content of /p.txt (same sha256)"),
        ("upload:c", "already in collection 'team': remove it first to move it"),
        ("upload:d", "corrupt PDF"),
    ]
    shown = dict(access.hide_failures(VIEWER, failed))
    assert "/t.txt" not in shown["upload:a"] and "duplicate content" in shown["upload:a"]
    assert shown["upload:b"] == failed[1][1]
    assert "team" not in shown["upload:c"]
    assert shown["upload:d"] == "corrupt PDF"
    assert access.hide_failures(ADMIN, failed) == failed


def test_grants_resolve_names_to_user_ids_and_refuse_unknown_users() -> None:
    accounts = {"alice": "u-alice", "u-alice": "u-alice"}
    access = AccessService(
        MemoryCollectionStore([Collection("team")]), list, user_id_of=accounts.get
    )
    assert access.grant("team", users=["alice"]).readable_users == ("u-alice",)
    assert access.can_read(ALICE, "team")
    with pytest.raises(NotFoundError, match="no user 'mallory'"):
        access.grant("team", users=["mallory"])
    access.revoke("team", users=["alice"])
    assert not access.can_read(ALICE, "team")


def test_forget_user_takes_a_person_off_every_collection() -> None:
    store = MemoryCollectionStore(
        [
            Collection("a", readable_users=("u-alice", "u-bob")),
            Collection("b", readable_users=("alice",), writable_users=("u-alice",)),
            Collection("c", readable_users=("u-bob",)),
        ]
    )
    audit = RecordingAudit()
    access = AccessService(store, list, audit=audit)
    assert access.forget_user("u-alice", also=["alice"], actor="u-root") == 2
    assert [(c.name, c.readable_users, c.writable_users) for c in store.list()] == [
        ("a", ("u-bob",), ()),
        ("b", (), ()),
        ("c", ("u-bob",), ()),
    ]
    assert [e["action"] for e in audit.events] == ["collection_revoke"] * 2
