"""Optional packages: imported on first use, or an error that says how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

from xnai.domain.errors import MissingPackageError


def optional_import(
    module: str,
    *,
    feature: str,
    package: str,
    extra: str,
    install: str = "",
    otherwise: str = "",
) -> ModuleType:
    """``module``, imported; MissingPackageError when it is absent or fails to load.

    The message always reads ``<feature> needs the optional package <package> (<why>):
    <install>``; ``install`` defaults to the pip commands for ``package`` and the project's
    ``extra``, and ``otherwise`` adds a way to do without it.
    """
    try:
        return importlib.import_module(module)
    except (ImportError, OSError, RuntimeError) as exc:  # absent, or its native library broken
        how = install or f"pip install {package} or pip install 'xnai[{extra}]'"
        alternative = f", or {otherwise}" if otherwise else ""
        raise MissingPackageError(
            f"{feature} needs the optional package {package} ({exc}): {how}{alternative}"
        ) from exc
