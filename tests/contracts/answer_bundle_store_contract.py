"""Behaviour every AnswerBundleStore adapter must share; subclass and override `store` and
`raw`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import pytest

from tests.bundles import sample_bundle
from xnai.domain.bundles import AnswerBundleStore
from xnai.domain.errors import IntegrityError

ALICE, BOB = "u_alice", "u_bob"
FIRST, SECOND = "1" * 32, "2" * 32


class RawAccess(Protocol):
    """The ciphertext a store keeps for one bundle."""

    def read(self, user_id: str, answer_id: str) -> bytes: ...

    def write(self, user_id: str, answer_id: str, data: bytes) -> None: ...


class AnswerBundleStoreContract:
    """Mixin of contract tests; a `Test...` subclass supplies an empty `store` and `raw`,
    access to the bytes it keeps at rest."""

    @pytest.fixture
    def store(self) -> AnswerBundleStore:
        """The adapter under test (subclasses override this fixture)."""
        pytest.fail("AnswerBundleStoreContract subclasses must override the `store` fixture")

    @pytest.fixture
    def raw(self, store: AnswerBundleStore) -> RawAccess:
        """Bytes at rest of ``store`` (subclasses override this fixture)."""
        pytest.fail("AnswerBundleStoreContract subclasses must override the `raw` fixture")

    def test_satisfies_the_port(self, store: AnswerBundleStore) -> None:
        assert isinstance(store, AnswerBundleStore)

    def test_put_then_get_round_trips(self, store: AnswerBundleStore) -> None:
        bundle = sample_bundle(FIRST, answer="Die Pumpe läuft mit 1450 U/min. [1]")
        store.put(ALICE, bundle)
        assert store.get(ALICE, FIRST) == bundle

    def test_only_the_asker_finds_it(self, store: AnswerBundleStore) -> None:
        store.put(ALICE, sample_bundle(FIRST))
        assert store.get(BOB, FIRST) is None
        assert store.get(ALICE, SECOND) is None

    @pytest.mark.parametrize("answer_id", ["", "../" + FIRST, FIRST + "/..", "a b", "x" * 65])
    def test_ids_that_name_no_answer_find_nothing(
        self, store: AnswerBundleStore, answer_id: str
    ) -> None:
        store.put(ALICE, sample_bundle(FIRST))
        assert store.get(ALICE, answer_id) is None

    def test_the_answer_is_encrypted_at_rest(
        self, store: AnswerBundleStore, raw: RawAccess
    ) -> None:
        store.put(ALICE, sample_bundle(FIRST, answer="the turbine manual says 1450 rpm"))
        data = raw.read(ALICE, FIRST)
        assert b"turbine" not in data and ALICE.encode() not in data

    def test_altered_data_at_rest_is_an_integrity_error(
        self, store: AnswerBundleStore, raw: RawAccess
    ) -> None:
        store.put(ALICE, sample_bundle(FIRST))
        token = raw.read(ALICE, FIRST)
        raw.write(ALICE, FIRST, token[:-8] + (b"A" if token[-8:-7] != b"A" else b"B") + token[-7:])
        with pytest.raises(IntegrityError):
            store.get(ALICE, FIRST)

    def test_a_user_lists_their_own_bundles_oldest_first(self, store: AnswerBundleStore) -> None:
        later = sample_bundle(FIRST, when="2026-12-05T11:00:00+00:00")
        earlier = sample_bundle(SECOND, when="2026-12-05T09:00:00+00:00")
        store.put(ALICE, later)
        store.put(ALICE, earlier)
        store.put(BOB, sample_bundle("3" * 32))
        assert store.of_user(ALICE) == [earlier, later]
        assert store.of_user("u_nobody") == []

    def test_forgetting_a_user_deletes_only_their_bundles(self, store: AnswerBundleStore) -> None:
        store.put(ALICE, sample_bundle(FIRST))
        store.put(ALICE, sample_bundle(SECOND))
        store.put(BOB, sample_bundle("3" * 32))
        assert store.forget_user(ALICE) == 2
        assert store.get(ALICE, FIRST) is None and store.of_user(ALICE) == []
        assert [b.answer_id for b in store.of_user(BOB)] == ["3" * 32]
        assert store.forget_user(ALICE) == 0

    def test_purging_deletes_the_bundles_made_before_the_cutoff_of_every_user(
        self, store: AnswerBundleStore
    ) -> None:
        store.put(ALICE, sample_bundle(FIRST, when="2026-01-01T00:00:00+00:00"))
        store.put(BOB, sample_bundle("3" * 32, when="2026-01-02T00:00:00"))  # no zone: UTC
        store.put(ALICE, sample_bundle(SECOND, when="2026-12-01T00:00:00+00:00"))
        assert store.purge_before(datetime(2026, 6, 1, tzinfo=UTC)) == 2
        assert [b.answer_id for b in store.of_user(ALICE)] == [SECOND]
        assert store.of_user(BOB) == []
        assert store.purge_before(datetime(2026, 6, 1, tzinfo=UTC)) == 0

    def test_putting_an_id_again_replaces_it(self, store: AnswerBundleStore) -> None:
        store.put(ALICE, sample_bundle(FIRST, answer="first"))
        store.put(ALICE, sample_bundle(FIRST, answer="second"))
        found = store.get(ALICE, FIRST)
        assert found is not None and found.answer == "second"
        assert len(store.of_user(ALICE)) == 1
