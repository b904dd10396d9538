"""Structured logs: JSON lines, request ids on every line of a request, rotation, injection."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import free_port
from tests.conftest import make_settings
from xnai.api.app import create_app
from xnai.api.security import public
from xnai.bootstrap import Container
from xnai.logs import (
    JsonFormatter,
    TextFormatter,
    accept_request_id,
    configure_logging,
    log_file_path,
)

INJECTION = 'done\n{"level": "ERROR", "message": "forged"}\u2028also forged\r\x1b[31m'


def record(message: str, **extra: Any) -> logging.LogRecord:
    r = logging.LogRecord("xnai.test", logging.INFO, __file__, 1, message, (), None)
    r.__dict__.update(extra)
    return r


def test_a_json_line_holds_time_level_logger_message_request_id_and_extras() -> None:
    line = JsonFormatter().format(record("hello %s", count=3, where=Path("/x")))
    data = json.loads(line)
    assert data["level"] == "INFO" and data["logger"] == "xnai.test"
    assert data["message"] == "hello %s"
    assert data["request_id"] is None  # outside a request
    assert data["count"] == 3 and data["where"] == "/x"  # not JSON: as its str
    assert data["time"].endswith("+00:00") and "T" in data["time"]


def test_a_message_cannot_break_out_of_its_json_line() -> None:
    line = JsonFormatter().format(record(INJECTION))
    assert len(line.splitlines()) == 1 and line.isascii()
    assert json.loads(line)["message"] == INJECTION  # escaped, not lost


def test_an_exception_is_one_field_of_the_same_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        r = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(r)
    assert len(line.splitlines()) == 1
    assert "ValueError: bad" in json.loads(line)["exception"]


def test_text_lines_escape_control_characters_too() -> None:
    line = TextFormatter().format(record(INJECTION, user="eve\nmallory"))
    assert len(line.splitlines()) == 1
    assert "done\\n{" in line and "\\u2028" in line and "\\x1b[31m" in line
    assert "[-] done" in line and 'user="eve\\nmallory"' in line


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc-123_X.y", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("two words", False),
        ("<script>", False),
        ("id\nforged", False),
        (None, False),
    ],
)
def test_only_safe_incoming_request_ids_are_kept(incoming: str | None, kept: bool) -> None:
    rid = accept_request_id(incoming)
    if kept:
        assert rid == incoming
    else:
        assert rid != incoming and len(rid) == 32 and int(rid, 16) >= 0


@pytest.fixture
def captured(seeded: Container) -> Iterator[io.StringIO]:
    """The process's logs configured as ``xnai serve`` does, into a string; restored after."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(seeded.settings, stream=stream)
    yield stream
    for handler in root.handlers:
        if handler not in before:
            handler.close()
    root.handlers[:] = before
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def app(seeded: Container) -> FastAPI:
    """The real app plus two inline routes that log: one in a worker thread, one failing."""
    app = create_app(seeded, warm=False)
    work_log = logging.getLogger("xnai.test.work")

    @app.get("/test/work", dependencies=[public()])
    def work() -> dict[str, str]:  # sync: FastAPI runs it in a worker thread
        work_log.info("working", extra={"step": 1})
        work_log.warning("still working")
        return {"ok": "yes"}

    @app.get("/test/boom", dependencies=[public()])
    async def boom() -> None:
        raise RuntimeError("kaput")

    return app


def test_every_line_of_a_request_carries_its_id(app: FastAPI, captured: io.StringIO) -> None:
    with TestClient(app) as tc:
        first = tc.get("/test/work")
        second = tc.get("/test/work", headers={"X-Request-ID": "client-chosen.42"})
        bad = tc.get("/test/work", headers={"X-Request-ID": "not safe; drop table"})
    ids = [r.headers["x-request-id"] for r in (first, second, bad)]
    assert len(ids[0]) == 32 and ids[1] == "client-chosen.42"
    assert len(ids[2]) == 32 and ids[2] != ids[0]
    records = [r for r in lines(captured) if r["logger"] in ("xnai.test.work", "xnai.http")]
    assert len(records) == 9  # two lines of the route and one access line, per request
    for rid, group in zip(ids, (records[0:3], records[3:6], records[6:9]), strict=True):
        assert {r["request_id"] for r in group} == {rid}
    work, access = records[0], records[2]
    assert work["message"] == "working" and work["step"] == 1
    assert access["message"] == "GET /test/work 200"
    assert access["status"] == 200 and access["path"] == "/test/work"
    assert access["duration_ms"] >= 0


def test_lines_outside_requests_have_no_id(app: FastAPI, captured: io.StringIO) -> None:
    with TestClient(app) as tc:
        tc.get("/test/work")
    logging.getLogger("xnai.test").info("after the request")
    assert lines(captured)[-1]["request_id"] is None


def test_a_crash_is_logged_with_the_id_the_500_response_carries(
    app: FastAPI, captured: io.StringIO
) -> None:
    with TestClient(app, raise_server_exceptions=False) as tc:
        r = tc.get("/test/boom", headers={"X-Request-ID": "crash-1"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "crash-1"
    [error] = [x for x in lines(captured) if x["logger"] == "xnai.api"]
    assert error["level"] == "ERROR" and error["request_id"] == "crash-1"
    assert "RuntimeError: kaput" in error["exception"]


def test_a_path_cannot_forge_log_lines(app: FastAPI, captured: io.StringIO) -> None:
    with TestClient(app) as tc:
        r = tc.get("/v1/none%0A%7B%22level%22%3A%22ERROR%22%7D")
    assert r.status_code == 404
    records = lines(captured)  # every physical line is one whole record
    [access] = [x for x in records if x["logger"] == "xnai.http"]
    assert access["path"] == "other"  # no route: nothing the client typed is logged
    assert not any(x.get("level") == "ERROR" for x in records)


def test_probes_are_logged_at_debug_only(app: FastAPI, captured: io.StringIO) -> None:
    with TestClient(app) as tc:
        assert tc.get("/health").headers["x-request-id"]
    assert not [x for x in lines(captured) if x["logger"] == "xnai.http"]


def test_the_log_file_is_owner_only_and_rotates(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        enterprise={"monitoring": {"log_max_mb": 0.001, "log_backups": 2}},  # ~1 KB per file
    )
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        path = configure_logging(settings, stream=io.StringIO())
        assert path == log_file_path(settings) == settings.data_dir / "logs" / "xnai.log"
        for i in range(100):
            logging.getLogger("xnai.test").info("line %d of the rotation test", i)
    finally:
        for handler in root.handlers:
            if handler not in before:
                handler.close()
        root.handlers[:] = before
        root.setLevel(level)
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["xnai.log", "xnai.log.1", "xnai.log.2"]
    for name in files:
        assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600
        assert (path.parent / name).stat().st_size <= 1100
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["message"] == "line 99 of the rotation test"


def test_text_format_and_no_file_when_disabled(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", enterprise={"monitoring": {"log_format": "text", "log_to_file": False}}
    )
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        assert configure_logging(settings, stream=stream) is None
        configure_logging(settings, stream=stream)  # again: replaces, never duplicates
        logging.getLogger("xnai.test").warning("plain words")
    finally:
        root.handlers[:] = before
        root.setLevel(level)
    [line] = stream.getvalue().splitlines()
    assert line.endswith("WARNING xnai.test [-] plain words")
    assert not (tmp_path / "data" / "logs").exists()


@pytest.mark.slow
def test_xnai_serve_writes_json_lines_with_request_ids(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    env = {
        **os.environ,
        "XNAI_STORAGE__DATA_DIR": str(data),
        "XNAI_MODELS__LLM_BACKEND": "fake",
        "XNAI_MODELS__EMBEDDER_BACKEND": "fake",
        "XNAI_ENTERPRISE__MONITORING__PROMETHEUS_PORT": str(free_port()),
    }
    xnai = Path(sys.executable).with_name("xnai")
    proc = subprocess.Popen(
        [str(xnai), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        r = httpx.get(f"{url}/v1/documents", headers={"X-Request-ID": "serve-test-1"})
        assert r.status_code == 401 and r.headers["x-request-id"] == "serve-test-1"
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    log_file = data / "logs" / "xnai.log"
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any(r["logger"].startswith("uvicorn") for r in records)  # the server's own lines
    [access] = [r for r in records if r["logger"] == "xnai.http"]
    assert access["request_id"] == "serve-test-1" and access["status"] == 401
    assert all(json.loads(line) for line in stderr.splitlines() if line.strip())
