"""Per-collection access over HTTP: canaries, documents, uploads and the collections API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer, password_of, token_for
from tests.services.test_retrieval_access import CANARIES, CASES, canary_source, foreign
from xnai.api.app import create_app
from xnai.bootstrap import Container
from xnai.domain.rbac import LOCAL_ADMIN, Principal, Role
from xnai.services.audit import Auditor

USERS = {"alice": Role.VIEWER, "bob": Role.VIEWER, "carol": Role.EDITOR, "dave": Role.VIEWER}
USERS |= {"erin": Role.EDITOR}


@pytest.fixture
def library(seeded: Container) -> Container:
    access = seeded.access
    for name, role in USERS.items():  # accounts first: grants name existing users
        seeded.auth.create_user(LOCAL_ADMIN, name, role, password_of(name))
    for person in ("alice", "bob", "carol"):
        access.create(f"{person}-private", readable_users=[person], writable_users=[person])
    access.create("viewers-only", readable_roles=["viewer"])
    access.create("editors-only", readable_roles=["editor"])
    assert seeded.kb.ingest([canary_source(c) for c in CANARIES], user="tester").ok
    return seeded


@pytest.fixture
def app_client(library: Container) -> Iterator[TestClient]:
    """A client without default credentials: each request says who it is."""
    with TestClient(create_app(library, warm=False)) as tc:
        yield tc


@pytest.fixture
def headers(library: Container) -> dict[str, dict[str, str]]:
    """Authorization headers by username (and ``admin``)."""
    out = {name: bearer(token_for(library, name, role)) for name, role in USERS.items()}
    out["admin"] = bearer(token_for(library, "admin"))
    return out


def principal_of(c: Container, username: str) -> Principal:
    user = c.auth.repo.user_by_name(username)
    assert user is not None
    return Principal(user.user_id, user.username, user.role)


def foreign_in(who: Principal, body: str) -> list[str]:
    return [c.marker for c in foreign(who) if c.marker in body or f"/private/{c.owner}/" in body]


def test_100_crafted_queries_over_http_return_zero_foreign_canaries(
    library: Container, app_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    leaked: list[tuple[str, str, list[str]]] = []
    for i, (attacker, query, mode, top_k) in enumerate(CASES):
        who = principal_of(library, attacker.username)
        body = {"query": query, "mode": mode.value, "top_k": min(top_k, 100)}
        if i % 4 == 1:
            body["generate"] = False
        if i % 4 == 2:
            body["stream"] = True
        r = app_client.post("/v1/query", json=body, headers=headers[attacker.username])
        assert r.status_code == 200, r.text
        if found := foreign_in(who, r.text):
            leaked.append((attacker.username, query, found))
        if i % 5 == 0:
            chat = {"messages": [{"role": "user", "content": query}], "stream": i % 10 == 0}
            r = app_client.post(
                "/v1/chat/completions", json=chat, headers=headers[attacker.username]
            )
            assert r.status_code == 200, r.text
            if found := foreign_in(who, r.text):
                leaked.append((attacker.username, "chat: " + query, found))
    assert leaked == []


def test_the_same_queries_reach_the_canaries_as_admin(
    app_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    for c in CANARIES:
        body = {"query": c.marker, "mode": "lexical", "top_k": 50, "generate": False}
        r = app_client.post("/v1/query", json=body, headers=headers["admin"])
        assert c.marker in r.text


def test_each_user_finds_their_own_canary_over_http(
    app_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    for c in CANARIES[:3]:
        body = {"query": f"{c.marker} {c.topic}", "mode": "hybrid", "top_k": 5}
        r = app_client.post("/v1/query", json=body, headers=headers[c.owner])
        assert r.status_code == 200
        assert r.json()["sources"][0]["source"] == f"/private/{c.owner}/{c.marker}.md"


def test_queries_are_audited_per_user(
    library: Container, app_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    body = {"query": "bob salary negotiation", "mode": "hybrid", "generate": False}
    r = app_client.post("/v1/query", json=body, headers=headers["bob"])
    cited = [s["chunk_id"] for s in r.json()["sources"]]
    assert isinstance(library.audit, Auditor)
    (event,) = [e for e in library.audit.events if e["event_type"] == "query"]
    assert event["user_id"] == principal_of(library, "bob").user_id
    assert event["details"]["chunk_ids"] == cited and event["details"]["mode"] == "hybrid"
    assert "bob salary" not in json.dumps(event)  # the trail keeps a hash of the question


def test_document_list_shows_only_readable_documents(
    library: Container, app_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    def sources(user: str) -> set[str]:
        r = app_client.get("/v1/documents", headers=headers[user])
        assert r.status_code == 200
        return {d["source"] for d in r.json()["documents"]}

    public = {"/library/reactor.md", "/library/policy.md"}
    private = {f"/private/{c.owner}/{c.marker}.md" for c in CANARIES}
    assert sources("admin") == public | private
    assert sources("alice") == public | {
        "/private/alice/CANARY-ALICE-7f3a.md",
        "/private/viewers/CANARY-VIEWERS-5b1c.md",
    }
    assert sources("erin") == public | {"/private/editors/CANARY-EDITORS-e4a2.md"}


def test_uploads_check_the_collection(
    library: Container, app_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    def upload(user: str, collection: str | None, data: bytes = b"Carol's own memo.") -> int:
        form = {"collection": collection} if collection else None
        files = {"files": ("memo.txt", data, "text/plain")}
        r = app_client.post("/v1/documents", files=files, data=form, headers=headers[user])
        return r.status_code

    assert upload("carol", "carol-private") == 201
    docs = {d.source: d.collection for d in library.kb.snapshot.documents.values()}
    assert docs["upload:carol-private/memo.txt"] == "carol-private"
    assert upload("carol", "bob-private") == 404  # cannot see it: not found
    assert upload("carol", "viewers-only") == 404
    assert upload("carol", "editors-only") == 403  # may read, may not write
    assert upload("carol", "ghost") == 404
    assert upload("carol", None, b"A memo for everyone.") == 201  # editors write default
    assert upload("alice", "alice-private") == 403  # viewers lack write:documents


def test_duplicate_upload_does_not_reveal_hidden_collection(
    library: Container, app_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    """Content that exists only in a collection the uploader cannot read is a new document
    of the uploader's collection: the answer is the same as for content never seen."""
    bob = canary_source(next(c for c in CANARIES if c.owner == "bob"))
    files = {"files": ("copy.md", bob.text.encode(), "text/markdown")}
    r = app_client.post(
        "/v1/documents", files=files, data={"collection": "carol-private"}, headers=headers["carol"]
    )
    assert r.status_code == 201
    assert r.json()["failed"] == [] and r.json()["added"] == ["upload:carol-private/copy.md"]
    assert "duplicate" not in r.text and "/private/bob" not in r.text
    assert "bob-private" not in r.text
    docs = {d.source: d.collection for d in library.kb.snapshot.documents.values()}
    assert docs["upload:carol-private/copy.md"] == "carol-private"
    assert docs[bob.source] == "bob-private"
    # Within one collection a second copy is still refused.
    files = {"files": ("again.md", bob.text.encode(), "text/markdown")}
    r = app_client.post(
        "/v1/documents", files=files, data={"collection": "carol-private"}, headers=headers["carol"]
    )
    (failure,) = r.json()["failed"]
    assert "duplicate content of upload:carol-private/copy.md" in failure["error"]


def test_delete_of_a_document_needs_read_and_write_access(
    library: Container, app_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    bob_doc = next(d for d in library.kb.snapshot.documents.values() if "bob" in d.source)
    r = app_client.delete(f"/v1/documents/{bob_doc.doc_id}", headers=headers["carol"])
    assert r.status_code == 403  # editors lack delete:documents
    r = app_client.delete(f"/v1/documents/{bob_doc.doc_id}", headers=headers["admin"])
    assert r.status_code == 200 and r.json()["deleted"]["collection"] == "bob-private"
    r = app_client.delete(f"/v1/documents/{bob_doc.doc_id}", headers=headers["admin"])
    assert r.status_code == 404


def test_collections_list_shows_readable_ones_and_lists_to_admins_only(
    app_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    r = app_client.get("/v1/collections", headers=headers["alice"])
    assert r.status_code == 200
    mine = {c["name"]: c for c in r.json()["collections"]}
    assert set(mine) == {"default", "alice-private", "viewers-only"}
    assert mine["alice-private"] == {
        "name": "alice-private",
        "description": "",
        "writable": True,
        "documents": 1,
    }
    r = app_client.get("/v1/collections", headers=headers["admin"])
    every = {c["name"]: c for c in r.json()["collections"]}
    bob = app_client.app.state.container.auth.user_id_of("bob")  # type: ignore[attr-defined]
    assert len(every) == 6 and every["bob-private"]["readable_users"] == [bob]


def test_admins_manage_collections_and_changes_apply_at_once(
    app_client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    admin = headers["admin"]
    query = {"query": "CANARY-BOB-2c9e", "mode": "lexical", "generate": False, "top_k": 50}

    def alice_sees_bob() -> bool:
        r = app_client.post("/v1/query", json=query, headers=headers["alice"])
        return "CANARY-BOB-2c9e" in r.text

    new = {"name": "team", "readable_roles": ["viewer"]}
    assert app_client.post("/v1/collections", json=new, headers=headers["carol"]).status_code == 403
    r = app_client.post("/v1/collections", json=new, headers=admin)
    assert r.status_code == 201 and r.json()["collection"]["readable_roles"] == ["viewer"]
    assert app_client.post("/v1/collections", json=new, headers=admin).status_code == 409
    bad = {"name": "../etc"}
    assert app_client.post("/v1/collections", json=bad, headers=admin).status_code == 422
    extra = {"name": "x", "owner": "me"}
    assert app_client.post("/v1/collections", json=extra, headers=admin).status_code == 422

    assert not alice_sees_bob()
    change = {"users": ["alice"]}
    r = app_client.post("/v1/collections/bob-private/grant", json=change, headers=admin)
    alice = app_client.app.state.container.auth.user_id_of("alice")  # type: ignore[attr-defined]
    assert r.status_code == 200 and alice in r.json()["collection"]["readable_users"]
    assert alice_sees_bob()
    r = app_client.post("/v1/collections/bob-private/revoke", json=change, headers=admin)
    assert r.status_code == 200
    assert not alice_sees_bob()
    r = app_client.post("/v1/collections/ghost/grant", json=change, headers=admin)
    assert r.status_code == 404

    assert app_client.delete("/v1/collections/bob-private", headers=admin).status_code == 409
    assert app_client.delete("/v1/collections/team", headers=headers["bob"]).status_code == 403
    assert app_client.delete("/v1/collections/team", headers=admin).status_code == 200
    assert app_client.delete("/v1/collections/team", headers=admin).status_code == 404
