"""The directories of index generations: ``gen-000007`` once published, staged beside."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from xnai.adapters.storage.fsutil import TMP_MARK
from xnai.adapters.storage.generation_info import check_info, write_info

_GEN = re.compile(r"^gen-(\d{6,})$")


class GenerationDirs:
    """Published and staged generation directories under ``root``, and their recorded
    digests; ``_content`` says what a stored file holds (the bytes themselves here)."""

    root: Path

    def generation_dir(self, generation: int) -> Path:
        """Final directory of a generation."""
        return self.root / f"gen-{generation:06d}"

    def stage(self, generation: int) -> Path:
        """A fresh temporary directory beside the generations."""
        staged = self.root / f"{TMP_MARK}gen-{generation:06d}-{os.getpid()}"
        if staged.exists():
            shutil.rmtree(staged)
        staged.mkdir(mode=0o700)
        return staged

    def describe(self, staged: Path, info: dict[str, Any]) -> None:
        """Write ``generation.json``: ``info`` and the sha256 of every staged file's content."""
        write_info(staged, info, self._content)

    def damage(self, generation: int) -> list[str]:
        """The files of a generation whose content differs from what was recorded."""
        return check_info(self.generation_dir(generation), self._content)

    def generations(self) -> list[int]:
        """Published generations present, ascending."""
        found = (_GEN.match(p.name) for p in self.root.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def _content(self, data: bytes) -> bytes:
        """What a generation file holds."""
        return data
