"""FaissVectorIndex and NumpyVectorIndex: the contract, and FAISS against the numpy reference."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.contracts.vector_index_contract import MakeIndex, VectorIndexContract, unit_vectors
from xnai.adapters.memory.vector_index import NumpyVectorIndex

pytest.importorskip("faiss")

from xnai.adapters.index.faiss_index import FaissVectorIndex, ReadWriteLock  # noqa: E402


class TestFaissContract(VectorIndexContract):
    @pytest.fixture
    def make_index(self) -> MakeIndex:
        return FaissVectorIndex


class TestNumpyContract(VectorIndexContract):
    @pytest.fixture
    def make_index(self) -> MakeIndex:
        return NumpyVectorIndex


def test_faiss_equals_the_numpy_reference_on_random_data() -> None:
    dim, ids = 64, [f"chunk-{i}" for i in range(2000)]
    vectors = unit_vectors(len(ids), dim, seed=11)
    faiss_index, reference = FaissVectorIndex(dim), NumpyVectorIndex(dim)
    for index in (faiss_index, reference):
        index.add(ids[:1500], vectors[:1500])
        index.remove(set(ids[100:1500:7]))
        index.add(ids[1500:], vectors[1500:])
        index.remove({ids[5], ids[1999], "missing"})
    assert faiss_index.ids() == reference.ids()
    for query in unit_vectors(30, dim, seed=12):
        got, want = faiss_index.search(query, 20), reference.search(query, 20)
        assert [i for i, _ in got] == [i for i, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def test_faiss_writes_its_documented_files(tmp_path: Path) -> None:
    index = FaissVectorIndex(8)
    index.add(["a", "b"], unit_vectors(2, 8))
    written = index.save(tmp_path)
    assert [p.name for p in written] == ["vectors.faiss", "vector_ids.json"]
    assert json.loads((tmp_path / "vector_ids.json").read_text())["ids"] == ["a", "b"]


def test_numpy_writes_its_own_files(tmp_path: Path) -> None:
    index = NumpyVectorIndex(8)
    index.add(["a"], unit_vectors(1, 8))
    assert [p.name for p in index.save(tmp_path)] == [
        "numpy_vectors.npy",
        "numpy_vector_ids.json",
    ]


def test_faiss_load_rejects_ids_that_do_not_fit_the_vectors(tmp_path: Path) -> None:
    index = FaissVectorIndex(8)
    index.add(["a", "b"], unit_vectors(2, 8))
    index.save(tmp_path)
    payload = {"dim": 8, "count": 1, "ids": ["a"]}
    (tmp_path / "vector_ids.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError):
        FaissVectorIndex(8).load(tmp_path)


def test_non_finite_vectors_are_rejected() -> None:
    vectors = unit_vectors(2, 8)
    vectors[1, 3] = np.nan
    for index in (FaissVectorIndex(8), NumpyVectorIndex(8)):
        with pytest.raises(ValueError):
            index.add(["a", "b"], vectors)


def test_searches_run_alongside_writes() -> None:
    index = FaissVectorIndex(16)
    index.add([f"base{i}" for i in range(200)], unit_vectors(200))
    queries = unit_vectors(50, seed=3)

    def churn(step: int) -> None:
        name = f"extra{step}"
        index.add([name], unit_vectors(1, seed=100 + step))
        index.remove({name})

    with ThreadPoolExecutor(max_workers=6) as pool:
        searches = [pool.submit(index.search, q, 5) for q in queries]
        writes = [pool.submit(churn, step) for step in range(50)]
        results = [f.result() for f in searches]
        for f in writes:
            f.result()
    assert all(len(hits) == 5 for hits in results)
    assert len(index) == 200


def test_read_write_lock_lets_a_writer_in_only_after_the_readers() -> None:
    lock, entered = ReadWriteLock(), threading.Event()

    def write() -> None:
        with lock.write():
            entered.set()

    with lock.read(), lock.read():  # two readers at once
        writer = threading.Thread(target=write)
        writer.start()
        assert not entered.wait(0.05)
    writer.join(timeout=5)
    assert entered.is_set()
