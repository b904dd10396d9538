"""What every command shares: consoles and the settings and container of one invocation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from xnai.bootstrap import Container, build
from xnai.config import Settings, load_settings

# Lines stay whole whatever the terminal width: a pipe or a log gets them unbroken.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
state: dict[str, Any] = {"config": None}

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="config.toml to read", envvar="XNAI_CONFIG")
]


def reset(config: Path | None) -> None:
    """Start a new invocation (CliRunner reuses the process)."""
    state.clear()
    state["config"] = config


def settings() -> Settings:
    """Settings of this invocation."""
    if "settings" not in state:
        state["settings"] = load_settings(state["config"])
    return state["settings"]


def container(*, damaged_ok: bool = False) -> Container:
    """The wired application, with the committed index loaded; IndexDamagedError when its
    files are damaged, unless ``damaged_ok`` (the commands that inspect or repair them)."""
    if "container" not in state:
        c = build(settings())
        if damaged_ok:
            c.startup.try_open_index()
        else:
            c.startup.open_index()
        state["container"] = c
    return state["container"]
