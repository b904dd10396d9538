"""Behaviour every Reencryptable store must share; subclass and override `case`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from xnai.domain.errors import IntegrityError
from xnai.domain.keys import Reencryptable, RotatableKeyRing

VALUES = {"a": "Pumpe läuft mit 1450 U/min", "b": "bearing: SKF 6205", "c": "torque 42 Nm"}


@dataclass
class Case:
    """A store under test, the ring it encrypts with, and how to fill and read it."""

    store: Reencryptable
    ring: RotatableKeyRing
    write: Callable[[dict[str, str]], None]
    read: Callable[[], dict[str, str]]


class ReencryptableContract:
    """Mixin of contract tests; a `Test...` subclass supplies `case` over an empty store."""

    @pytest.fixture
    def case(self) -> Case:
        """The store under test (subclasses override this fixture)."""
        pytest.fail("ReencryptableContract subclasses must override the `case` fixture")

    def test_satisfies_the_port(self, case: Case) -> None:
        assert isinstance(case.store, Reencryptable)
        assert isinstance(case.store.name, str) and case.store.name

    def test_an_empty_store_rewrites_nothing(self, case: Case) -> None:
        assert case.store.reencrypt() == 0

    def test_values_move_to_the_new_key(self, case: Case) -> None:
        case.write(VALUES)
        case.ring.add_key()
        assert case.read() == VALUES  # readable before the rewrite
        assert case.store.reencrypt() >= len(VALUES)
        assert case.read() == VALUES  # and after it
        case.ring.retire_previous()
        assert case.read() == VALUES  # with the old key gone

    def test_without_the_rewrite_retiring_the_old_key_loses_the_values(self, case: Case) -> None:
        case.write(VALUES)
        case.ring.add_key()
        case.ring.retire_previous()
        with pytest.raises(IntegrityError):
            case.read()

    def test_repeating_the_rewrite_is_safe(self, case: Case) -> None:
        case.write(VALUES)
        case.ring.add_key()
        first = case.store.reencrypt()
        assert case.store.reencrypt() == first
        case.ring.retire_previous()
        assert case.read() == VALUES
