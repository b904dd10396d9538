"""The real ``xnai`` entry point in a child process, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys


def xnai(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``xnai ARGS`` on a plain 80-column terminal; its exit status and output."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "xnai", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
