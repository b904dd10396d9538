"""``xnai serve`` for the browser tests: the real server (API and chat) over a temp data
directory, with the fake embedder and a scripted fake model so answers are deterministic.

Run as ``python -m tests.ui.chat_server DATA_DIR PORT``; it signs up the test users, ingests
the sample library (the documentation) plus a document with a hostile title, and serves on
127.0.0.1:PORT until killed.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyotp
import uvicorn

from xnai.adapters.memory.llm import FakeChatModel, grounded_reply, numbered_sources
from xnai.adapters.security.passwords import Argon2Hasher
from xnai.bootstrap import Container, build, prepare_process
from xnai.config import load_settings
from xnai.domain.models import ChatMessage
from xnai.domain.rbac import LOCAL_ADMIN, Role
from xnai.domain.voice import AudioChunk, Transcript
from xnai.server import create_server
from xnai.services.resilience import GuardedChatModel

ROOT = Path(__file__).resolve().parents[2]
# alice, erin and victor chat; mona has MFA; lou gets locked out; dora gets disabled.
USERS = {
    "alice": Role.ADMIN,
    "erin": Role.EDITOR,
    "victor": Role.VIEWER,
    "mona": Role.VIEWER,
    "lou": Role.VIEWER,
    "dora": Role.VIEWER,
}
LIBRARY = ("docs/index.md", "docs/explanation")
XSS_TITLE = "<img src=x onerror=alert(1)>"
XSS_ANSWER = (
    "Here is [x](javascript:alert(1)) and ![t](http://203.0.113.1/x.png) "
    "and <img src=x onerror=alert(2)> [1]"
)
PLAIN_ANSWER = "Retrieval is off, so this answer comes from the model alone."
# A passage whose addresses must stay text in the source panel.
LINKED_URL = "http://127.0.0.1:9/?q=SECRET"
LINKED_DOCUMENT = (
    "# Relay notes\n\n"
    f"The heron relay reports to {LINKED_URL} and to <https://198.51.100.7/beacon>, "
    "mirrors at www.example.org/heron and [the archive](http://203.0.113.9/heron), "
    "and mails heron@example.org.\n"
)
SPOKEN_QUESTION = "How does Xoe-NovAi keep an ingest crash-safe?"


def password_of(username: str) -> str:
    """The password of a test user."""
    return f"correct horse battery staple {username}"


def scripted(messages: Sequence[ChatMessage]) -> str:
    """The fake model's reply: hostile Markdown when asked for it, a fixed sentence without
    sources, else the first sentence of source [1] (the fake's grounded reply)."""
    user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    if "xss" in user.lower():
        return XSS_ANSWER
    if not numbered_sources(user):
        return PLAIN_ANSWER
    return grounded_reply(messages)


class FakeSpeechToText:
    """Hears the same question in every recording."""

    name = "fake-stt"

    def transcribe(self, audio: bytes, *, mime: str = "audio/wav") -> Transcript:
        """The fixed question."""
        return Transcript(SPOKEN_QUESTION, "en", len(audio) / 48000, 0.0)


class FakeTextToSpeech:
    """Speaks every text as a short tone."""

    name = "fake-tts"
    sample_rate = 16000

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        """A 0.2 s tone per sentence."""
        tone = b"".join(
            int(8000 * math.sin(2 * math.pi * 440 * i / self.sample_rate)).to_bytes(
                2, "little", signed=True
            )
            for i in range(self.sample_rate // 5)
        )
        for _ in text.split("."):
            yield AudioChunk(tone, self.sample_rate)


def build_container(data_dir: Path) -> Container:
    """A container over ``data_dir`` with the test users and the library."""
    empty = data_dir.parent / "config.toml"
    empty.write_text("", encoding="utf-8")
    settings = load_settings(
        empty,
        models={"llm_backend": "fake", "embedder_backend": "fake"},
        storage={"data_dir": data_dir},
    )
    c = build(settings)
    c.startup.open_index()
    c.auth.hasher = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)
    for name, role in USERS.items():
        if c.auth.repo.user_by_name(name) is None:
            c.auth.create_user(LOCAL_ADMIN, name, role, password_of(name))
    guarded = c.answers.model
    assert isinstance(guarded, GuardedChatModel)
    guarded.model = FakeChatModel(context_size=settings.models.n_ctx, reply=scripted)
    enrol_mfa(c, "mona", data_dir.parent / "mona.totp")
    # Uploaded, so sources are named upload:<file> (no folder of this machine on screen).
    uploads = [
        (p.name, p.read_bytes()) for p in c.ingestion.document_files([ROOT / p for p in LIBRARY])
    ]
    hostile = f"# {XSS_TITLE}\n\nThe zebra archive stores striped xss samples in vault nine.\n"
    uploads.append(("hostile.md", hostile.encode()))
    uploads.append(("relay.md", LINKED_DOCUMENT.encode()))
    report = c.ingestion.ingest_uploads(uploads, user="tests", principal=LOCAL_ADMIN)
    assert not report.failed, report.failed
    c.speech_to_text = FakeSpeechToText()  # type: ignore[attr-defined]
    c.text_to_speech = FakeTextToSpeech()  # type: ignore[attr-defined]
    return c


def enrol_mfa(c: Container, username: str, secret_file: Path) -> None:
    """Enrol ``username`` in MFA with the previous step's code (so the current one is still
    unused) and write the secret to ``secret_file`` for the test's authenticator."""
    principal = c.auth.authenticate(c.auth.login(username, password_of(username)).token).principal
    secret, _ = c.auth.begin_mfa_enrolment(principal, password_of(username))
    totp = pyotp.TOTP(secret)
    c.auth.confirm_mfa_enrolment(principal, totp.at(time.time() - totp.interval))
    secret_file.write_text(secret, encoding="utf-8")


def main() -> None:
    """Serve until killed."""
    data_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    prepare_process()
    app = create_server(build_container(data_dir), warm=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
