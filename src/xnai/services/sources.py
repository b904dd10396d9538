"""Reading files into ``Source`` records, with per-file errors instead of exceptions."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePath

from xnai.domain.errors import DocumentError, XnaiError
from xnai.domain.models import LoadedDocument
from xnai.domain.ports import Loader
from xnai.services.filetype import ArchiveLimits, check_content
from xnai.services.knowledge import Source, sha256_bytes

MB = 1024 * 1024
Failure = tuple[str, Exception]


def check_size(size: int, max_bytes: int) -> None:
    """DocumentError when ``size`` is over ``max_bytes``."""
    if size > max_bytes:
        raise DocumentError(
            f"file is {size / MB:.1f} MB, over the limit of {max_bytes / MB:.1f} MB "
            "(config key ingest.max_file_mb)"
        )


def read_limited(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path``; DocumentError when larger than ``max_bytes``."""
    check_size(path.stat().st_size, max_bytes)
    data = path.read_bytes()
    check_size(len(data), max_bytes)  # it may have grown while we looked
    return data


def checked_loader(
    path: Path, data: bytes, loader_for: Callable[[Path], Loader], limits: ArchiveLimits
) -> Loader:
    """The loader for ``path`` once the content agrees with the extension (see filetype)."""
    loader = loader_for(path)  # an unsupported extension is reported first
    check_content(path.suffix, data, limits)
    return loader


def to_source(source: str, data: bytes, loader: Loader, path: Path) -> Source:
    """Parse ``data`` with ``loader`` into a Source."""
    loaded: LoadedDocument = loader.load(path, data)
    return Source(
        source=source,
        sha256=sha256_bytes(data),
        size=len(data),
        title=loaded.title,
        text=loaded.text,
        mime=loaded.mime,
        loader=loaded.loader,
        loader_version=loaded.loader_version,
    )


def guarded(source: str, make: Callable[[], Source]) -> Source | Failure:
    """``make()``, or the failure of this one source: a bad file never stops the batch."""
    try:
        return make()
    except (XnaiError, OSError) as exc:
        return (source, exc)
    except Exception as exc:  # a parser bug
        return (source, DocumentError(f"could not parse: {type(exc).__name__}: {exc}"))


def file_sources(
    paths: Iterable[Path],
    loader_for: Callable[[Path], Loader],
    max_bytes: int,
    is_unchanged: Callable[[str, str], bool],
    limits: ArchiveLimits | None = None,
) -> Iterator[Source | Failure]:
    """Sources for ``paths``; unchanged files are not parsed again; errors are per file."""
    limits = limits or ArchiveLimits()

    def make(path: Path, name: str) -> Source:
        data = read_limited(path, max_bytes)
        sha = sha256_bytes(data)
        if is_unchanged(name, sha):  # identity is enough for the ingest to skip it
            return Source(name, sha, len(data), "", "", "", "", "")
        return to_source(name, data, checked_loader(path, data, loader_for, limits), path)

    for path in paths:
        name = str(path.resolve())
        yield guarded(name, lambda: make(path, name))  # noqa: B023 - called at once


def upload_sources(
    uploads: Iterable[tuple[str, bytes]],
    loader_for: Callable[[Path], Loader],
    max_bytes: int,
    limits: ArchiveLimits | None = None,
) -> Iterator[Source | Failure]:
    """Sources for uploaded files, identified as ``upload:<name>`` so a re-upload replaces."""
    limits = limits or ArchiveLimits()

    def make(name: str, data: bytes) -> Source:
        check_size(len(data), max_bytes)
        loader = checked_loader(Path(name), data, loader_for, limits)
        return to_source(f"upload:{name}", data, loader, Path(name))

    for name, data in uploads:
        yield guarded(f"upload:{name}", lambda: make(name, data))  # noqa: B023 - called at once


def passes_checks(
    name: str,
    data: bytes,
    loader_for: Callable[[Path], Loader],
    max_bytes: int,
    limits: ArchiveLimits,
) -> bool:
    """Whether an upload passes the size, type and content checks (worth keeping, then)."""
    try:
        check_size(len(data), max_bytes)
        checked_loader(Path(name), data, loader_for, limits)
    except XnaiError:
        return False
    return True


# Control, format (bidi overrides, zero-width), surrogate, private-use and unassigned
# characters, and line or paragraph separators: invisible or misleading in a name.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
MAX_NAME_BYTES = 160  # with a 64-character digest, a stored name stays under 255 bytes
MAX_SUFFIX_CHARS = 16


def safe_name(filename: str | None) -> str:
    """The base name of an uploaded file, made harmless; refuses names with nothing left.

    Compatibility forms are folded first (a full-width solidus becomes '/'), then both
    separators split the name and only its last part is kept; hidden characters go and
    long names are shortened, keeping a short extension. The name only labels the
    document (``upload:<name>``); stored files are named by the server.
    """
    text = unicodedata.normalize("NFKC", filename or "")
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _HIDDEN_CATEGORIES)
    name = PurePath(text.replace("\\", "/")).name.strip().rstrip(". ")
    if not name.strip("."):
        raise XnaiError(f"invalid upload file name {filename!r}")
    return _shorten(name)


def _shorten(name: str) -> str:
    """``name`` cut to MAX_NAME_BYTES of UTF-8, keeping its extension when that is short."""
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    suffix = PurePath(name).suffix
    if len(suffix) > MAX_SUFFIX_CHARS:
        suffix = ""
    stem = name[: len(name) - len(suffix)].encode()[: MAX_NAME_BYTES - len(suffix.encode())]
    return stem.decode(errors="ignore").rstrip(". ") + suffix
