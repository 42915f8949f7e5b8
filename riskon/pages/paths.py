"""Names and paths that stay in their folder: a sweep name or run id read from a store, or typed by a user,
never leads a report or an export outside ``reports/`` (``$RISKON_REPORTS``) or ``runs/``.

Every default output path is built from ``safe_name`` parts under a root folder and checked, after
resolving symbolic links, to lie inside that root (``inside``). A path the user gives with ``--out`` is
taken as given: it is their choice, not a stored string's.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from riskon.config import ConfigError

#: Longest name a path part may have (file systems allow 255 bytes).
NAME_CAP = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: object, fallback: str = "unnamed", suffix: str = "") -> str:
    """``text`` as one file or folder name: letters, digits, ``_ . -`` only, no leading dot, at most ``NAME_CAP``.

    Every other run of characters (``/``, ``\\``, spaces, ...) becomes ``_``; leading dots are dropped (so
    ``..`` and hidden files cannot come out); a longer name is cut and given a hash of the whole, so two
    long names stay apart. ``suffix`` (a plain extension like ``.csv``) is appended within the cap. Names
    riskon accepts in a config (``seed_sweep``) and run ids come back unchanged.
    """
    raw = str(text)
    name = _UNSAFE.sub("_", raw).lstrip(".")
    room = NAME_CAP - len(suffix)
    if len(name) > room:
        name = f"{name[: room - 9]}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"
    return (name or fallback) + suffix


def check_inside(root: str | Path, path: str | Path) -> Path:
    """``path`` when it resolves (symbolic links followed) to ``root`` or below it; else one ``ConfigError`` line."""
    base, target = Path(root).resolve(), Path(path).resolve()
    if target != base and base not in target.parents:
        raise ConfigError(
            f"refusing to write {path}: it resolves to {target}, outside {root} (a symbolic link?); "
            "remove the link or choose the file with --out"
        )
    return Path(path)


def inside(root: str | Path, *names: object) -> Path:
    """``root / name / ...`` with every part passed through ``safe_name``, checked to stay inside ``root``."""
    return check_inside(root, Path(root).joinpath(*(safe_name(n) for n in names)))
