"""What both llama.cpp backends need before and at loading a GGUF model."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from xnai.adapters.optional import optional_import
from xnai.domain.errors import ModelUnavailableError


def import_runtime(module: str, **hint: str) -> ModuleType:
    """Import a llama.cpp binding on first use (it is heavy and optional), after choosing
    how its idle threads wait; ``hint`` is ``optional_import``'s message for a missing one."""
    # ggml's OpenMP threads spin while they wait. When anything else wants a core
    # (embedding, the web server, another process), 2 spinning threads on 2 cores make
    # generation 15-30x slower; passive waiting avoids that collapse at the cost of about
    # a third of the speed on an idle machine. libgomp reads this once, when it loads;
    # a value the user set (OMP_WAIT_POLICY=ACTIVE for benchmarks) wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return optional_import(module, **hint)


def model_file(path: Path) -> Path:
    """``path`` as a Path; ModelUnavailableError when there is no such file."""
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(f"model file not found: {path}")
    return path
