"""Running the installed `newsetl` command as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NEWSETL = Path(sys.executable).with_name("newsetl")


def newsetl_cli(*args: str, env: dict | None = None, cwd=None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`newsetl ARGS` in a subprocess; its environment is this one plus `env`."""
    return subprocess.run([str(NEWSETL), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})
