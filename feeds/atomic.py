"""Crash-safe file operations for the cache: temp files, atomic renames, a folder lock, an undo journal.

The journal (``.riskon-commit.journal`` in the cache folder) makes a commit of
several series all or nothing. It moves through three states, each written
with one atomic rename:

- ``begun``: temporary files (``.txn-<id>.*``) may exist; undo = delete them.
- ``prepared``: it lists every series to replace — its JSON, its new Parquet
  file, and a hard-linked backup of the JSON it replaces (``None`` for a new
  series); undo = put each backup back, delete new JSONs and new Parquet files.
- ``committed``: every new JSON is in place; finish = delete the old Parquet
  files of each series and the temporary files.

:func:`recover` applies the undo (or the finish), deletes leftover temporary
files and then the journal. It runs on any failure in-process, before every
write, and in the next process that opens the cache after a crash, always
under the folder lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from feeds.errors import DataError

try:  # POSIX; elsewhere writers do not exclude each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: The undo journal of an unfinished multi-series commit.
JOURNAL = ".riskon-commit.journal"


def write_temp(directory: Path, prefix: str, suffix: str, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a new temporary file in ``directory`` and fsync it; it is removed again if writing fails."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def atomic_write_bytes(target: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write ``target`` through a temporary file and one rename: readers see the old file or the new one."""
    tmp = write_temp(target.parent, f".{target.name}.", ".tmp", write)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def fsync_dir(directory: Path) -> None:
    """Make the renames done in ``directory`` durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


#: Subfolder of the cache holding replaced versions of series, by fingerprint (stored runs rebuild from them).
VERSIONS = "versions"


def retire(root: Path, path: Path) -> None:
    """Move a replaced Parquet file into ``root/versions/`` (kept for stored runs that read it), if it is there."""
    with contextlib.suppress(FileNotFoundError):
        (root / VERSIONS).mkdir(exist_ok=True)
        os.replace(path, root / VERSIONS / path.name)


def unlink_quietly(path: Path) -> None:
    """Delete ``path`` if it is there."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def bare_name(name: object) -> bool:
    """True for a plain file name: no folder part, no ``..``, nothing absolute."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in ("/", "\\", "\0"))
        and Path(name).name == name
    )


def child(root: Path, name: object) -> Path:
    """``root / name``, checked to be a direct child of ``root``; ``DataError`` otherwise."""
    if not bare_name(name) or (root / str(name)).resolve().parent != root.resolve():
        raise DataError(f"refusing the cache path {name!r}: it would leave the cache {root}")
    return root / str(name)


@contextlib.contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the folder itself (no lock file); the kernel drops it if the process dies."""
    fd = os.open(root, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_journal(root: Path, journal: dict) -> None:
    """Replace the journal atomically and make it durable."""
    payload = json.dumps(journal, indent=1).encode()
    atomic_write_bytes(root / JOURNAL, lambda f: f.write(payload))
    fsync_dir(root)


def read_journal(root: Path) -> dict | None:
    """The journal, checked (every name in it a bare file name); None when there is none."""
    path = root / JOURNAL
    try:
        j = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        j = None
    ok = (
        isinstance(j, dict)
        and isinstance(j.get("txn"), str)
        and re.fullmatch(r"[0-9a-f]{16}", j["txn"]) is not None
        and j.get("state") in ("begun", "prepared", "committed")
        and isinstance(j.get("entries", []), list)
    )
    for e in j.get("entries", []) if ok else []:
        ok = ok and isinstance(e, dict) and all(bare_name(e.get(k)) for k in ("json", "data", "key"))
        ok = ok and (e.get("backup") is None or bare_name(e["backup"]))
    if not ok:
        raise DataError(
            f"the cache {root} holds an unreadable commit journal {path}; "
            "delete it, then check the cache with `riskon data list`"
        )
    return j


def recover(root: Path, data_files: Callable[[str], list[Path]]) -> None:
    """Undo a ``begun``/``prepared`` commit or finish a ``committed`` one, then delete the journal.

    Call it holding :func:`folder_lock`. ``data_files(key)`` lists every Parquet
    file of a series by name. Idempotent: a crash inside it is recovered by the next call.
    """
    j = read_journal(root)
    if j is None:
        sweep_temps(root)
        return
    entries = j.get("entries", [])
    if j["state"] == "prepared":  # undo: old JSONs back, new files away
        for e in entries:
            json_path = child(root, e["json"])
            if e["backup"] is not None:
                backup = child(root, e["backup"])
                if backup.exists():
                    os.replace(backup, json_path)
            else:
                unlink_quietly(json_path)
            if not e.get("data_existed"):
                unlink_quietly(child(root, e["data"]))
    elif j["state"] == "committed":  # finish: old Parquet files away
        for e in entries:
            for stale in data_files(e["key"]):
                if stale.name != e["data"]:
                    retire(root, stale)
    sweep_temps(root)
    unlink_quietly(root / JOURNAL)
    fsync_dir(root)


def sweep_temps(root: Path) -> None:
    """Delete temporary files a crashed writer left (``.txn-*``, ``.<name>.<random>.tmp``).

    Only writers holding :func:`folder_lock` create them, so call it holding the lock.
    """
    for name in os.listdir(root):
        if name.startswith(".txn-") or (name.startswith(".") and name.endswith(".tmp")):
            unlink_quietly(root / name)
    fsync_dir(root)
