"""The chat's home folder: Chainlit's configuration and a page that loads nothing from
another host (written without importing Chainlit)."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import tomllib
from collections.abc import Callable
from importlib.metadata import version

import pytest
from fastapi import FastAPI

from xnai.bootstrap import Container
from xnai.server import with_chat
from xnai.ui import mount
from xnai.ui.tickets import cookie_secret

ENV = (
    "CHAINLIT_APP_ROOT",
    "CHAINLIT_ENV_FILE",
    "CHAINLIT_AUTH_SECRET",
    "CHAINLIT_AUTH_COOKIE_NAME",
    "CHAINLIT_COOKIE_SAMESITE",
    "CHAINLIT_ROOT_PATH",
    "CHAINLIT_NO_TELEMETRY",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever ``prepare`` sets in the environment is undone after the test."""
    for key in ENV:
        monkeypatch.setenv(key, "unset")


def test_the_page_loads_nothing_from_another_host_and_runs_no_inline_script(
    container: Container, env: None
) -> None:
    home = mount.prepare(container)
    page = (home / "build" / "index.html").read_text()
    assert not re.search(r"(?:src|href)\s*=\s*\"?(?:https?:)?//", page)
    assert "fonts.googleapis" not in page and "cdn.jsdelivr" not in page
    assert "<script>" not in page  # no inline script: the policy allows none
    assert '<script src="/public/boot.js"></script>' in page
    assert '<meta property="og:root_path" content="/chat">' in page
    assert (home / "build" / "assets").resolve() == mount.chainlit_dist() / "assets"
    for name in mount.PUBLIC_FILES:
        assert (home / "public" / name).is_file()


def test_chainlits_configuration_is_strict_and_follows_the_settings(
    make_container: Callable[..., Container], env: None
) -> None:
    c = make_container(
        ingest={"max_file_mb": 7.5, "suffixes": [".md", ".pdf"]},
        enterprise={"security": {"session_timeout": 3600}},
    )
    config = tomllib.loads((mount.prepare(c) / ".chainlit" / "config.toml").read_text())
    features = config["features"]
    assert features["unsafe_allow_html"] is False and features["latex"] is False
    assert features["user_message_markdown"] is False and features["edit_message"] is False
    assert features["mcp"] == {"enabled": False}
    upload = features["spontaneous_file_upload"]
    assert upload["max_size_mb"] == 8
    assert upload["accept"]["text/markdown"] == [".md"]
    assert upload["accept"]["application/pdf"] == [".pdf"]
    assert "text/html" not in upload["accept"]  # .html is not an ingested suffix here
    assert features["audio"]["enabled"] is (c.speech_to_text is not None)
    assert config["project"]["allow_origins"] == []
    assert config["project"]["user_session_timeout"] == 3600
    assert config["UI"]["custom_build"] == "build" and config["UI"]["cot"] == "hidden"
    assert config["meta"]["generated_by"] == version("chainlit")


def test_chainlit_is_pointed_at_the_home_with_a_derived_cookie_secret(
    container: Container, env: None
) -> None:
    home = mount.prepare(container)
    assert home == container.settings.data_dir / "chat"
    assert os.environ["CHAINLIT_APP_ROOT"] == str(home)
    assert os.environ["CHAINLIT_AUTH_SECRET"] == cookie_secret(container.keyring)
    assert os.environ["CHAINLIT_ENV_FILE"] == str(home / ".env")  # never the working folder's
    assert os.environ["CHAINLIT_COOKIE_SAMESITE"] == "strict"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_uploads_left_by_a_previous_run_are_removed(container: Container, env: None) -> None:
    stale = mount.home_dir(container) / ".files" / "session" / "secret.md"
    stale.parent.mkdir(parents=True)
    stale.write_text("left behind")
    mount.prepare(container)
    assert not stale.exists()


def test_conversation_files_live_outside_the_data_directory(
    container: Container, env: None
) -> None:
    mount.prepare(container)
    link = mount.home_dir(container) / ".files"
    first = link.resolve()
    assert link.is_symlink() and first.is_dir()
    assert not first.is_relative_to(container.settings.data_dir.resolve())
    assert stat.S_IMODE(first.stat().st_mode) == 0o700
    (first / "passage.txt").write_text("quoted document text")
    mount.prepare(container)  # the next start forgets the previous run's files
    assert not first.exists() and link.resolve() != first


def test_the_login_form_asks_for_a_username_and_explains_a_lockout() -> None:
    texts = json.loads(mount.translations())["auth"]["login"]
    assert texts["form"]["email"]["label"] == "Username"
    assert "locked" in texts["errors"]["locked"]


def test_without_chainlit_the_server_serves_the_api_alone(
    container: Container, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(mount.importlib.util, "find_spec", lambda name: None)
    app = FastAPI()
    with caplog.at_level(logging.WARNING, logger="xnai.server"):
        assert with_chat(app, container) is app
    assert "ui extra" in caplog.text
    assert not [r for r in app.routes if getattr(r, "path", "") == "/chat"]
