"""Configuration: file, environment, validation messages, redaction, telemetry off."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from xnai.config import (
    TELEMETRY_OFF,
    Models,
    Settings,
    disable_telemetry,
    load_settings,
    redacted,
)
from xnai.domain.errors import ConfigError


def test_repository_config_file_is_valid_and_has_the_seed_sections() -> None:
    path = Path(__file__).parents[1] / "config.toml"
    s = load_settings(path)
    assert s.enterprise.circuit_breaker.fail_max == 3
    assert s.enterprise.circuit_breaker.reset_timeout == 60
    assert s.enterprise.security.session_timeout == 28800
    assert s.enterprise.monitoring.prometheus_port == 8001
    assert s.models.max_seq_length == 256


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[rag]\ntop_k = 3\nmode = 'dense'\n")
    monkeypatch.setenv("XNAI_RAG__TOP_K", "9")
    s = load_settings(cfg)
    assert (s.rag.top_k, s.rag.mode) == (9, "dense")


def test_invalid_value_names_the_key_and_the_allowed_values(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[rag]\nmode = 'fuzzy'\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    message = str(err.value)
    assert "rag.mode" in message
    assert "'dense', 'lexical' or 'hybrid'" in message
    assert "'fuzzy'" in message


def test_unknown_key_and_out_of_range_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[rag]\ntopk = 3\n[ingest]\nchunk_tokens = 100\nchunk_overlap = 100\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert "rag.topk" in str(err.value)
    assert "ingest.chunk_overlap" in str(err.value)


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[rag\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml")


def test_secrets_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNAI_MODELS__OPENAI_API_KEY", "sk-very-secret")
    shown = redacted(load_settings())
    assert shown["models"]["openai_api_key"] == "**********"
    assert "sk-very-secret" not in repr(shown)


def test_telemetry_is_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in TELEMETRY_OFF:
        monkeypatch.delenv(key, raising=False)
    disable_telemetry()
    assert os.environ["CHAINLIT_NO_TELEMETRY"] == "true"
    assert os.environ["DO_NOT_TRACK"] == "1"
    assert os.environ["LANGCHAIN_TRACING_V2"] == "false"
    assert os.environ["SCARF_NO_ANALYTICS"] == "true"
    assert os.environ["CRAWL4AI_TELEMETRY"] == "0"


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg_dir = tmp_path / "etc"
    cfg_dir.mkdir()
    cfg = cfg_dir / "config.toml"
    cfg.write_text("[storage]\ndata_dir = 'lib-data'\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings(cfg).data_dir == cfg_dir / "lib-data"


def test_legacy_xoe_prefix_is_honoured_below_xnai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XOE_RAG__TOP_K", "7")
    assert load_settings().rag.top_k == 7
    monkeypatch.setenv("XNAI_RAG__TOP_K", "8")
    assert load_settings().rag.top_k == 8


def _leaves(
    table: dict[str, Any], path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (key path, value) of a TOML table, nested tables walked."""
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), value


def test_the_repository_config_file_repeats_the_built_in_defaults() -> None:
    """config.toml documents the defaults: a value there that differs from config.py's
    default would change behaviour by accident, so every key must equal its default."""
    data = tomllib.loads((Path(__file__).parents[1] / "config.toml").read_text(encoding="utf-8"))
    differ = []
    for path, value in _leaves(data):
        owner: BaseModel = Settings.model_fields[path[0]].default
        for key in path[1:-1]:
            owner = getattr(owner, key)
        parsed = type(owner).model_validate({path[-1]: value})
        default, written = getattr(owner, path[-1]), getattr(parsed, path[-1])
        if written != default:
            differ.append(f"{'.'.join(path)} = {written!r} (default {default!r})")
    assert len(list(_leaves(data))) > 30
    assert differ == []


def test_database_url_is_shown_with_its_password_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {
        "postgresql+psycopg://app:s3cr/t@db.internal:5432/xnai": (
            "postgresql+psycopg://app:**********@db.internal:5432/xnai"
        ),
        "postgresql://app@db/xnai?password=s3cr/t&sslmode=require": (
            "postgresql://app@db/xnai?**********"
        ),
        "postgresql://:s3cr/t@db/xnai": "postgresql://:**********@db/xnai",
        "sqlite:////var/lib/xnai/xnai.db": "sqlite:////var/lib/xnai/xnai.db",
        "not a url s3cr/t": "**********",
    }
    for url, masked in cases.items():
        monkeypatch.setenv("XNAI_STORAGE__DATABASE_URL", url)
        s = load_settings()
        assert s.storage.database_url.get_secret_value() == url
        assert redacted(s)["storage"]["database_url"] == masked
        assert "s3cr/t" not in f"{s!r}{s.storage.database_url}"


def test_a_misplaced_secret_is_not_repeated_in_the_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\ndatabase_url = "postgresql://app:s3cret@db/xnai"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert "server.database_url" in str(err.value) and "s3cret" not in str(err.value)


@pytest.mark.parametrize(
    ("backend", "configured", "slots"),
    [
        ("llama_server", 0, 4),
        ("llama_cpp", 0, 1),
        ("openai", 0, 1),
        ("fake", 0, 1),
        ("llama_server", 2, 2),
        ("llama_cpp", 3, 3),
    ],
)
def test_generation_slots_follow_the_backend_unless_set(
    backend: str, configured: int, slots: int
) -> None:
    models = Models(llm_backend=backend, max_concurrent_generations=configured)
    assert models.generation_slots == slots
