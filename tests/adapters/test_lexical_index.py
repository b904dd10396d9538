"""Bm25LexicalIndex: the contract, the analyzer, lazy rebuilds and the saved layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.contracts.lexical_index_contract import CORPUS, LexicalIndexContract, MakeIndex

pytest.importorskip("bm25s")

from xnai.adapters.index.bm25_index import Bm25LexicalIndex  # noqa: E402


class TestBm25Contract(LexicalIndexContract):
    @pytest.fixture
    def make_index(self) -> MakeIndex:
        return Bm25LexicalIndex


class TestBm25WithoutStemmingContract(LexicalIndexContract):
    @pytest.fixture
    def make_index(self) -> MakeIndex:
        return lambda: Bm25LexicalIndex(stem=False)


def test_tokenizer_lowercases_and_drops_stop_words_and_possessives() -> None:
    index = Bm25LexicalIndex(stem=False)
    assert index.tokenize("The Patient's IL-6 levels, and p53!") == [
        "patient",
        "il",
        "6",
        "levels",
        "p53",
    ]
    assert index.tokenize("Ünïcode café naïve") == ["ünïcode", "café", "naïve"]


def test_stemming_matches_word_forms_when_pystemmer_is_installed() -> None:
    pytest.importorskip("Stemmer")
    index = Bm25LexicalIndex()
    index.add(["run"], ["She was running marathons."])
    assert index.search("marathon runs", 1)[0][0] == "run"


def test_many_adds_build_the_index_once(monkeypatch: pytest.MonkeyPatch) -> None:
    index = Bm25LexicalIndex()
    builds: list[int] = []
    real = index._index

    def counting(corpus: list[list[str]]) -> Any:
        builds.append(len(corpus))
        return real(corpus)

    monkeypatch.setattr(index, "_index", counting)
    for chunk_id, text in CORPUS.items():
        index.add([chunk_id], [text])
    assert builds == []
    index.search("cats", 3)
    index.search("dogs", 3)
    assert builds == [len(CORPUS)]


def test_saved_layout(tmp_path: Path) -> None:
    index = Bm25LexicalIndex(k1=1.2, b=0.75)
    index.add(["a", "b"], ["alpha text", "beta text"])
    names = {p.relative_to(tmp_path).as_posix() for p in index.save(tmp_path)}
    assert {"lexical.jsonl", "lexical.json", "lexical.bm25"} <= names
    lines = (tmp_path / "lexical.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]
    meta = json.loads((tmp_path / "lexical.json").read_text())
    assert (meta["k1"], meta["b"], meta["count"]) == (1.2, 0.75, 2)


def test_load_with_other_parameters_reindexes(tmp_path: Path) -> None:
    saved = Bm25LexicalIndex(k1=0.9, b=0.4)
    saved.add(list(CORPUS), list(CORPUS.values()))
    saved.save(tmp_path)
    loaded = Bm25LexicalIndex(k1=2.0, b=1.0)
    loaded.load(tmp_path)
    fresh = Bm25LexicalIndex(k1=2.0, b=1.0)
    fresh.add(list(CORPUS), list(CORPUS.values()))
    assert loaded.search("birds fly", 3) == fresh.search("birds fly", 3)
    assert loaded.search("birds fly", 3) != saved.search("birds fly", 3)


def test_mismatched_texts_and_ids_are_rejected() -> None:
    with pytest.raises(ValueError):
        Bm25LexicalIndex().add(["a", "b"], ["only one"])


def test_chunks_of_stop_words_only_are_kept_but_never_found() -> None:
    index = Bm25LexicalIndex()
    index.add(["stop"], ["the and of"])
    assert index.ids() == ["stop"] and index.search("the", 5) == []
    index.add(["real"], ["real words"])
    assert index.search("words", 5)[0][0] == "real"
