"""Shared by the CLI tests: how to start the installed ``riskon`` command in a subprocess."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def riskon_cmd() -> list[str]:
    """The installed ``riskon`` entry point (beside this interpreter), or its module equivalent."""
    script = Path(sys.executable).with_name("riskon")
    if script.exists():
        return [str(script)]
    found = shutil.which("riskon")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from riskon.cli import main; sys.argv[0] = 'riskon'; main()"]
