"""Shared fixtures: containers built from temp directories with the project's own fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from xnai.bootstrap import Container, build
from xnai.config import Settings, load_settings

FAKES: dict[str, Any] = {"llm_backend": "fake", "embedder_backend": "fake"}


@pytest.fixture(autouse=True)
def _isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests never read the repository's config.toml or the developer's XNAI_* variables."""
    empty = tmp_path_factory.mktemp("cfg") / "config.toml"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("XNAI_CONFIG", str(empty))


def make_settings(data_dir: Path, **sections: dict[str, Any]) -> Settings:
    """Settings over ``data_dir`` with fake model backends unless overridden."""
    models = {**FAKES, **sections.pop("models", {})}
    storage = {"data_dir": data_dir, **sections.pop("storage", {})}
    return load_settings(models=models, storage=storage, **sections)


@pytest.fixture
def make_container(tmp_path: Path) -> Iterator[Callable[..., Container]]:
    """Factory of opened containers over a temp data directory; all closed afterwards."""
    made: list[Container] = []

    def factory(data_dir: Path | None = None, **sections: dict[str, Any]) -> Container:
        c = build(make_settings(data_dir or tmp_path / "data", **sections))
        c.startup.open_index()
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()


@pytest.fixture
def container(make_container: Callable[..., Container]) -> Container:
    """An opened container with fake embedder and fake LLM."""
    return make_container()
