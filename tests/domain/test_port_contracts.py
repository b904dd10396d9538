"""Every port (a Protocol in the domain) has a contract mixin, and some test class runs it."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import xnai.domain

TESTS = Path(__file__).resolve().parents[1]
CONTRACTS = TESTS / "contracts"


def domain_protocols() -> set[str]:
    """Names of the Protocol classes defined in the domain modules."""
    found: set[str] = set()
    for info in pkgutil.iter_modules(xnai.domain.__path__, "xnai.domain."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and obj.__module__ == module.__name__
                and getattr(obj, "_is_protocol", False)
            ):
                found.add(name)
    return found


def named_in(cls: ast.ClassDef) -> set[str]:
    """Every name a class body uses (its fixtures' types, its ``isinstance`` checks, ...)."""
    return {n.id for n in ast.walk(cls) if isinstance(n, ast.Name)}


def contract_mixins() -> dict[str, set[str]]:
    """Each ``...Contract`` mixin in the contracts folder, with the names its methods use."""
    mixins: dict[str, set[str]] = {}
    for path in sorted(CONTRACTS.glob("*_contract.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith("Contract"):
                mixins[node.name] = named_in(node)
    return mixins


def subclassed_names() -> set[str]:
    """Names of every base class of every class defined in the test files."""
    bases: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases |= {b.id for b in node.bases if isinstance(b, ast.Name)}
    return bases


def test_the_scan_finds_the_ports() -> None:
    assert {"Embedder", "OriginalsStore", "StateStore", "Sealer", "Cache"} <= domain_protocols()
    assert "StateStore" in contract_mixins()["StateStoreContract"]


def test_every_domain_protocol_has_a_contract_mixin() -> None:
    mixins = contract_mixins()
    missing = {p for p in domain_protocols() if not any(p in names for names in mixins.values())}
    assert not missing, f"ports without a contract mixin in tests/contracts: {sorted(missing)}"


def test_every_contract_mixin_is_run() -> None:
    idle = set(contract_mixins()) - subclassed_names()
    assert not idle, f"contract mixins no test class subclasses: {sorted(idle)}"
