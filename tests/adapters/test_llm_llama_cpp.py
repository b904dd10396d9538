"""LlamaCppChatModel with the real built llama-cpp-python and the bundled GGUF models.

These prove the CPU-safe build works: a wrong build crashes at the first token.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contracts.chat_model_contract import ChatModelContract
from tests.contracts.token_counter_contract import TokenCounterContract
from xnai.adapters.llm.llama_cpp import LlamaCppChatModel
from xnai.adapters.model_files import assemble
from xnai.domain.errors import ModelError, ModelUnavailableError
from xnai.domain.models import ChatMessage
from xnai.domain.ports import ChatModel, TokenCounter

# Not pytest.importorskip: the adapter must be the first to import llama_cpp, since it
# sets the OpenMP wait policy that only applies before the library loads.
if importlib.util.find_spec("llama_cpp") is None:
    pytest.skip(
        "llama-cpp-python is not installed: run `make install` to build it",
        allow_module_level=True,
    )

pytestmark = pytest.mark.llm

COUNTING = [ChatMessage("user", "Count from 1 to 30, separated by commas.")]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def smollm(models_dir: Path) -> Iterator[LlamaCppChatModel]:
    path = assemble("smollm2-135m", models_dir)
    model = LlamaCppChatModel(path, n_ctx=1024, n_threads=2, n_batch=256)
    yield model
    model.close()


@pytest.fixture(scope="module")
def qwen(models_dir: Path) -> Iterator[LlamaCppChatModel]:
    path = assemble("qwen2.5-coder-0.5b", models_dir)
    model = LlamaCppChatModel(path, n_ctx=2048, n_threads=2, n_batch=512)
    yield model
    model.close()


class TestLlamaContract(ChatModelContract):
    @pytest.fixture
    def model(self, smollm: LlamaCppChatModel) -> ChatModel:
        return smollm


def test_generates_tokens_with_the_real_library(smollm: LlamaCppChatModel) -> None:
    text = "".join(smollm.stream(COUNTING, max_tokens=24, temperature=0.0))
    assert text.strip()
    assert smollm.count_tokens(text) >= 8, text
    assert smollm.name == "SmolLM2-135M-Instruct.Q4_1"
    assert smollm.context_size == 1024 == smollm.raw.n_ctx()


def test_greedy_generation_is_deterministic(smollm: LlamaCppChatModel) -> None:
    first = "".join(smollm.stream(COUNTING, max_tokens=12))
    assert "".join(smollm.stream(COUNTING, max_tokens=12)) == first


def test_stop_sequence_ends_the_reply(smollm: LlamaCppChatModel) -> None:
    full = "".join(smollm.stream(COUNTING, max_tokens=24))
    assert "\n" in full.strip(), full
    cut = "".join(smollm.stream(COUNTING, max_tokens=24, stop=["\n"]))
    assert cut and "\n" not in cut and full.startswith(cut)


def test_concurrent_streams_are_serialised(smollm: LlamaCppChatModel) -> None:
    expected = "".join(smollm.stream(COUNTING, max_tokens=12))
    results: list[str] = []

    def run() -> None:
        results.append("".join(smollm.stream(COUNTING, max_tokens=12)))

    def count() -> None:
        # Tokenizing is lock-free and must be safe while another thread generates.
        for _ in range(200):
            counts.append(smollm.count_tokens("Count from 1 to 30, separated by commas."))

    counts: list[int] = []
    threads = [threading.Thread(target=run) for _ in range(3)] + [threading.Thread(target=count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [expected] * 3
    assert len(set(counts)) == 1 and len(counts) == 200


def test_prompt_longer_than_context_is_a_model_error(smollm: LlamaCppChatModel) -> None:
    flood = [ChatMessage("user", "lorem ipsum " * 1500)]
    with pytest.raises(ModelError, match="generation failed"):
        list(smollm.stream(flood, max_tokens=8))
    # The instance stays usable after the failure.
    assert "".join(smollm.stream(COUNTING, max_tokens=4))


def test_count_tokens_uses_the_model_tokenizer(smollm: LlamaCppChatModel) -> None:
    assert smollm.count_tokens("") == 0
    assert smollm.count_tokens("hello") == 1
    assert smollm.count_tokens("<|im_start|>") > 1  # special tokens are counted as text


def test_missing_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="not found"):
        LlamaCppChatModel(tmp_path / "absent.gguf", n_ctx=512, n_threads=1, n_batch=64)


def test_corrupt_file_is_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 4096)
    with pytest.raises(ModelUnavailableError, match="cannot load model"):
        LlamaCppChatModel(bad, n_ctx=512, n_threads=1, n_batch=64)


def test_default_qwen_knows_the_capital_of_france(qwen: LlamaCppChatModel) -> None:
    question = [ChatMessage("user", "What is the capital of France? Answer in one word.")]
    answer = "".join(qwen.stream(question, max_tokens=16, temperature=0.0))
    assert "Paris" in answer, answer


def test_missing_library_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    model_file = tmp_path / "m.gguf"
    model_file.write_bytes(b"GGUF")
    with pytest.raises(ModelUnavailableError, match="run `make install`"):
        LlamaCppChatModel(model_file, n_ctx=512, n_threads=1, n_batch=64)


class TestLlamaTokenCounterContract(TokenCounterContract):
    @pytest.fixture
    def counter(self, smollm: LlamaCppChatModel) -> TokenCounter:
        return smollm
