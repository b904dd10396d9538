"""Answer bundles over a real knowledge base (in-memory adapters, Ed25519 signatures): made
and kept for each answer, then verified: a round trip, a changed document, an erased
document, a forged signature, tampered content and malformed files."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import FAST_HASHER, seed, token_for
from tests.memory_wiring import MemoryServices
from xnai.adapters.memory import MemoryAnswerBundles, MemoryKeyRing
from xnai.adapters.security.signing import Ed25519Signer, PublicKeyVerifier
from xnai.bootstrap import Container
from xnai.domain.access import AccessScope
from xnai.domain.bundles import AnswerBundle, CitedSpan, parse_bundle, sha256_text
from xnai.domain.errors import MalformedBundleError, NotFoundError
from xnai.domain.models import Answer, Chunk
from xnai.domain.rbac import Principal, Role
from xnai.services.answer import (
    ANSWER_INSTRUCTION,
    PLAIN_PROMPT,
    PROMPT_TEMPLATE_VERSION,
    SYSTEM_PROMPT,
    Done,
    user_prompt,
)
from xnai.services.answer_bundles import AnswerBundles, Provenance, Status, read_span
from xnai.services.ask import Asker, Question

PUMP = "# Pump\n\nThe coolant pump of reactor seven runs at 1450 rpm.\n"
VALVE = "# Valve\n\nThe relief valve of reactor seven opens at 12 bar.\n"
QUESTION = "How fast does the coolant pump of reactor seven run?"
BOTH = "At what rpm does the coolant pump run and at what bar does the relief valve open?"
ALICE, BOB = "u_alice", "u_bob"
WHEN = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)


class World:
    """A library of two notes, its answer service and the bundles of its answers."""

    def __init__(self, services: MemoryServices, folder: Path) -> None:
        self.s = services
        self.folder = folder
        self.ring = MemoryKeyRing("bundles")
        self.store = MemoryAnswerBundles(self.ring)
        ids = iter(f"{n:032x}" for n in range(1, 100))
        self.bundles = AnswerBundles(
            Ed25519Signer(self.ring),
            self.store,
            lambda: services.kb.snapshot,
            Provenance(lambda: "ab" * 32, {"candidates": 50, "embedder": "hashing/1"}),
            clock=lambda: WHEN,
            new_id=lambda: next(ids),
        )
        self.write("pump.md", PUMP)
        self.write("valve.md", VALVE)

    def write(self, name: str, text: str) -> None:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        assert self.s.ingestion.ingest_files([path], user="t").ok

    def remove(self, name: str) -> None:
        self.s.kb.remove(str(self.folder / name))

    def answer(self, question: str = QUESTION) -> Answer:
        answers = self.s.answers
        prepared = answers.prepare(question, scope=AccessScope.everything("u_alice"))
        return answers.complete(prepared)

    def ask(
        self, question: str = QUESTION, user_id: str = ALICE, *, cite_all: bool = False
    ) -> AnswerBundle:
        """Answer ``question`` for ``user_id`` (citing every source retrieved, with
        ``cite_all``); the bundle kept for it, read back as a file."""
        answer = self.answer(question)
        if cite_all:
            prepared = self.s.answers.prepare(question, scope=AccessScope.everything(user_id))
            answer = replace(answer, citations=prepared.citations)
        kept = self.bundles.keep(
            answer,
            question=question,
            user_id=user_id,
            retrieval={"mode": "hybrid", "top_k": 5},
        )
        assert kept.answer_id
        return parse_bundle(self.bundles.bundle_for(kept.answer_id, user_id).to_json())


@pytest.fixture
def w(services: MemoryServices, tmp_path: Path) -> World:
    folder = tmp_path / "library"
    folder.mkdir()
    return World(services, folder)


def resigned(w: World, bundle: AnswerBundle) -> AnswerBundle:
    return w.bundles.sign(replace(bundle, signature=None))


# -- round trip ------------------------------------------------------------------------------


def test_a_bundle_round_trips_and_verifies(w: World) -> None:
    bundle = w.ask()
    assert bundle.answer == "The coolant pump of reactor seven runs at 1450 rpm. [1]"
    assert bundle.answer_id == f"{1:032x}" and bundle.created_at == "2026-12-05T10:30:00+00:00"
    assert bundle.question_sha256 == hashlib.sha256(QUESTION.encode()).hexdigest()
    assert bundle.model == "fake" and bundle.model_sha256 == "ab" * 32
    assert bundle.prompt_template_version == PROMPT_TEMPLATE_VERSION
    assert bundle.retrieval == {
        "candidates": 50,
        "embedder": "hashing/1",
        "mode": "hybrid",
        "top_k": 5,
    }
    [span] = bundle.citations
    doc = w.s.kb.find(str(w.folder / "pump.md"))
    assert doc is not None and (span.doc_id, span.document_sha256) == (doc.doc_id, doc.sha256)
    cited = w.s.kb.snapshot.chunks[span.chunk_id]
    assert span.source.endswith("pump.md") and span.text_sha256 == sha256_text(cited.text)
    assert "1450 rpm" in cited.text and (span.start, span.end) == (cited.start, cited.end)
    assert bundle.signature is not None and bundle.signature.algorithm == "ed25519"
    result = w.bundles.verify(bundle)
    assert result.status is Status.OK and result.ok
    assert (result.spans, result.problems, result.notes) == (1, (), ())
    assert result.key_id == w.ring.list_keys()[0].key_id


def test_the_file_form_is_stable_json_and_the_signature_covers_all_but_itself(w: World) -> None:
    bundle = w.ask()
    body = json.loads(bundle.to_json())
    assert body["format"] == "xnai-answer-bundle" and body["version"] == 1
    signature = body.pop("signature")
    signed = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    public = PublicKeyVerifier((w.bundles.public_key()).encode())
    value = base64.b64decode(signature["value"])
    assert public.verify(signed.encode("utf-8"), value, signature["key_id"])


def test_the_question_is_named_by_its_hash_only(w: World) -> None:
    text = w.ask().to_json()
    assert "coolant pump of reactor seven run?" not in text


def test_a_published_public_key_checks_the_signature_offline(w: World) -> None:
    bundle = w.ask()
    offline = PublicKeyVerifier(w.bundles.public_key().encode())
    assert w.bundles.verify(bundle, offline).status is Status.OK
    other = Ed25519Signer(MemoryKeyRing("elsewhere")).public_key()
    assert other is not None
    assert w.bundles.verify(bundle, PublicKeyVerifier(other.encode())).status is Status.FORGED


def test_bundles_stay_verifiable_after_a_key_rotation(w: World) -> None:
    bundle = w.ask()
    w.ring.add_key()
    assert w.store.reencrypt() == 1
    w.ring.retire_previous()
    assert w.bundles.verify(bundle).status is Status.OK
    assert w.bundles.public_key(bundle.signature.key_id if bundle.signature else None)
    newer = w.ask()
    assert newer.signature is not None and bundle.signature is not None
    assert newer.signature.key_id != bundle.signature.key_id
    assert w.bundles.verify(newer).ok


def test_only_the_asker_gets_the_bundle(w: World) -> None:
    bundle = w.ask(user_id=ALICE)
    with pytest.raises(NotFoundError) as other:
        w.bundles.bundle_for(bundle.answer_id, BOB)
    with pytest.raises(NotFoundError) as unknown:
        w.bundles.bundle_for("f" * 32, ALICE)
    assert str(other.value).replace(bundle.answer_id, "X") == str(unknown.value).replace(
        "f" * 32, "X"
    )


def test_an_answer_without_retrieval_records_none(w: World) -> None:
    plain = Answer("Hello.", (), "fake", 0.0, 1.0, grounded=False)
    kept = w.bundles.keep(plain, question="hi", user_id=ALICE, retrieval=None)
    bundle = w.bundles.bundle_for(kept.answer_id, ALICE)
    assert bundle.retrieval is None and bundle.citations == ()
    assert w.bundles.verify(bundle).ok


def test_an_answer_whose_bundle_cannot_be_kept_is_still_given(w: World) -> None:
    class FullDisk(MemoryAnswerBundles):
        def put(self, user_id: str, bundle: AnswerBundle) -> None:
            raise OSError(28, "No space left on device")

    w.bundles.store = FullDisk(w.ring)
    answer = w.answer()
    kept = w.bundles.keep(answer, question=QUESTION, user_id=ALICE, retrieval=None)
    assert kept == answer and kept.answer_id == ""


# -- the library changed ------------------------------------------------------------------------


def test_a_changed_document_is_reported_by_name(w: World) -> None:
    bundle = w.ask()
    w.write("pump.md", PUMP.replace("1450", "1540"))
    result = w.bundles.verify(bundle)
    assert result.status is Status.CHANGED and not result.ok
    [problem] = result.problems
    span = bundle.citations[0]
    assert (problem.doc_id, problem.numbers) == (span.doc_id, (1,))
    assert problem.message.startswith(f"document {span.doc_id} ({span.source}) changed")
    assert f"characters {span.start}-{span.end}" in problem.message


def test_an_erased_document_is_reported_by_name(w: World) -> None:
    bundle = w.ask()
    w.remove("pump.md")
    result = w.bundles.verify(bundle)
    assert result.status is Status.ERASED
    [problem] = result.problems
    span = bundle.citations[0]
    assert problem.message == (
        f"document {span.doc_id} ({span.source}), cited as [1], is no longer in the library: "
        "it was removed or erased"
    )


def test_an_erased_document_outweighs_a_changed_one(w: World) -> None:
    bundle = w.ask(BOTH, cite_all=True)
    assert {c.source.rsplit("/", 1)[-1] for c in bundle.citations} == {"pump.md", "valve.md"}
    w.write("valve.md", VALVE.replace("12 bar", "21 bar"))
    w.remove("pump.md")
    result = w.bundles.verify(bundle)
    assert result.status is Status.ERASED
    assert sorted(p.status.value for p in result.problems) == ["changed", "erased"]


def test_a_document_grown_around_its_cited_text_still_verifies_with_a_note(w: World) -> None:
    bundle = w.ask()
    w.write("pump.md", PUMP + "\nIt was serviced in May.\n")
    result = w.bundles.verify(bundle)
    assert result.status is Status.OK and result.problems == ()
    [note] = result.notes
    assert bundle.citations[0].doc_id in note and "reads the same" in note


def test_a_document_ingested_again_unchanged_verifies(w: World) -> None:
    bundle = w.ask()
    w.remove("pump.md")
    w.write("pump.md", PUMP)
    assert w.bundles.verify(bundle) == w.bundles.verify(bundle) and w.bundles.verify(bundle).ok


# -- forged and tampered bundles -----------------------------------------------------------------


def test_a_forged_signature_is_reported(w: World) -> None:
    bundle = w.ask()
    assert bundle.signature is not None
    forged = base64.b64encode(b"\x00" * 64).decode()
    result = w.bundles.verify(replace(bundle, signature=replace(bundle.signature, value=forged)))
    assert result.status is Status.FORGED
    assert "does not match its content" in result.reason and result.problems == ()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: replace(b, answer=b.answer.replace("1450", "1540")),
        lambda b: replace(b, citations=(replace(b.citations[0], end=b.citations[0].end - 1),)),
        lambda b: replace(b, question_sha256="0" * 64),
        lambda b: replace(b, model_sha256=None),
        lambda b: replace(b, retrieval={**b.retrieval, "top_k": 50}),
    ],
    ids=["answer text", "span offsets", "question", "model", "retrieval"],
)
def test_tampered_content_fails_the_signature(w: World, tamper: Any) -> None:
    result = w.bundles.verify(tamper(w.ask()))
    assert result.status is Status.FORGED


def test_a_tampered_file_fails_even_when_the_library_changed_too(w: World) -> None:
    text = w.ask().to_json().replace("1450 rpm", "1540 rpm")
    w.remove("pump.md")
    assert w.bundles.verify(parse_bundle(text)).status is Status.FORGED


def test_a_bundle_signed_by_another_installation_is_forged(w: World) -> None:
    bundle = w.ask()
    elsewhere = AnswerBundles(
        Ed25519Signer(MemoryKeyRing("elsewhere")), w.store, lambda: w.s.kb.snapshot
    )
    result = w.bundles.verify(elsewhere.sign(replace(bundle, signature=None)))
    assert result.status is Status.FORGED


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"algorithm": "hmac-sha256"}, "signed with hmac-sha256"),
        ({"value": "not base64!"}, "not base64"),
    ],
)
def test_a_signature_of_another_kind_is_forged(w: World, change: dict[str, str], why: str) -> None:
    bundle = w.ask()
    assert bundle.signature is not None
    result = w.bundles.verify(replace(bundle, signature=replace(bundle.signature, **change)))
    assert result.status is Status.FORGED and why in result.reason


def test_re_signing_with_this_installations_key_makes_a_new_valid_bundle(w: World) -> None:
    # The installation vouches for what it signs, so only its key can make a bundle verify.
    bundle = w.ask()
    changed = resigned(w, replace(bundle, answer="Something else. [1]"))
    assert w.bundles.verify(changed).ok


# -- malformed files ------------------------------------------------------------------------------


def bundle_dict(w: World) -> dict[str, Any]:
    return json.loads(w.ask().to_json())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("answer"), "answer is missing"),
        (lambda d: d.update(answer=7), "answer is not a string"),
        (lambda d: d.update(format="other"), "format is not 'xnai-answer-bundle'"),
        (lambda d: d.update(version=2), "version 2 is not supported"),
        (lambda d: d.update(grounded="yes"), "grounded is not true or false"),
        (lambda d: d.update(signature=None), "carries no signature"),
        (lambda d: d["signature"].pop("key_id"), "signature.key_id is missing"),
        (lambda d: d["citations"][0].update(start=True), "citations[].start is not a whole"),
        (lambda d: d["citations"][0].update(start=99, end=3), "spans 99-3"),
        (lambda d: d.update(citations=["x"]), "a citation is not an object"),
        (lambda d: d.update(model={"sha256": None}), "model.name is missing"),
        (lambda d: d.update(retrieval=[1]), "retrieval is not an object"),
    ],
)
def test_a_malformed_bundle_says_what_is_wrong(w: World, edit: Any, message: str) -> None:
    body = bundle_dict(w)
    edit(body)
    with pytest.raises(MalformedBundleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_bundle(json.dumps(body))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"{", "not JSON"),
        (b"[1, 2]", "no JSON object"),
        (b'{"format": "xnai-answer-bundle"}', "version is missing"),
    ],
)
def test_a_file_that_is_no_bundle_is_malformed(data: bytes, message: str) -> None:
    with pytest.raises(MalformedBundleError, match=message):
        parse_bundle(data)


# -- every way in, and erasure, in a container -----------------------------------------------------


def principal_of(c: Container, username: str) -> Principal:
    c.auth.hasher = FAST_HASHER
    return c.auth.authenticate(token_for(c, username, Role.VIEWER)).principal


def test_every_answer_the_ask_service_gives_has_a_kept_bundle(container: Container) -> None:
    seed(container)
    victor = principal_of(container, "victor")
    asker, question = Asker(victor, "api"), Question("How fast does the coolant pump run?")
    completed = container.ask.ask(question, asker).complete()
    [streamed] = [
        e.answer for e in container.ask.ask(question, asker).events() if isinstance(e, Done)
    ]
    plain = container.ask.converse(Question("Hello there"), Asker(victor, "ui", "chat")).complete()
    ids = {completed.answer_id, streamed.answer_id, plain.answer_id}
    assert len(ids) == 3 and "" not in ids
    bundles = container.answer_bundles
    for answer in (completed, streamed):
        bundle = bundles.bundle_for(answer.answer_id, victor.user_id)
        assert bundle.answer == answer.text and bundle.retrieval is not None
        assert bundles.verify(bundle).ok
    assert bundles.bundle_for(plain.answer_id, victor.user_id).retrieval is None
    assert container.ask.sources(question, asker).answer_id == ""  # no answer, no bundle


def test_erasing_a_user_deletes_the_bundles_of_their_answers(container: Container) -> None:
    seed(container)
    alice, bob = principal_of(container, "alice"), principal_of(container, "bob")
    question = Question("How fast does the coolant pump run?")
    mine = [container.ask.ask(question, Asker(alice, "api")).complete() for _ in range(2)]
    theirs = container.ask.ask(question, Asker(bob, "api")).complete()
    exported = container.privacy.export("alice")
    assert sorted(b["answer_id"] for b in exported["answer_bundles"]) == sorted(
        a.answer_id for a in mine
    )
    report = container.privacy.erase("alice")
    assert report.answer_bundles_removed == 2
    assert report.as_dict()["answer_bundles_removed"] == 2
    for answer in mine:
        with pytest.raises(NotFoundError):
            container.answer_bundles.bundle_for(answer.answer_id, alice.user_id)
    assert container.answer_bundles.bundle_for(theirs.answer_id, bob.user_id).answer


def test_the_retention_job_purges_bundles_past_the_period(container: Container) -> None:
    seed(container)
    victor = principal_of(container, "victor")
    asked = container.ask.ask(Question("How fast does the coolant pump run?"), Asker(victor, "api"))
    answer = asked.complete()
    assert container.retention.run().answer_bundles_purged == 0  # within the period
    container.retention.days = -1  # a cutoff tomorrow: everything is past it
    assert container.retention.run().answer_bundles_purged == 1
    with pytest.raises(NotFoundError):
        container.answer_bundles.bundle_for(answer.answer_id, victor.user_id)


# -- pieces ---------------------------------------------------------------------------------------


def chunk(start: int, text: str) -> Chunk:
    return Chunk(f"c{start}", "d", start, start, start + len(text), text)


def test_a_span_is_read_across_overlapping_chunks() -> None:
    text = "The pump runs. The valve opens. The fan spins."
    chunks = [chunk(0, text[0:20]), chunk(15, text[15:35]), chunk(30, text[30:])]
    assert read_span(chunks, 10, 40) == text[10:40]
    assert read_span(chunks, 0, len(text)) == text
    assert read_span(chunks, 5, 5) == ""
    assert read_span([chunks[0], chunks[2]], 10, 40) is None  # nothing holds 20..30 any more
    assert read_span(chunks, 40, 60) is None


def test_cited_spans_hash_exactly_the_cited_characters(w: World) -> None:
    answer = w.answer()
    [citation] = answer.citations
    [span] = w.ask().citations
    assert isinstance(span, CitedSpan) and span.text_sha256 == sha256_text(citation.text)
    assert (span.start, span.end) == (citation.start, citation.end)
    assert span.end - span.start == len(citation.text)


def test_the_prompt_template_version_changes_with_the_templates() -> None:
    # Changed a prompt? Raise PROMPT_TEMPLATE_VERSION, then pin the new digest here.
    from xnai.domain.models import Citation

    cite = Citation(1, "d", "c", 'A "title"', "/s", 0, 4, 1.0, "text </source>")
    templates = "\x00".join(
        [SYSTEM_PROMPT, PLAIN_PROMPT, ANSWER_INSTRUCTION, user_prompt("Q?", [cite])]
    )
    digest = hashlib.sha256(templates.encode()).hexdigest()[:16]
    assert (PROMPT_TEMPLATE_VERSION, digest) == ("1", PINNED_DIGEST)


PINNED_DIGEST = "c0dd9b90ac12e0fb"


@pytest.mark.parametrize("backend", ["llama_cpp", "llama_server"])
def test_the_model_file_digest_is_computed_once_and_remembered(
    tmp_path: Path, backend: str
) -> None:
    from tests.conftest import make_settings
    from xnai.adapters.memory import MemoryStateStore
    from xnai.bootstrap.answers import model_sha256

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\x00" * 1000)
    settings = make_settings(tmp_path / "data", models={"llm_backend": backend, "llm_path": gguf})
    state = MemoryStateStore()
    digest = model_sha256(settings, state)
    assert digest() == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert state.get("model_sha256")["sha256"] == digest()
    gguf.write_bytes(b"GGUF" + b"\x01" * 2000)  # another file: hashed again
    assert model_sha256(settings, state)() == hashlib.sha256(gguf.read_bytes()).hexdigest()
    fake = make_settings(tmp_path / "data", models={"llm_backend": "fake"})
    assert model_sha256(fake, state)() is None
