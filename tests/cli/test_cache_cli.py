"""``xnai cache status|clear`` and the checkpoints in ``xnai index stats``, on real Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from tests.redis_server import SHARED_URL, shared_available, unique_namespace
from xnai.cli.main import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def namespace(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Redis configured through the environment, under a namespace of this test."""
    ns = unique_namespace()
    monkeypatch.setenv("XNAI_REDIS__URL", SHARED_URL)
    monkeypatch.setenv("XNAI_REDIS__NAMESPACE", ns)
    yield ns
    client = redis.Redis.from_url(SHARED_URL, decode_responses=True)
    keys = list(client.scan_iter(match=f"{ns}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_status_without_redis_says_so(env: Path) -> None:
    code, out = invoke("cache", "status")
    assert code == 0 and json.loads(out) == {"configured": False}
    code, out = invoke("cache", "clear")
    assert code == 0 and "no cache is configured" in out
    code, out = invoke("index", "stats")
    assert code == 0 and "checkpoints" not in json.loads(out)


@pytest.mark.skipif(not shared_available(), reason="Redis on 127.0.0.1:6379 not running")
def test_checkpoints_status_and_clear_across_invocations(namespace: str, tmp_path: Path) -> None:
    doc = tmp_path / "pump.md"
    doc.write_text("# Pump\n\nThe coolant pump runs at 1450 rpm.\n", encoding="utf-8")
    code, out = invoke("ingest", str(doc))
    assert code == 0, out
    code, out = invoke("index", "stats")
    stats = json.loads(out)
    checkpoint = stats["checkpoints"]["default"]
    assert checkpoint["documents_count"] == 1 and checkpoint["user_id"] == "local"
    assert set(checkpoint) >= {"ingested_at", "user_id", "documents_count", "ingestion_time"}

    # Each command is a new process state: the second ask finds the first one's answer.
    for _ in range(2):
        code, out = invoke("ask", "At what rpm does the coolant pump run?")
        assert code == 0 and "1450 rpm" in out, out
    client = redis.Redis.from_url(SHARED_URL, decode_responses=True)
    assert len(list(client.scan_iter(match=f"{namespace}:answer:*"))) == 1

    code, out = invoke("cache", "status")
    status = json.loads(out)
    assert status["configured"] is True and status["healthy"] is True
    assert status["namespace"] == namespace and status["url"] == SHARED_URL
    assert status["checkpoints"]["default"] == checkpoint

    code, out = invoke("cache", "clear")
    assert code == 0 and "removed 1 cached answers" in out
    assert list(client.scan_iter(match=f"{namespace}:answer:*")) == []
    assert client.exists(f"{namespace}:snapshot:default") == 1
    client.close()
