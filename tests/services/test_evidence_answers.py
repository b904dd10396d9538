"""Selected evidence through the whole answer path: the citations users see are exact
spans that answer bundles verify, and the cache and bundles know the evidence settings."""

from __future__ import annotations

from collections.abc import Callable

from tests.api.conftest import FAST_HASHER, token_for
from xnai.bootstrap import Container
from xnai.domain.rbac import Role
from xnai.services.ask import Asker, Question
from xnai.services.knowledge import Source, sha256_bytes

MANUAL = (
    "# Coolant pump\n\nThe coolant pump runs at 1450 rpm. It was installed in 2019. Its "
    "housing is cast iron. The pump draws 3 kW at full speed. The seals were replaced in "
    "2023. Vibration is checked every week. The relief valve opens at 12 bar. The valve "
    "body is brass. Spare valves are kept in store B.\n"
)


def ingest(c: Container, text: str) -> str:
    data = text.encode()
    source = Source(
        "/lib/manual.md", sha256_bytes(data), len(data), "Manual", text, "text/markdown", "t", "1"
    )
    c.kb.ingest([source], user="tester")
    return text


def test_citations_are_selected_exact_spans_that_bundles_verify(
    make_container: Callable[..., Container],
) -> None:
    c = make_container(rag={"evidence_tokens": 60})
    text = ingest(c, MANUAL)
    c.auth.hasher = FAST_HASHER
    viewer = c.auth.authenticate(token_for(c, "victor", Role.VIEWER)).principal
    answer = c.ask.ask(
        Question("At what pressure does the relief valve open?"), Asker(viewer, "api")
    )
    done = answer.complete()
    assert done.citations
    for cited in done.citations:
        assert text[cited.start : cited.end] == cited.text
        assert len(cited.text) < len(text) - 20  # sentences, not the whole chunk
    assert any("12 bar" in cited.text for cited in done.citations)
    bundle = c.answer_bundles.bundle_for(done.answer_id, viewer.user_id)
    assert bundle.retrieval is not None
    assert (bundle.retrieval["evidence"], bundle.retrieval["evidence_tokens"]) == ("sentences", 60)
    assert c.answer_bundles.verify(bundle).ok


def test_whole_chunks_are_a_setting_away(make_container: Callable[..., Container]) -> None:
    c = make_container(rag={"evidence": "chunks"})
    text = ingest(c, MANUAL)
    c.auth.hasher = FAST_HASHER
    viewer = c.auth.authenticate(token_for(c, "victor", Role.VIEWER)).principal
    question = Question("At what pressure does the relief valve open?")
    done = c.ask.ask(question, Asker(viewer, "api")).complete()
    assert [text[x.start : x.end] for x in done.citations] == [x.text for x in done.citations]
    assert [x.text for x in done.citations] == [MANUAL.strip()]  # the one chunk, whole
