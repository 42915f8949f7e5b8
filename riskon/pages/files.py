"""Every file riskon writes goes through here: a temporary file in the target's folder, then one rename.

A reader (or a crash, or a full disk) therefore sees the old file or the new one, never half of one.
A file-system fault becomes an ``OutputError`` naming the file and what to do, raised where it happens.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pandas as pd

#: What to do about a fault, by errno (the rest get the operating system's words alone).
_ADVICE = {
    errno.ENOSPC: "free some space, or write elsewhere with --out",
    errno.EDQUOT: "free some space, or write elsewhere with --out",
    errno.EROFS: "the folder is read-only: write elsewhere with --out (or set RISKON_REPORTS)",
    errno.EACCES: "no permission to write there: write elsewhere with --out (or set RISKON_REPORTS)",
    errno.EPERM: "no permission to write there: write elsewhere with --out (or set RISKON_REPORTS)",
}


class OutputError(OSError):
    """A report, CSV or export could not be written (full disk, read-only or forbidden folder)."""


def output_error(error: OSError, path: Path) -> OutputError:
    """An ``OutputError`` with one line: the file, the operating system's reason and what to do."""
    advice = _ADVICE.get(error.errno or 0, "check the folder and run it again")
    reason = error.strerror or str(error)
    return OutputError(error.errno, f"cannot write {path}: {reason}; {advice}")


def ensure_folder(folder: Path) -> Path:
    """Create ``folder`` (and its parents) or raise ``OutputError``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(e, folder) from None
    return folder


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], Any], mode: int = 0o644) -> Path:
    """Write ``path`` through a temporary file (one per writer) and a rename; returns ``path``."""
    path = Path(path)
    ensure_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise output_error(e, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise output_error(e, path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda f: f.write(data))


def write_csv(frame: pd.DataFrame, path: str | Path, **to_csv: Any) -> Path:
    """Write a DataFrame as CSV atomically (``to_csv`` keywords pass through)."""
    return write_atomic(path, lambda f: frame.to_csv(f, **to_csv))


def write_parquet(frame: pd.DataFrame, path: str | Path, **to_parquet: Any) -> Path:
    """Write a DataFrame as Parquet atomically."""
    return write_atomic(path, lambda f: frame.to_parquet(f, **to_parquet))
