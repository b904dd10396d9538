"""The chat UI in a real browser (Debian's Chromium driven by Playwright) against the real
server on loopback: sign-in, streamed cited answers, commands, uploads, hostile content,
speech, MFA, lockout and revocation.

Every page may only talk to 127.0.0.1, may never open a dialog and must not break its
content security policy; each test saves a screenshot under ``test-artifacts/ui``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, Locator, Page, Playwright, expect, sync_playwright

from tests.ui.chat_server import (
    LINKED_URL,
    PLAIN_ANSWER,
    SPOKEN_QUESTION,
    XSS_TITLE,
    password_of,
)
from xnai.api.headers import API_CSP, UI_CSP

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
QUESTION = "How does Xoe-NovAi keep an ingest crash-safe?"
ANSWER = "Xoe-NovAi never changes a committed index in place."
TIMEOUT_MS = 15_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make chromium)"),
]


@dataclass
class Server:
    url: str
    root: Path

    @property
    def chat(self) -> str:
        return f"{self.url}/chat"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``xnai serve`` with the test library, in its own process."""
    root = tmp_path_factory.mktemp("chat")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XNAI_", "XOE_"))}
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.ui.chat_server", str(root / "data"), str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail("the chat server died:\n" + log_path.read_text(errors="replace"))
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the chat server did not start:\n" + log_path.read_text(errors="replace"))
        time.sleep(0.2)
    try:
        yield Server(url, root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def speech_wav(path: Path) -> Path:
    """Half a second of quiet, 1.5 s of a loud voice-like tone, 2.5 s of quiet."""
    rate = 48000
    frames = bytearray()
    for seconds, loud in ((0.5, False), (1.5, True), (2.5, False)):
        for i in range(int(seconds * rate)):
            value = int(9000 * math.sin(2 * math.pi * 300 * i / rate)) if loud else 0
            frames += value.to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright, server: Server) -> Iterator[Browser]:
    """Headless Chromium, background networking off, a fake microphone playing speech."""
    wav = speech_wav(server.root / "speech.wav")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    yield browser
    browser.close()


@dataclass
class Watched:
    """A page with everything it did recorded."""

    page: Page
    server: Server
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """Only loopback requests, no dialog, no content security policy violation."""
        assert self.requests, "the page made no request at all"
        hosts = {
            urlparse(u).hostname for u in self.requests if not u.startswith(("data:", "blob:"))
        }
        assert hosts == {"127.0.0.1"}, sorted(hosts)
        assert self.dialogs == []
        assert [m for m in self.console if "Content Security Policy" in m] == []

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_timeout(600)  # let the side panel finish sliding in
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path


@pytest.fixture
def watched(browser: Browser, server: Server) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["microphone"], origin=server.url)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    w = Watched(page, server)
    page.on("request", lambda r: w.requests.append(r.url))
    page.on("dialog", lambda d: (w.dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: w.console.append(m.text))
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived", lambda f: w.frames.append(f if isinstance(f, str) else "<binary>")
        ),
    )
    yield w
    context.close()


def sign_in(
    w: Watched, username: str, password: str | None = None, *, greeted: bool = True
) -> None:
    page = w.page
    page.goto(w.server.chat)
    page.fill("#email", username)
    page.fill("#password", password or password_of(username))
    page.click("button[type=submit]")
    if greeted:
        expect(page.get_by_text("Signed in as")).to_be_visible()


def send(w: Watched, text: str) -> None:
    w.page.fill("#chat-input", text)
    w.page.keyboard.press("Enter")


def messages(w: Watched) -> Locator:
    return w.page.locator("[data-step-type=assistant_message]")


def replies(w: Watched) -> list[str]:
    return messages(w).all_inner_texts()


def last_reply(w: Watched, containing: str) -> str:
    """The newest assistant message once it contains ``containing``."""
    last = messages(w).last
    expect(last).to_contain_text(containing)
    return last.inner_text()


def ask(w: Watched, text: str, containing: str) -> str:
    """Send ``text``; the reply to it, once it contains ``containing``."""
    reply = messages(w).nth(messages(w).count())
    send(w, text)
    expect(reply).to_contain_text(containing)
    return reply.inner_text()


def stats(w: Watched) -> dict[str, str]:
    """The table ``/stats`` answers, as name -> value."""
    ask(w, "/stats", "This conversation")
    rows = messages(w).last.locator("tbody tr")
    return dict(tuple(r.locator("td").all_inner_texts()) for r in rows.all())  # type: ignore[misc]


def stream_frames(w: Watched) -> list[str]:
    return [f for f in w.frames if '"stream_token"' in f or '"stream_start"' in f]


def test_a_signed_in_user_gets_a_streamed_answer_with_numbered_sources(
    watched: Watched,
) -> None:
    w = watched
    sign_in(w, "alice")
    before = len(stream_frames(w))
    send(w, QUESTION)
    text = last_reply(w, "Sources: [1]")
    assert ANSWER in text
    # Streamed: the page got the answer in many growing pieces, not all at once.
    streamed = stream_frames(w)[before:]
    assert len(streamed) >= 5, streamed
    # Sources first: the first frame names what the model reads, before any answer text.
    assert "Reading: [1] Architecture" in streamed[0] and "committed" not in streamed[0]
    # The numbered source opens the quoted passage with its title and file.
    w.page.locator(
        "[data-step-type=assistant_message] a.element-link", has_text="[1]"
    ).first.click()
    panel = w.page.get_by_text("upload:architecture.md")
    expect(panel).to_be_visible()
    expect(w.page.get_by_text("Architecture", exact=True)).to_be_visible()
    expect(w.page.get_by_text("never changes a committed index in place").last).to_be_visible()
    w.shot("chat-cited-answer")
    w.assert_clean()


def test_an_answer_offers_its_signed_bundle_for_download(watched: Watched) -> None:
    from xnai.adapters.security.keyring import FernetKeyRing
    from xnai.adapters.security.signing import Ed25519Signer
    from xnai.domain.bundles import parse_bundle
    from xnai.services.answer_bundles import signature_problem

    w = watched
    sign_in(w, "victor")
    text = ask(w, QUESTION, "Sources: [1]")
    link = messages(w).last.get_by_text("answer-bundle.json")
    expect(link).to_be_visible()
    with w.page.expect_download() as download:
        link.click()
    saved = w.server.root / "downloaded-bundle.json"
    download.value.save_as(saved)
    bundle = parse_bundle(saved.read_bytes())
    assert ANSWER in bundle.answer and ANSWER in text
    assert [c.source for c in bundle.citations] == ["upload:architecture.md"]
    ring = FernetKeyRing.open(w.server.root / "data" / "keys" / "master.key")
    assert signature_problem(bundle, Ed25519Signer(ring)) == ""
    w.shot("chat-answer-bundle")
    w.assert_clean()


def test_commands_stats_retrieval_off_and_on_reset_help_and_curate(watched: Watched) -> None:
    w = watched
    sign_in(w, "alice")
    help_text = ask(w, "/help", "Commands")
    for command in ("/query", "/rag on|off", "/stats", "/reset", "/curate", "/help"):
        assert command in help_text
    ask(w, QUESTION, "Sources: [1]")
    numbers = stats(w)
    assert numbers["questions"] == "1" and numbers["answered from the library"] == "1"
    assert numbers["first token, median"].endswith(" ms") and numbers["retrieval"] == "on"
    ask(w, "/rag off", "Retrieval is off")
    assert "Sources" not in ask(w, QUESTION, PLAIN_ANSWER)
    assert ANSWER in ask(w, f"/query {QUESTION}", "Sources: [1]")
    numbers = stats(w)
    assert numbers["questions"] == "3" and numbers["answered without retrieval"] == "1"
    assert numbers["retrieval"] == "off" and numbers["history kept"].startswith("3 turns")
    ask(w, "/rag on", "Retrieval is on")
    ask(w, "/reset", "forgotten")
    assert stats(w)["history kept"].startswith("0 turns")
    ask(w, "/curate https://example.org/", "Curation is not available yet")
    ask(w, "/frobnicate", "Unknown command")
    w.shot("chat-commands")
    w.assert_clean()


def test_an_editor_uploads_a_file_and_gets_it_answered(watched: Watched) -> None:
    w = watched
    note = w.server.root / "quokka.md"
    note.write_text("# Quokka census\n\nThe quokka colony on Rottnest counts 412 animals.\n")
    sign_in(w, "erin")
    w.page.set_input_files("#upload-button-input", str(note))
    expect(w.page.get_by_text("quokka.md").first).to_be_visible()
    w.page.click("#chat-submit")
    result = last_reply(w, "quokka.md: added")
    assert "Files" in result
    send(w, "How many animals does the quokka colony count?")
    answer = last_reply(w, "Sources: [1]")
    assert "412 animals" in answer
    w.shot("chat-upload-editor")
    w.assert_clean()


def admin_token(server: Server) -> str:
    r = httpx.post(
        f"{server.url}/v1/auth/login",
        json={"username": "alice", "password": password_of("alice")},
    )
    r.raise_for_status()
    return str(r.json()["token"])


def test_a_viewer_is_told_they_lack_the_permission_to_upload(
    watched: Watched, server: Server
) -> None:
    w = watched
    note = w.server.root / "wombat.md"
    note.write_text("# Wombats\n\nThe wombat burrow holds 77 wombats.\n")
    sign_in(w, "victor")
    w.page.set_input_files("#upload-button-input", str(note))
    expect(w.page.get_by_text("wombat.md").first).to_be_visible()
    w.page.click("#chat-submit")
    text = last_reply(w, "lack the permission")
    assert "viewer" in text
    w.shot("chat-upload-viewer")
    w.assert_clean()
    docs = httpx.get(
        f"{server.url}/v1/documents", headers={"Authorization": f"Bearer {admin_token(server)}"}
    ).json()["documents"]
    assert all("wombat" not in d["source"] for d in docs)
    assert not list((server.root / "data" / "chat" / ".files").rglob("wombat*"))


def test_hostile_titles_and_answers_render_as_inert_text(watched: Watched) -> None:
    w = watched
    sign_in(w, "alice")
    send(w, "What is in the zebra archive? xss")
    text = last_reply(w, "Sources:")
    assert "[x](javascript:alert(1))" in text  # a refused link stays visible as text
    assert "t (http://203.0.113.1/x.png)" in text  # an image becomes its alt text and address
    assert "<img src=x onerror=alert(2)>" in text
    message = w.page.locator("[data-step-type=assistant_message]").last
    assert message.locator("img").count() == 1  # the assistant's avatar, nothing else
    assert message.locator("a[href^='javascript']").count() == 0
    assert message.locator("a[href*='203.0.113.1']").count() == 0
    message.locator("a.element-link", has_text="[1]").first.click()
    expect(w.page.get_by_text(XSS_TITLE).last).to_be_visible()
    assert w.page.locator("img[src='x']").count() == 0
    w.page.wait_for_timeout(500)  # time for any onerror handler to fire
    w.shot("chat-hostile-content")
    w.assert_clean()
    assert not [u for u in w.requests if "203.0.113.1" in u]


def test_addresses_in_a_quoted_passage_are_text_in_the_source_panel(watched: Watched) -> None:
    w = watched
    sign_in(w, "alice")
    send(w, "Where does the heron relay report to?")
    last_reply(w, "Sources: [1]")
    messages(w).last.locator("a.element-link", has_text="[1]").first.click()
    panel = w.page.locator("#side-view-content")
    expect(panel.get_by_text("upload:relay.md")).to_be_visible()
    expect(panel).to_contain_text(LINKED_URL)
    for address in ("https://198.51.100.7/beacon", "www.example.org/heron", "heron@example.org"):
        expect(panel).to_contain_text(address)
    assert panel.locator("a[href]").count() == 0, panel.inner_html()
    w.shot("chat-source-panel-addresses")
    w.assert_clean()


def test_a_spoken_question_is_transcribed_answered_and_spoken_back(watched: Watched) -> None:
    w = watched
    sign_in(w, "alice")
    w.page.locator("#message-composer button").first.click()  # the microphone
    question = w.page.locator("[data-step-type=user_message]").last
    expect(question).to_contain_text(SPOKEN_QUESTION)
    assert ANSWER in last_reply(w, "Sources: [1]")
    deadline = time.monotonic() + 10
    while not [f for f in w.frames if '"audio_chunk"' in f] and time.monotonic() < deadline:
        w.page.wait_for_timeout(100)
    assert [f for f in w.frames if '"audio_connection","on"' in f]
    assert [f for f in w.frames if '"audio_chunk"' in f and "pcm16" in f]
    w.shot("chat-voice")
    w.assert_clean()


def test_an_mfa_user_gives_the_code_in_the_chat(watched: Watched, server: Server) -> None:
    w = watched
    totp = pyotp.TOTP((server.root / "mona.totp").read_text().strip())
    sign_in(w, "mona", greeted=False)
    prompt = last_reply(w, "one-time code")
    assert "Signed in" not in prompt
    now = time.time()
    valid = {totp.at(now + d) for d in (-30, 0, 30, 60)}
    send(w, next(c for c in ("000000", "111111", "222222") if c not in valid))
    last_reply(w, "not accepted")
    send(w, totp.now())
    expect(w.page.get_by_text("Signed in as")).to_be_visible()
    send(w, QUESTION)
    assert ANSWER in last_reply(w, "Sources: [1]")
    w.assert_clean()


def test_a_locked_account_is_told_so_on_the_login_form(watched: Watched, server: Server) -> None:
    w = watched
    for _ in range(5):
        sign_in(w, "lou", "not the password at all", greeted=False)
        expect(w.page.get_by_role("alert")).to_be_visible()
    expect(w.page.get_by_text("locked")).to_be_visible()
    sign_in(w, "lou", greeted=False)  # the right password, while locked
    expect(w.page.get_by_text("locked")).to_be_visible()
    w.shot("chat-locked")
    w.assert_clean()


def test_a_disabled_user_is_stopped_at_the_next_question(watched: Watched, server: Server) -> None:
    w = watched
    sign_in(w, "dora")
    send(w, QUESTION)
    last_reply(w, "Sources: [1]")
    r = httpx.post(
        f"{server.url}/v1/users/dora/disable",
        headers={"Authorization": f"Bearer {admin_token(server)}"},
    )
    assert r.status_code == 200, r.text
    send(w, QUESTION)
    last_reply(w, "sign in again")
    assert len([t for t in replies(w) if ANSWER in t]) == 1
    w.assert_clean()


def test_the_chat_has_the_ui_security_headers_and_refuses_foreign_origins(
    server: Server,
) -> None:
    page = httpx.get(f"{server.chat}/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == UI_CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in UI_CSP and "https:" not in UI_CSP
    for url in ("https://", "http://", "//fonts", "cdn.jsdelivr"):
        assert url not in page.text
    script = page.text.split('src="')[2].split('"')[0]  # boot.js, then the bundle
    asset = httpx.get(f"{server.url}{script}")
    assert asset.status_code == 200 and asset.headers["content-security-policy"] == UI_CSP
    assert httpx.get(f"{server.url}/health").headers["content-security-policy"] == API_CSP
    handshake = f"{server.chat}/ws/socket.io/?EIO=4&transport=polling"
    foreign = httpx.get(handshake, headers={"Origin": "http://attacker.example"})
    assert foreign.status_code >= 400
    own = httpx.get(handshake, headers={"Origin": server.url})
    assert own.status_code == 200 and json.loads(own.text[1:])["sid"]


def audit_events(server: Server, event_type: str) -> list[dict[str, object]]:
    lines = (server.root / "data" / "audit" / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if e.get("event_type") == event_type]


def test_logging_out_ends_the_session(watched: Watched, server: Server) -> None:
    w = watched
    sign_in(w, "erin")
    before = len(audit_events(server, "logout"))
    w.page.locator("#header button").last.click()  # the user menu
    w.page.get_by_text("Logout").click()
    expect(w.page.locator("#email")).to_be_visible()
    deadline = time.monotonic() + 5
    while len(audit_events(server, "logout")) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(audit_events(server, "logout")) == before + 1
    w.page.goto(w.server.chat)
    expect(w.page.locator("#email")).to_be_visible()  # signed out for good
    w.assert_clean()


def test_voice_on_reads_typed_answers_aloud_as_a_clip(watched: Watched) -> None:
    w = watched
    sign_in(w, "victor")
    ask(w, "/voice on", "read aloud")
    ask(w, QUESTION, "Sources: [1]")
    clip = messages(w).last.locator("audio")
    expect(clip).to_have_count(1)
    src = clip.get_attribute("src") or ""
    assert src.startswith(f"{w.server.chat}/project/file/")
    ask(w, "/voice off", "no longer read aloud")
    w.assert_clean()
