"""A chat conversation over a real container: answers as the principal, retrieval on and
off, history within the context budget, stats, uploads and the model's guards."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from tests.api.conftest import FAST_HASHER, password_of, seed
from xnai.adapters.memory.llm import FakeChatModel, grounded_reply, numbered_sources
from xnai.adapters.memory.metrics import RecordingMetrics
from xnai.bootstrap import Container
from xnai.domain.bundles import parse_bundle
from xnai.domain.errors import (
    AuthenticationError,
    CircuitOpenError,
    InvalidInputError,
    ModelUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    QueueFullError,
)
from xnai.domain.limits import MAX_MESSAGES, MAX_QUESTION_CHARS
from xnai.domain.models import ChatMessage
from xnai.domain.rbac import LOCAL_ADMIN, Role
from xnai.services.resilience import GuardedChatModel
from xnai.ui.chat import PLAIN_PROMPT, Conversation, Reply, estimate_tokens, friendly_error

PLAIN = "No library was used for this reply."


def reply_of(messages: Sequence[ChatMessage]) -> str:
    user = next(m.content for m in reversed(messages) if m.role == "user")
    return grounded_reply(messages) if numbered_sources(user) else PLAIN


def library(container: Container, model: FakeChatModel | None = None) -> Container:
    """``container`` with the seed library, the test users and a scripted fake model."""
    container.auth.hasher = FAST_HASHER
    container.metrics = RecordingMetrics()
    seed(container)
    guarded = container.answers.model
    assert isinstance(guarded, GuardedChatModel)
    n_ctx = container.settings.models.n_ctx
    guarded.model = model or FakeChatModel(context_size=n_ctx, reply=reply_of)
    for name, role in (("alice", Role.ADMIN), ("erin", Role.EDITOR), ("victor", Role.VIEWER)):
        container.auth.create_user(LOCAL_ADMIN, name, role, password_of(name))
    return container


def conversation(c: Container, username: str) -> Conversation:
    """A conversation of ``username``, signed in with a session token."""
    token = c.auth.login(username, password_of(username)).token
    return Conversation(c, lambda: c.auth.authenticate(token).principal)


@pytest.fixture
def c(container: Container) -> Container:
    return library(container)


@pytest.fixture
def chat(c: Container) -> Callable[[str], Conversation]:
    return lambda username: conversation(c, username)


def finish(reply: Reply) -> str:
    return "".join(reply)


def fake(c: Container) -> FakeChatModel:
    guarded = c.answers.model
    assert isinstance(guarded, GuardedChatModel) and isinstance(guarded.model, FakeChatModel)
    return guarded.model


def test_an_answer_streams_piece_by_piece_with_its_citations(
    chat: Callable[[str], Conversation],
) -> None:
    conv = chat("victor")
    reply = conv.ask("What speed does the coolant pump of reactor seven run at?")
    pieces = list(reply)
    assert len(pieces) > 3
    assert "".join(pieces).strip() == "The coolant pump of reactor seven runs at 1450 rpm. [1]"
    assert reply.answer is not None and [c.title for c in reply.cited] == ["Reactor"]
    assert reply.cited[0].source == "/library/reactor.md"
    assert conv.stats.from_library == 1 and conv.stats.pieces == len(pieces)
    assert conv.history[-1] == ChatMessage("assistant", reply.answer.text)


def test_answers_stay_within_the_principals_collections(
    c: Container, chat: Callable[[str], Conversation]
) -> None:
    c.access.create("board", readable_users=["alice"], writable_users=["alice"])
    secret = b"# Merger\n\nThe zeppelin merger closes on the ninth of March.\n"
    report = c.ingestion.ingest_uploads([("merger.md", secret)], user="t", collection="board")
    assert report.added
    question = "When does the zeppelin merger close?"
    viewer, admin = chat("victor"), chat("alice")
    finish(reply := viewer.ask(question))
    assert "zeppelin" not in (reply.answer.text if reply.answer else "").lower()
    assert all(cit.title != "Merger" for cit in reply.cited)
    finish(reply := admin.ask(question))
    assert [cit.title for cit in reply.cited] == ["Merger"]


def test_retrieval_off_chats_with_the_model_alone_and_query_forces_it(
    c: Container, chat: Callable[[str], Conversation]
) -> None:
    conv = chat("victor")
    conv.rag = False
    reply = conv.ask("What speed does the coolant pump run at?")
    assert finish(reply).strip() == PLAIN and reply.cited == ()
    sent = fake(c).calls[-1]
    assert sent[0] == ChatMessage("system", PLAIN_PROMPT)
    assert "<source" not in sent[-1].content
    forced = conv.ask("What speed does the coolant pump run at?", retrieval=True)
    assert "1450 rpm" in finish(forced) and forced.cited
    assert (conv.stats.plain, conv.stats.from_library) == (1, 1)


def test_the_history_goes_to_the_model_and_reset_forgets_it(
    c: Container, chat: Callable[[str], Conversation]
) -> None:
    conv = chat("victor")
    finish(conv.ask("What speed does the coolant pump run at?"))
    finish(conv.ask("And who books economy class?"))
    sent = fake(c).calls[-1]
    assert ChatMessage("user", "What speed does the coolant pump run at?") in sent
    conv.reset()
    finish(conv.ask("And who books economy class?"))
    assert ChatMessage("user", "What speed does the coolant pump run at?") not in fake(c).calls[-1]


def test_history_is_trimmed_to_the_context_budget_oldest_first(
    c: Container, chat: Callable[[str], Conversation]
) -> None:
    conv = chat("victor")
    conv.rag = False
    budget = conv.history_budget("next question", retrieval=False)
    turn = "word " * (budget // 6)  # about a third of the budget per message pair
    for i in range(6):
        conv.history += [ChatMessage("user", f"{i} {turn}"), ChatMessage("assistant", turn)]
    finish(conv.ask("next question"))
    sent = fake(c).calls[-1]
    kept = [m.content.split()[0] for m in sent if m.role == "user" and m.content != "next question"]
    assert kept and kept == [str(i) for i in range(6 - len(kept), 6)]  # the newest turns
    history_tokens = sum(estimate_tokens(m.content) + 4 for m in sent[1:-1])
    assert history_tokens <= budget


def test_with_retrieval_the_sources_budget_is_kept_free(
    c: Container, chat: Callable[[str], Conversation]
) -> None:
    conv = chat("victor")
    policy, model = c.answers.policy, c.answers.model
    with_sources = conv.history_budget("q", retrieval=True)
    without = conv.history_budget("q", retrieval=False)
    assert without - with_sources >= policy.source_tokens
    assert with_sources + policy.source_tokens + policy.max_tokens < model.context_size


def test_stats_show_counts_and_timings(chat: Callable[[str], Conversation]) -> None:
    conv = chat("victor")
    finish(conv.ask("What speed does the coolant pump run at?"))
    text = conv.stats.markdown(rag=True, history_turns=1, history_tokens=20)
    assert "| questions | 1 |" in text and "| answered from the library | 1 |" in text
    assert "first token, median" in text and " ms |" in text


def test_questions_are_asked_as_the_principal_checked_each_time(
    c: Container, chat: Callable[[str], Conversation]
) -> None:
    conv = chat("victor")
    finish(conv.ask("What speed does the coolant pump run at?"))
    c.auth.set_enabled(LOCAL_ADMIN, "victor", False)
    with pytest.raises(AuthenticationError):
        conv.ask("What speed does the coolant pump run at?")
    assert "sign in again" in friendly_error(AuthenticationError("x"))


def test_editors_upload_viewers_may_not(c: Container, chat: Callable[[str], Conversation]) -> None:
    data = b"# Quokkas\n\nThe quokka colony counts 412 animals.\n"
    with pytest.raises(PermissionDeniedError, match="viewer"):
        chat("victor").upload([("quokka.md", data)])
    editor = chat("erin")
    report = editor.upload([("quokka.md", data), ("bad.exe", b"MZ\x90\x00")])
    assert report.added == ("upload:quokka.md",) and len(report.failed) == 1
    assert (editor.stats.files_added, editor.stats.files_failed) == (1, 1)
    editor.collection = "nowhere"
    with pytest.raises(NotFoundError):
        editor.upload([("quokka2.md", data)])
    finish(reply := chat("victor").ask("How many animals does the quokka colony count?"))
    assert [cit.source for cit in reply.cited] == ["upload:quokka.md"]


def test_uploads_keep_the_http_size_limit(make_container: Callable[..., Container]) -> None:
    c = library(make_container(ingest={"max_file_mb": 0.01}))
    report = conversation(c, "erin").upload([("big.txt", b"a " * 6000)])
    assert not report.added and "over the limit" in report.failed[0][1]


def test_a_full_generation_queue_is_a_friendly_refusal(
    c: Container, chat: Callable[[str], Conversation]
) -> None:
    conv = chat("victor")
    held = [c.generation.admit() for _ in range(c.generation.capacity)]
    try:
        with pytest.raises(QueueFullError) as refused:
            conv.ask("What speed does the coolant pump run at?")
    finally:
        for admission in held:
            admission.release()
    assert conv.stats.failed == 1
    assert f"about {refused.value.retry_after} seconds" in friendly_error(refused.value)
    assert "1450 rpm" in finish(conv.ask("What speed does the coolant pump run at?"))


def test_an_open_breaker_refuses_at_once_and_says_when_to_retry(
    make_container: Callable[..., Container],
) -> None:
    c = library(make_container(models={"retry_attempts": 1}), FakeChatModel(fail_times=100))
    conv = conversation(c, "victor")
    for _ in range(c.settings.enterprise.circuit_breaker.fail_max):
        with pytest.raises(ModelUnavailableError):
            finish(conv.ask("What speed does the coolant pump run at?"))
    with pytest.raises(CircuitOpenError) as refused:
        conv.ask("What speed does the coolant pump run at?")
    assert "try again in about" in friendly_error(refused.value)
    assert "failed to answer" in friendly_error(ModelUnavailableError("down"))


def test_the_chat_refuses_an_overlong_question_and_keeps_its_history_within_the_cap(
    c: Container, chat: Callable[[str], Conversation]
) -> None:
    conv = chat("victor")
    with pytest.raises(InvalidInputError) as refused:
        finish(conv.ask("q" * (MAX_QUESTION_CHARS + 1)))
    assert "at most 8000" in friendly_error(refused.value)
    conv.rag = False
    for i in range(MAX_MESSAGES):  # many short turns: well within the token budget
        conv.history += [ChatMessage("user", f"u{i}"), ChatMessage("assistant", "ok")]
    finish(conv.ask("next question"))
    assert len(fake(c).calls[-1]) <= MAX_MESSAGES + 1  # the system prompt besides


def test_each_answer_offers_its_signed_bundle_to_its_asker(
    c: Container, chat: Callable[[str], Conversation]
) -> None:
    conv = chat("victor")
    finish(reply := conv.ask("What speed does the coolant pump of reactor seven run at?"))
    assert reply.answer is not None and reply.answer.answer_id
    text = conv.bundle_json(reply.answer)
    assert text is not None
    bundle = parse_bundle(text)
    assert bundle.answer == reply.answer.text and bundle.answer_id == reply.answer.answer_id
    assert c.answer_bundles.verify(bundle).ok
    conv.rag = False
    finish(plain := conv.ask("Hello"))
    assert plain.answer is not None
    plain_text = conv.bundle_json(plain.answer)
    assert plain_text is not None and parse_bundle(plain_text).retrieval is None
    # Another user's conversation never finds it.
    with pytest.raises(NotFoundError):
        chat("erin").bundle_json(reply.answer)
    assert conv.bundle_json(None) is None
