"""Upload hardening (names, content, limits) and security headers over HTTP."""

from __future__ import annotations

import asyncio
import io
import threading
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from tests.api.conftest import FAST_HASHER, bearer, free_port, token_for
from tests.fixtures_docs import minimal_pdf
from xnai.api.app import create_app
from xnai.api.headers import API_CSP, UI_CSP, UI_POLICY, SecurityHeadersMiddleware
from xnai.api.routes.documents import MAX_NAME_BYTES, safe_name
from xnai.bootstrap import Container
from xnai.domain.errors import XnaiError
from xnai.domain.rbac import Role

ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(range(256)) * 8
BOUNDARY = b"xnaiBoundary7MA4YWxkTrZu0gW"
SECURITY_HEADERS = {
    "content-security-policy": API_CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}


def multipart(*parts: tuple[bytes, bytes]) -> tuple[bytes, dict[str, str]]:
    """A multipart body whose file names are sent as raw bytes, exactly as a hostile client may."""
    body = b""
    for filename, data in parts:
        body += (
            b"--" + BOUNDARY + b"\r\n"
            b'Content-Disposition: form-data; name="files"; filename="' + filename + b'"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
        )
    body += b"--" + BOUNDARY + b"--\r\n"
    return body, {"content-type": "multipart/form-data; boundary=" + BOUNDARY.decode()}


def upload(client: TestClient, *parts: tuple[bytes, bytes]) -> Any:
    body, headers = multipart(*parts)
    return client.post("/v1/documents", content=body, headers=headers)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def assert_security_headers(headers: Mapping[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, name


def word_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        archive.writestr("word/document.xml", bytes(20 * 2**20))
    return buffer.getvalue()


# --- file names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\x.md", "x.md"),
        ("/etc/cron.d/job.md", "job.md"),
        ("C:\\Windows\\win.ini.txt", "win.ini.txt"),
        ("notes.txt\x00.pdf", "notes.txt.pdf"),  # NUL removed, not a truncation point
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # a right-to-left override hides '.exe'
        ("\uff0e\uff0e\uff0fetc\uff0fpasswd.txt", "passwd.txt"),  # full-width '../'
        ("zero\u200bwidth.md", "zerowidth.md"),
        ("line\nbreak\r.md", "linebreak.md"),
        ("report. . .", "report"),
        ("caf\u0065\u0301.md", "caf\u00e9.md"),  # composed to one form
    ],
)
def test_safe_name_keeps_only_a_harmless_base_name(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


@pytest.mark.parametrize(
    "raw", [None, "", "..", "/", "a/..", "\u202e", " . ", "\x00\x01", "\u200b\u200d"]
)
def test_names_with_nothing_left_are_refused(raw: str | None) -> None:
    with pytest.raises(XnaiError, match="invalid upload file name"):
        safe_name(raw)


def test_long_names_are_shortened_keeping_the_extension() -> None:
    name = safe_name("\u00e9" * 5000 + ".pdf")
    assert len(name.encode()) <= MAX_NAME_BYTES and name.endswith("\u00e9.pdf")
    assert len(safe_name("a." + "x" * 5000).encode()) <= MAX_NAME_BYTES


def test_hostile_names_never_write_outside_the_data_directory(
    client: TestClient, seeded: Container, tmp_path: Path
) -> None:
    data_dir = seeded.settings.data_dir
    outside = tmp_path / "outside" / "absolute.md"
    root = tmp_path.parent
    before = files_under(root)
    names = [
        b"../../etc/passwd.txt",
        b"..\\..\\..\\x.md",
        str(outside).encode(),
        b"nul\x00byte.md",
        "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fwide.md".encode(),
        "r\u202etxt.md".encode(),
        b"L" * 3000 + b".md",
    ]
    parts = [
        (name, f"# Doc {i}\n\nThe secret number is {i}.\n".encode()) for i, name in enumerate(names)
    ]
    r = upload(client, *parts)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["failed"] == []
    assert len(body["added"]) == len(names)
    for source in body["added"]:
        label = source.removeprefix("upload:")
        assert "/" not in label and "\\" not in label and "\x00" not in label
        assert len(label.encode()) <= MAX_NAME_BYTES
    assert {"upload:passwd.txt", "upload:x.md", "upload:absolute.md"} <= set(body["added"])
    created = files_under(root) - before
    assert created and all(data_dir in p.parents for p in created)
    assert not outside.exists()
    originals = [p for p in created if p.parent.name == "originals"]
    assert len(originals) == len(names)
    for path in originals:  # named by the server: a content digest, never the client's name
        stem = path.name.split(".")[0]
        assert len(stem) >= 32 and all(ch in "0123456789abcdef" for ch in stem), path.name


# --- content checks over HTTP -----------------------------------------------------------


def test_mismatched_content_and_bombs_are_refused_and_not_kept(
    client: TestClient, seeded: Container
) -> None:
    originals = seeded.settings.data_dir / "originals"
    r = upload(
        client,
        (b"manual.pdf", ELF),
        (b"scan.txt", minimal_pdf("Quarterly report.")),
        (b"letter.docx", word_bomb()),
        (b"ok.md", b"# Ok\n\nAccepted text.\n"),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    failed = {f["source"]: f["error"] for f in body["failed"]}
    assert body["added"] == ["upload:ok.md"]
    assert failed["upload:manual.pdf"] == (
        "content does not match the extension '.pdf': the file is an ELF executable, "
        "not a PDF document"
    )
    assert failed["upload:scan.txt"].endswith("the file is a PDF document, not text")
    assert "looks like a zip bomb" in failed["upload:letter.docx"]
    assert len(list(originals.iterdir())) == 1  # only the accepted file's original


def test_oversize_uploads_get_a_per_file_error_or_413(
    make_container: Callable[..., Container],
) -> None:
    c = make_container(ingest={"max_file_mb": 0.01}, server={"max_body_mb": 0.05})
    c.auth.hasher = FAST_HASHER
    editor = bearer(token_for(c, "editor", Role.EDITOR))
    with TestClient(create_app(c, warm=False), headers=editor) as client:
        r = upload(client, (b"big.txt", b"word " * 4000), (b"small.txt", b"Small text.\n"))
        assert r.status_code == 201
        body = r.json()
        assert body["added"] == ["upload:small.txt"]
        assert "over the limit" in body["failed"][0]["error"]
        r = upload(client, (b"huge.txt", b"word " * 20000))
        assert r.status_code == 413
        assert r.json()["error"].startswith("request body too large")
        assert_security_headers(r.headers)


# --- security headers -------------------------------------------------------------------


def test_headers_on_json_and_error_responses(client: TestClient, anonymous: TestClient) -> None:
    assert_security_headers(client.get("/health").headers)
    assert_security_headers(client.get("/v1/documents").headers)
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert_security_headers(missing.headers)
    invalid = client.post("/v1/query", content=b"{not json", headers={"content-type": "x/y"})
    assert invalid.status_code == 422
    assert_security_headers(invalid.headers)
    assert "strict-transport-security" not in missing.headers
    unauthenticated = anonymous.get("/v1/documents")
    assert unauthenticated.status_code == 401
    assert_security_headers(unauthenticated.headers)


def test_headers_on_an_unhandled_error(seeded: Container) -> None:
    app = create_app(seeded, warm=False)

    async def boom() -> None:
        raise RuntimeError("kaput")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500 and r.json() == {"error": "internal error"}
    assert_security_headers(r.headers)


def test_headers_on_event_streams(client: TestClient) -> None:
    r = client.post("/v1/query", json={"query": "How fast is the coolant pump?", "stream": True})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "event: done" in r.text
    assert_security_headers(r.headers)


def test_hsts_only_behind_a_tls_proxy(make_container: Callable[..., Container]) -> None:
    c = make_container(server={"behind_tls_proxy": True})
    with TestClient(create_app(c, warm=False)) as client:
        assert client.get("/health").headers["strict-transport-security"] == "max-age=31536000"


def inline_app(released: threading.Event | None = None) -> ASGIApp:
    """A small app behind the middleware: a UI page, an API page, a stream and a socket."""

    async def page(_: Request) -> Response:
        return PlainTextResponse("page", headers={"Cache-Control": "max-age=60"})

    async def events() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        if released is not None:
            assert await asyncio.to_thread(released.wait, 10)
        yield b"data: second\n\n"

    async def stream(_: Request) -> Response:
        return StreamingResponse(events(), media_type="text/event-stream")

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello")
        await ws.close()

    routes = [
        Route("/chat", page),
        Route("/chat/assets/app.js", page),
        Route("/chatty", page),
        Route("/v1/stream", stream),
        WebSocketRoute("/chat/ws", socket),
    ]
    return SecurityHeadersMiddleware(Starlette(routes=routes), prefixes={"/chat": UI_POLICY})


def test_csp_and_caching_can_be_overridden_per_path_prefix() -> None:
    with TestClient(inline_app()) as client:
        for path in ("/chat", "/chat/assets/app.js"):
            r = client.get(path)
            assert r.headers["content-security-policy"] == UI_CSP
            assert r.headers["cache-control"] == "max-age=60"  # the UI keeps its own caching
            assert r.headers["x-frame-options"] == "DENY"
        other = client.get("/chatty")  # a prefix covers whole path segments only
        assert other.headers["content-security-policy"] == API_CSP
        assert other.headers["cache-control"] == "no-store"  # API paths are never stored
        with client.websocket_connect("/chat/ws") as ws:
            assert ws.receive_text() == "hello"


@pytest.fixture
def served() -> Iterator[tuple[str, threading.Event]]:
    """The inline app on a real port, and the event that lets its stream finish."""
    released = threading.Event()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(inline_app(released), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", released
    released.set()
    server.should_exit = True
    thread.join(timeout=10)


def test_streams_still_stream_through_the_middleware(
    served: tuple[str, threading.Event],
) -> None:
    url, released = served
    with httpx.stream("GET", f"{url}/v1/stream", timeout=5) as r:
        assert r.headers["content-security-policy"] == API_CSP
        chunks = r.iter_text()
        # The first event arrives while the app still holds the second back: nothing buffers.
        assert next(chunks) == "data: first\n\n"
        released.set()
        assert "".join(chunks) == "data: second\n\n"
