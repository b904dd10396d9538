"""Fixtures of the service tests: services wired from in-memory adapters."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.memory_wiring import MemoryServices, memory_services


@pytest.fixture
def services(tmp_path: Path) -> MemoryServices:
    """Knowledge base, retrieval, access, ingestion and answers on in-memory adapters."""
    return memory_services(tmp_path / "index")
