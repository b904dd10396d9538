"""LlamaServerChatModel: llama.cpp's server engine in-process, with the bundled GGUF models."""

from __future__ import annotations

import importlib.util
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contracts.chat_model_contract import ChatModelContract
from tests.contracts.token_counter_contract import TokenCounterContract
from xnai.adapters.llm.llama_server import LlamaServerChatModel
from xnai.adapters.model_files import assemble
from xnai.domain.errors import ModelError, ModelUnavailableError
from xnai.domain.models import ChatMessage
from xnai.domain.ports import ChatModel, TokenCounter

# Not pytest.importorskip: the adapter must be the first to import xllamacpp, since it sets
# the OpenMP wait policy that only applies before the library loads.
if importlib.util.find_spec("xllamacpp") is None:
    pytest.skip("xllamacpp is not installed: run `make install`", allow_module_level=True)

pytestmark = pytest.mark.llm

COUNTING = [ChatMessage("user", "Count from 1 to 30, separated by commas.")]


@pytest.fixture(scope="module")
def smollm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServerChatModel]:
    path = assemble("smollm2-135m", tmp_path_factory.mktemp("models"))
    model = LlamaServerChatModel(path, n_ctx=1024, parallel=3, n_threads=2, n_batch=256)
    yield model
    model.close()


class TestLlamaServerContract(ChatModelContract):
    @pytest.fixture
    def model(self, smollm: LlamaServerChatModel) -> ChatModel:
        return smollm


class TestLlamaServerTokenCounterContract(TokenCounterContract):
    @pytest.fixture
    def counter(self, smollm: LlamaServerChatModel) -> TokenCounter:
        return smollm


def test_greedy_generation_is_deterministic(smollm: LlamaServerChatModel) -> None:
    first = "".join(smollm.stream(COUNTING, max_tokens=12))
    assert first.strip()
    assert "".join(smollm.stream(COUNTING, max_tokens=12)) == first


def test_stop_sequence_ends_the_reply(smollm: LlamaServerChatModel) -> None:
    full = "".join(smollm.stream(COUNTING, max_tokens=24))
    assert "\n" in full.strip(), full
    cut = "".join(smollm.stream(COUNTING, max_tokens=24, stop=["\n"]))
    assert cut and "\n" not in cut and full.startswith(cut)


def test_requests_are_decoded_together(smollm: LlamaServerChatModel) -> None:
    """Three streams run at once: each yields its first piece before any of them ends."""
    firsts: list[float] = []
    ends: list[float] = []
    texts: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        pieces = []
        for piece in smollm.stream(COUNTING, max_tokens=40):
            if not pieces:
                with lock:
                    firsts.append(time.monotonic())
            pieces.append(piece)
        with lock:
            ends.append(time.monotonic())
            texts.append("".join(pieces))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(texts) == 3 and all(t.strip() for t in texts)
    assert max(firsts) < min(ends), "one request waited for another to finish"


def test_closing_a_stream_stops_its_request(smollm: LlamaServerChatModel) -> None:
    story = [ChatMessage("user", "Write a long story about a dragon who learns to cook.")]
    stream = smollm.stream(story, max_tokens=400)
    assert next(stream)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 10
    # The slot is free again: a new request is answered.
    assert "".join(smollm.stream(COUNTING, max_tokens=4))


def test_prompt_longer_than_context_is_a_model_error(smollm: LlamaServerChatModel) -> None:
    flood = [ChatMessage("user", "lorem ipsum " * 3000)]
    with pytest.raises(ModelError, match="generation failed"):
        list(smollm.stream(flood, max_tokens=8))
    assert "".join(smollm.stream(COUNTING, max_tokens=4))


def test_no_tcp_port_is_opened(smollm: LlamaServerChatModel) -> None:
    """The engine's HTTP front end is a Unix socket that only this user can enter."""
    socket_dir = smollm._socket.parent
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(smollm._socket.stat().st_mode)
    import httpx

    anonymous = httpx.Client(transport=httpx.HTTPTransport(uds=str(smollm._socket)))
    with anonymous:
        assert anonymous.post("http://llm/tokenize", json={"content": "x"}).status_code == 401
    assert not _listening_tcp_inodes() & _own_socket_inodes()


def test_close_removes_the_socket_directory(tmp_path: Path) -> None:
    path = assemble("smollm2-135m", tmp_path)
    model = LlamaServerChatModel(path, n_ctx=512, parallel=1, n_threads=1, n_batch=64)
    socket_dir = model._socket.parent
    model.close()
    assert not socket_dir.exists()


def test_missing_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="not found"):
        LlamaServerChatModel(tmp_path / "absent.gguf", n_ctx=512, parallel=1)


def test_missing_library_says_how_to_do_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes `import xllamacpp` fail
    model_file = tmp_path / "m.gguf"
    model_file.write_bytes(b"GGUF")
    with pytest.raises(ModelUnavailableError, match="llm_backend = 'llama_cpp'"):
        LlamaServerChatModel(model_file, n_ctx=512, parallel=1)


def _listening_tcp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def _own_socket_inodes() -> set[str]:
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith("socket:["):
            inodes.add(str(target)[8:-1])
    return inodes


def test_token_counts_are_remembered_without_asking_the_engine_again(
    smollm: LlamaServerChatModel,
) -> None:
    text = "Vitamin D supplementation and fracture risk in older adults, a cohort study."
    first = smollm.count_tokens(text)
    asked = smollm._counted.cache_info()
    assert smollm.count_tokens(text) == first > 0
    assert smollm._counted.cache_info().hits == asked.hits + 1
    assert smollm.count_tokens(text + " More.") > first  # another text is counted anew
