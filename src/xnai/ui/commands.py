"""The chat's slash commands: parsing and help."""

from __future__ import annotations

from dataclasses import dataclass

# name -> (argument, what it does); the order is the order of /help.
COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("", "list the commands"),
    "query": ("QUESTION", "answer from the library, even while retrieval is off"),
    "rag": ("on|off", "answer from the library (on, the default) or chat with the model only"),
    "stats": ("", "questions, answers and timings of this conversation"),
    "reset": ("", "forget the conversation so far"),
    "collection": ("[NAME]", "show or choose the collection uploads go into"),
    "voice": ("on|off", "speak the answers aloud (when speech is available)"),
    "curate": ("SOURCE", "queue a curation job (not available yet)"),
}

CURATE_UNAVAILABLE = (
    "Curation is not available yet: this installation cannot queue curation jobs. "
    "Add documents by dropping files into the chat (editors and admins) or with "
    "`xnai ingest`."
)


@dataclass(frozen=True, slots=True)
class Command:
    """A slash command: its name (lower case) and the rest of the line."""

    name: str
    arg: str = ""

    @property
    def known(self) -> bool:
        """Whether the chat has a command of this name."""
        return self.name in COMMANDS


def parse(text: str) -> Command | None:
    """The command in a message (``/name args``), or None for a question."""
    stripped = text.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    head, _, rest = stripped[1:].partition(" ")
    name = head.strip().lower()
    if not name:
        return None
    return Command(name, rest.strip())


def switch(arg: str) -> bool | None:
    """``on``/``off`` (and their usual synonyms) as a bool; None when it is neither."""
    word = arg.strip().lower()
    if word in ("on", "yes", "true", "1"):
        return True
    if word in ("off", "no", "false", "0"):
        return False
    return None


def help_markdown() -> str:
    """The command list, as Markdown."""
    lines = ["**Commands**", ""]
    for name, (arg, what) in COMMANDS.items():
        usage = f"/{name} {arg}".strip()
        lines.append(f"- `{usage}`: {what}")
    lines += [
        "",
        "Anything else is a question. Answers cite their sources as [1], [2] ...: click one "
        "to read the quoted passage. Editors and admins can drop files into the chat to add "
        "them to the library.",
    ]
    return "\n".join(lines)
