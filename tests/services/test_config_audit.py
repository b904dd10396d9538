"""Configuration changes between runs are audit events; secrets never appear in them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from xnai.adapters.memory import RecordingAudit
from xnai.adapters.storage.state import JsonStateFile
from xnai.bootstrap import Container
from xnai.config import SECRET_MARK
from xnai.services.audit import Auditor
from xnai.services.config_audit import ConfigAudit, flatten


def _config_events(c: Container) -> list[dict[str, object]]:
    assert isinstance(c.audit, Auditor)
    return [e for e in c.audit.events if e["event_type"] == "config_change"]


def test_first_run_then_only_changes_are_recorded(container: Container) -> None:
    first = container.config_audit.note_config()
    assert "rag.top_k" in first
    assert container.config_audit.note_config() == []
    container.settings.rag.top_k = 9
    container.settings.models.openai_api_key = SecretStr("sk-very-secret-value")
    changed = container.config_audit.note_config()
    assert changed == ["models.openai_api_key", "rag.top_k"]
    events = _config_events(container)
    assert [e["details"]["first"] for e in events] == [True, False]  # type: ignore[index]
    last = events[-1]["details"]
    assert last["values"] == {"models.openai_api_key": SECRET_MARK, "rag.top_k": 9}  # type: ignore[index]
    assert "PRIVILEGED_ACCESS" in events[-1]["compliance_flags"]  # type: ignore[operator]
    log = (container.settings.data_dir / "audit" / "audit.jsonl").read_text(encoding="utf-8")
    assert "sk-very-secret-value" not in log
    assert container.audit.verify().ok  # type: ignore[union-attr]


def test_flatten_names_nested_keys_by_section() -> None:
    assert flatten({"rag": {"top_k": 4, "mode": "hybrid"}, "x": 1}) == {
        "rag.top_k": 4,
        "rag.mode": "hybrid",
        "x": 1,
    }


def test_the_service_reads_the_settings_at_each_call(tmp_path: Path) -> None:
    current: dict[str, Any] = {"rag": {"top_k": 4}}
    audit = RecordingAudit()
    service = ConfigAudit(lambda: current, JsonStateFile(tmp_path / "state.json"), audit)
    assert service.note_config() == ["rag.top_k"]
    current["rag"]["top_k"] = 5
    assert service.note_config() == ["rag.top_k"]
    assert service.note_config() == []
    assert [e["details"]["values"] for e in audit.events] == [{"rag.top_k": 4}, {"rag.top_k": 5}]
