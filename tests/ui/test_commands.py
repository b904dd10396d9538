"""Slash commands: parsing, switches and the help text."""

from __future__ import annotations

import pytest

from xnai.ui.commands import COMMANDS, Command, help_markdown, parse, switch


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/help", Command("help")),
        ("  /RAG   off ", Command("rag", "off")),
        ("/query what is the pump speed?", Command("query", "what is the pump speed?")),
        ("/curate https://example.org/a b", Command("curate", "https://example.org/a b")),
        ("/frobnicate now", Command("frobnicate", "now")),
    ],
)
def test_commands_are_parsed(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["what is /rag?", "//not a command", "/", "   ", "plain"])
def test_questions_are_not_commands(text: str) -> None:
    assert parse(text) is None


def test_unknown_commands_are_recognised_as_such() -> None:
    assert Command("rag").known and not Command("frobnicate").known


@pytest.mark.parametrize(
    ("word", "value"), [("on", True), ("OFF", False), ("1", True), ("x", None)]
)
def test_switch_words(word: str, value: bool | None) -> None:
    assert switch(word) is value


def test_help_lists_every_command_with_its_usage() -> None:
    text = help_markdown()
    for name, (arg, _) in COMMANDS.items():
        assert f"`/{name} {arg}`".replace(" `", "`") in text
    for required in ("/help", "/query", "/curate", "/stats", "/reset", "/rag on|off"):
        assert required in text
