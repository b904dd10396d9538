"""The chat UI (Chainlit) mounted into the HTTP app at ``/chat``.

Chainlit reads its configuration from a home folder when it is first imported. The chat's
home is ``<data_dir>/chat``, written afresh at every start from the settings: its
``config.toml`` (telemetry off, no HTML in messages, uploads limited like the HTTP API,
same-origin only), the page itself rebuilt from Chainlit's so that it loads nothing from
another host (no web fonts, no CDN style sheets, no inline scripts), the logo and the
welcome text. The login cookie is signed with a secret derived from the key ring.

One process serves one chat: Chainlit keeps its state in module globals.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from xnai.bootstrap import Container
from xnai.domain.errors import ConfigError
from xnai.ui.tickets import cookie_secret
from xnai.ui.voice import AUDIO_SAMPLE_RATE

log = logging.getLogger("xnai.ui")

PATH = "/chat"
ASSETS = Path(__file__).parent / "assets"
PUBLIC_FILES = (
    "boot.js",
    "xnai.css",
    "favicon.svg",
    "logo_light.svg",
    "logo_dark.svg",
    "login.svg",
)
COOKIE_NAME = "xnai_chat"
_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)

# Browsers label the same file differently: each accepted type with the suffixes it may have.
MIME_SUFFIXES: dict[str, tuple[str, ...]] = {
    "text/plain": (".txt", ".md", ".markdown"),
    "text/markdown": (".md", ".markdown"),
    "text/x-markdown": (".md", ".markdown"),
    "text/html": (".html", ".htm"),
    "application/pdf": (".pdf",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/octet-stream": (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"),
}


def home_dir(container: Container) -> Path:
    """The chat's home folder: ``<data_dir>/chat``."""
    return container.settings.data_dir / "chat"


def mount(app: FastAPI, container: Container, path: str = PATH) -> None:
    """Serve the chat at ``path`` of ``app``; ImportError when Chainlit is not installed
    (the ``ui`` extra)."""
    if importlib.util.find_spec("chainlit") is None:
        raise ImportError("the chat UI needs Chainlit: install the ui extra (pip install xnai[ui])")
    loaded = loaded_home()
    home = prepare(container, path)
    if loaded is not None and loaded != home:
        log.warning("this process's chat UI already uses %s; %s is not used", loaded, home)
    from xnai.ui import app as chat

    app.mount(path, chat.install(container))


def prepare(container: Container, path: str = PATH) -> Path:
    """Write the chat's home folder and point Chainlit at it (before it is imported)."""
    home = home_dir(container)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    place_files(home / ".files")
    _write(home / ".chainlit" / "config.toml", chainlit_config(container, path))
    _write(home / ".chainlit" / "translations" / "en-US.json", translations())
    readme = (ASSETS / "chainlit.md").read_text(encoding="utf-8")
    for name in ("chainlit.md", "chainlit_en-US.md"):  # the Readme button's text
        _write(home / name, readme)
    public = home / "public"
    for name in PUBLIC_FILES:
        _write(public / name, (ASSETS / name).read_text(encoding="utf-8"))
    build_page(home / "build", path)
    os.environ.update(
        {
            "CHAINLIT_APP_ROOT": str(home),
            "CHAINLIT_ENV_FILE": str(home / ".env"),  # never the working folder's .env
            "CHAINLIT_AUTH_SECRET": cookie_secret(container.keyring),
            "CHAINLIT_AUTH_COOKIE_NAME": COOKIE_NAME,
            "CHAINLIT_COOKIE_SAMESITE": "strict",
            "CHAINLIT_ROOT_PATH": path,
            "CHAINLIT_NO_TELEMETRY": "true",
        }
    )
    return home


def place_files(link: Path) -> Path:
    """Chainlit keeps the elements of a conversation (quoted passages, dropped files) in
    ``<home>/.files`` as plain files. Point that at a fresh owner-only folder in memory
    (``/dev/shm``) when there is one, else in the system's temporary folder, so plain
    document text never lands in the encrypted data directory; the folder of a previous run
    goes first, and this one when the process ends."""
    if link.is_symlink():
        shutil.rmtree(link.resolve(), ignore_errors=True)
        link.unlink()
    elif link.exists():  # an older layout: a real folder inside the data directory
        shutil.rmtree(link, ignore_errors=True)
    shm = Path("/dev/shm")
    where = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    target = Path(tempfile.mkdtemp(prefix="xnai-chat-", dir=where))  # mode 0700
    link.symlink_to(target, target_is_directory=True)
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    return target


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text, encoding="utf-8")


def chainlit_dist() -> Path:
    """The folder of Chainlit's built page (found without importing Chainlit)."""
    spec = importlib.util.find_spec("chainlit")
    if spec is None or spec.origin is None:
        raise ImportError("Chainlit is not installed: install the ui extra")
    return Path(spec.origin).parent / "frontend" / "dist"


def build_page(target: Path, path: str) -> Path:
    """Chainlit's page without anything from another host: its web font and CDN style sheet
    links go, its inline script becomes a file, our style sheet and title come in."""
    dist = chainlit_dist()
    html = (dist / "index.html").read_text(encoding="utf-8")
    html = re.sub(r"<!-- FONT START -->.*?<!-- FONT END -->", "", html, flags=re.DOTALL)
    html = re.sub(r"<link\b[^>]*\bhref=\"https?://[^>]*>\s*", "", html, flags=re.DOTALL)
    html = re.sub(
        r"<script>\s*const global = globalThis;\s*</script>",
        '<script src="/public/boot.js"></script>',
        html,
    )
    tags = (
        "<title>Xoe-NovAi</title>\n"
        '    <meta name="description" content="Answers from your own documents, offline.">\n'
        f'    <meta property="og:root_path" content="{path}">\n'
        '    <link rel="icon" href="/favicon" />'
    )
    html = html.replace("<!-- TAG INJECTION PLACEHOLDER -->", tags)
    html = html.replace("<!-- JS INJECTION PLACEHOLDER -->", "")
    html = html.replace(
        "<!-- CSS INJECTION PLACEHOLDER -->", '<link rel="stylesheet" href="/public/xnai.css">'
    )
    if "<script>" in html or _EXTERNAL.search(html):
        raise ConfigError(
            f"this Chainlit version's page ({dist / 'index.html'}) has inline scripts or "
            "links to other hosts that the chat cannot remove"
        )
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    (target / "index.html").write_text(html, encoding="utf-8")
    for name in ("assets", "favicon.svg", "logo_light.svg", "logo_dark.svg"):
        link = target / name
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        link.symlink_to(dist / name)
    return target


def chainlit_config(container: Container, path: str = PATH) -> str:
    """Chainlit's ``config.toml`` for this installation."""
    s = container.settings
    accept = {
        mime: [x for x in suffixes if x in s.ingest.suffixes]
        for mime, suffixes in MIME_SUFFIXES.items()
    }
    audio = getattr(container, "speech_to_text", None) is not None
    config: dict[str, dict[str, Any]] = {
        "project": {
            "allow_origins": [],  # same origin only
            "session_timeout": 300,
            "user_session_timeout": s.enterprise.security.session_timeout,
            "cache": False,
            "persist_user_env": False,
        },
        "features": {
            "unsafe_allow_html": False,
            "latex": False,
            "user_message_markdown": False,
            "edit_message": False,
            "allow_thread_sharing": False,
            "favorites": False,
            "auto_tag_thread": False,
        },
        "features.spontaneous_file_upload": {
            "enabled": True,
            "accept": {mime: exts for mime, exts in accept.items() if exts},
            "max_files": 10,
            "max_size_mb": max(1, math.ceil(s.ingest.max_file_mb)),
        },
        "features.audio": {"enabled": audio, "sample_rate": AUDIO_SAMPLE_RATE},
        "features.mcp": {"enabled": False},
        "UI": {
            "name": "Xoe-NovAi",
            "description": "Answers from your own documents, offline.",
            "cot": "hidden",
            "default_theme": "light",
            "language": "en-US",
            "confirm_new_chat": False,
            "custom_build": "build",  # the page written by build_page
            "login_page_image": f"{path}/public/login.svg",
        },
        "meta": {"generated_by": _chainlit_version()},
    }
    return "\n".join(_toml_table(name, values) for name, values in config.items())


def _chainlit_version() -> str:
    from importlib.metadata import version

    return version("chainlit")


def _toml_table(name: str, values: dict[str, Any]) -> str:
    lines = [f"[{name}]"]
    for key, value in values.items():
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    # JSON strings, numbers, booleans and arrays are valid TOML.
    return json.dumps(value)


def translations() -> str:
    """Chainlit's English texts, with the login form asking for a username and the
    messages of a locked account."""
    data = json.loads(
        (chainlit_dist().parent.parent / "translations" / "en-US.json").read_text(encoding="utf-8")
    )
    login = data["auth"]["login"]
    login["title"] = "Sign in to Xoe-NovAi"
    login["form"]["email"] = {
        "label": "Username",
        "required": "the username is required",
        "placeholder": "",
    }
    login["errors"]["credentialsSignin"] = (
        "Sign in failed: check the username and password. If your account uses a one-time "
        "code, the chat asks for it after this step."
    )
    login["errors"]["locked"] = (
        "Too many failed sign-ins: this account is locked for a while. Try again later."
    )
    return json.dumps(data, indent=2, ensure_ascii=False)


def loaded_home() -> Path | None:
    """The home folder of the Chainlit already imported in this process, if any."""
    module = sys.modules.get("chainlit.config")
    root = getattr(module, "APP_ROOT", None)
    return Path(root) if root else None
