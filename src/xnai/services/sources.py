"""Reading files into ``Source`` records, with per-file errors instead of exceptions."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from xnai.domain.errors import DocumentError, XnaiError
from xnai.domain.models import LoadedDocument
from xnai.domain.ports import Loader
from xnai.services.knowledge import Source

MB = 1024 * 1024
Failure = tuple[str, Exception]


def read_limited(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path``; DocumentError when larger than ``max_bytes``."""
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentError(
            f"file is {size / MB:.1f} MB, over the limit of {max_bytes / MB:.1f} MB "
            "(config key ingest.max_file_mb)"
        )
    data = path.read_bytes()
    if len(data) > max_bytes:  # grew while we looked
        raise DocumentError(f"file is over the limit of {max_bytes / MB:.1f} MB")
    return data


def to_source(source: str, data: bytes, loader: Loader, path: Path) -> Source:
    """Parse ``data`` with ``loader`` into a Source."""
    loaded: LoadedDocument = loader.load(path, data)
    return Source(
        source=source,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        title=loaded.title,
        text=loaded.text,
        mime=loaded.mime,
        loader=loaded.loader,
        loader_version=loaded.loader_version,
    )


def file_sources(
    paths: Iterable[Path],
    loader_for: Callable[[Path], Loader],
    max_bytes: int,
    is_unchanged: Callable[[str, str], bool],
) -> Iterator[Source | Failure]:
    """Sources for ``paths``; unchanged files are not parsed again; errors are per file."""
    for path in paths:
        name = str(path.resolve())
        try:
            data = read_limited(path, max_bytes)
            sha = hashlib.sha256(data).hexdigest()
            if is_unchanged(name, sha):
                yield Source(name, sha, len(data), "", "", "", "", "")
                continue
            yield to_source(name, data, loader_for(path), path)
        except (XnaiError, OSError) as exc:
            yield (name, exc)
        except Exception as exc:  # a parser bug must not stop the batch
            yield (name, DocumentError(f"could not parse: {type(exc).__name__}: {exc}"))


def upload_sources(
    uploads: Iterable[tuple[str, bytes]],
    loader_for: Callable[[Path], Loader],
    max_bytes: int,
) -> Iterator[Source | Failure]:
    """Sources for uploaded files, identified as ``upload:<name>`` so a re-upload replaces."""
    for name, data in uploads:
        source = f"upload:{name}"
        try:
            if len(data) > max_bytes:
                raise DocumentError(
                    f"file is {len(data) / MB:.1f} MB, over the limit of {max_bytes / MB:.1f} MB "
                    "(config key ingest.max_file_mb)"
                )
            path = Path(name)
            yield to_source(source, data, loader_for(path), path)
        except XnaiError as exc:
            yield (source, exc)
        except Exception as exc:  # a parser bug must not stop the batch
            yield (source, DocumentError(f"could not parse: {type(exc).__name__}: {exc}"))
