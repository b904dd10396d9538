"""Read command output as a person does, whatever the terminal's width."""

from __future__ import annotations

import re

_BOX = re.compile(r"[\u2500-\u257f]")


def plain(text: str) -> str:
    """``text`` without box-drawing borders and with every run of white space as one space,
    so a phrase that the terminal wrapped across lines still reads as one."""
    return " ".join(_BOX.sub(" ", text).split())
