"""The local Parquet cache: one file per series, written atomically, with metadata it checks.

Layout under the cache root: ``<key>.json`` (metadata, the commit point of a
series) beside ``<key>.<fingerprint>.parquet`` (the rows). ``<key>`` is the
symbol, checked (:func:`feeds.symbols.canonical_symbol`) and URL-quoted so it
holds no path separator, and the timeframe: no symbol names a file outside.

Trust: the cache never follows a path read from its own metadata. A series'
Parquet file is always ``<key>.<fingerprint>.parquet``, from the sanitised key
and a fingerprint checked to be 16 hex digits; a JSON whose ``file`` says
otherwise is malformed. Reading checks the fingerprint, the row count and the
first and last bar against the data, so the metadata cannot lie silently.

Writes: :meth:`Cache.write` (one series) lands the Parquet file under a
temporary name, renames it into place, then atomically replaces the JSON, and
only then removes older Parquet files: a crash leaves the previous version
readable. :meth:`Cache.write_many` (a folder import) stages every series to
temporary files, then commits them together under the undo journal of
:mod:`feeds.atomic`: any failure before the commit point (one rename of the
journal) is rolled back at once, a crash by the next process that opens the
cache, so the folder ends byte for byte as it was, or fully committed.

Residual window: writers exclude each other (an ``flock`` on the folder) but
readers take no lock. A reader in another process during a folder commit's
JSON renames (microseconds per series) can see some series new and others
old; a reader that opened a JSON just before a writer removed the Parquet file
it names gets a one-line "unreadable" error and can retry. Durability assumes
a POSIX file system where ``rename`` is atomic and a directory ``fsync``
orders it (ext4, xfs, btrfs, tmpfs). The refusal of a shrinking import
(:func:`feeds.loader.import_files`) reads the cache before taking the lock, so
two importers racing on one series can both pass it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd

from feeds.atomic import (
    JOURNAL,
    VERSIONS,
    atomic_write_bytes,
    child,
    folder_lock,
    fsync_dir,
    recover,
    retire,
    write_journal,
    write_temp,
)
from feeds.cache_meta import check_meta, data_name, series_key
from feeds.errors import DataError
from feeds.frame import COLUMNS, SeriesMeta, attach, meta_of, normalise_index
from feeds.symbols import canonical_symbol, canonical_timeframe

#: Kept under this name: tests replace it to simulate a crash inside a single-series write.
_atomic_write_bytes = atomic_write_bytes
#: (cache folder, thread) pairs holding the writer lock in this process, so that it is re-entrant.
_HELD: set[tuple[str, int]] = set()


def default_root() -> Path:
    """``RISKON_CACHE`` if set, else the user's cache directory."""
    env = os.environ.get("RISKON_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir  # lazy: only needed without RISKON_CACHE

    return Path(user_cache_dir("riskon"))


def fingerprint(frame: pd.DataFrame, columns: tuple[str, ...] = COLUMNS) -> str:
    """A content hash of the rows (timestamps and every column), stable across file formats."""
    h = hashlib.sha256()
    h.update(frame.index.as_unit("us").asi8.tobytes())
    for col in columns:
        h.update(col.encode())
        h.update(np.ascontiguousarray(frame[col].to_numpy(dtype="float64")).tobytes())
    return h.hexdigest()[:16]


def _plain(frame: pd.DataFrame, columns: tuple[str, ...] = COLUMNS) -> pd.DataFrame:
    plain = pd.DataFrame(frame[list(columns)])
    plain.attrs = {}
    return plain


class Cache:
    """A folder of cached series, keyed by symbol and timeframe."""

    #: The value columns of every series in this folder (``feeds.yields.YieldCache`` holds one, ``value``).
    columns: tuple[str, ...] = COLUMNS

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # ------------------------------------------------------------ names

    def key(self, symbol: str, timeframe: str = "1d") -> str:
        """The file-name-safe key of a series (the symbol is checked and case-folded first)."""
        return series_key(symbol, timeframe)

    def _inside(self, name: str) -> Path:
        """``root / name``, checked to be a direct child of the cache folder."""
        return child(self.root, name)

    def _meta_path(self, symbol: str, timeframe: str) -> Path:
        return self._inside(f"{self.key(symbol, timeframe)}.json")

    def _data_name(self, key: str, fp: str) -> str:
        return data_name(key, fp)

    def _data_files(self, key: str) -> list[Path]:
        """Every Parquet file of the series ``key`` (current and stale), found by name, not by metadata."""
        pattern = re.compile(rf"^{re.escape(key)}\.[0-9a-f]{{16}}\.parquet$")
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return [self.root / n for n in sorted(names) if pattern.match(n)]

    # ------------------------------------------------------------ locking and recovery

    def _holder(self) -> tuple[str, int]:
        return str(self.root.resolve()), threading.get_ident()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The writer lock: re-entrant in one thread; other threads and processes wait for it."""
        holder = self._holder()
        if holder in _HELD:
            yield
            return
        with folder_lock(self.root):
            _HELD.add(holder)
            try:
                yield
            finally:
                _HELD.discard(holder)

    def _recover_locked(self) -> None:
        recover(self.root, self._data_files)

    def recover(self) -> None:
        """Roll back (or finish) an interrupted multi-series commit and delete leftover temporary files.

        Reads do the first part by themselves when a commit journal is there, and every
        write does both; this is for tools and tests that want a tidy folder now.
        """
        if self.root.is_dir():
            with self._locked():
                self._recover_locked()

    def _recover(self) -> None:
        """Roll back (or finish) a multi-series commit a crashed process left behind, if any."""
        if not (self.root / JOURNAL).exists() or self._holder() in _HELD:
            return
        try:
            with self._locked():
                self._recover_locked()
        except OSError as e:
            raise DataError(
                f"the cache {self.root} holds an unfinished import ({JOURNAL}) that could not be rolled back "
                f"({e.strerror or e}); make the folder writable and run the command again"
            ) from None

    # ------------------------------------------------------------ metadata

    def _load_meta(self, symbol: str, timeframe: str) -> dict:
        symbol, timeframe = canonical_symbol(symbol), canonical_timeframe(timeframe)
        key = self.key(symbol, timeframe)
        path = self._inside(f"{key}.json")
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(
                f"{symbol} ({timeframe}) is not in the cache {self.root}; "
                f"run `riskon data fetch {symbol}` or `riskon data import FILE`"
            ) from None
        except (OSError, ValueError) as e:
            raise DataError(
                f"cached {symbol} ({timeframe}) metadata {path} is unreadable ({type(e).__name__}); "
                f"delete {path} and import {symbol} again (or import it with --replace)"
            ) from None
        return check_meta(raw, key, symbol, timeframe, path)

    def has(self, symbol: str, timeframe: str = "1d") -> bool:
        """True when the series is cached (its metadata file exists; :meth:`meta` checks it)."""
        self._recover()
        return self._meta_path(symbol, timeframe).exists()

    def meta(self, symbol: str, timeframe: str = "1d") -> dict:
        """The stored metadata of a cached series, checked to be well-formed (not yet against the data)."""
        self._recover()
        return self._load_meta(symbol, timeframe)

    # ------------------------------------------------------------ reading

    def _read_checked(self, symbol: str, timeframe: str) -> tuple[pd.DataFrame, dict]:
        meta = self._load_meta(symbol, timeframe)
        symbol, timeframe = meta["symbol"], meta["timeframe"]
        json_path = self._meta_path(symbol, timeframe)
        data_path = self._inside(self._data_name(self.key(symbol, timeframe), meta["fingerprint"]))
        try:
            frame = pd.read_parquet(data_path)
            frame.index = normalise_index(pd.DatetimeIndex(frame.index))
            frame = frame[list(self.columns)]
        except (OSError, ValueError, KeyError, TypeError) as e:  # missing or damaged (pyarrow errors are ValueErrors)
            raise DataError(
                f"cached {symbol} ({timeframe}) data {data_path} is unreadable ({type(e).__name__}); "
                f"delete {json_path} and import it again"
            ) from None
        if fingerprint(frame, self.columns) != meta["fingerprint"]:
            raise DataError(
                f"cached {symbol} ({timeframe}) data {data_path} does not match its fingerprint; "
                f"delete {json_path} and import {symbol} again (or import it with --replace)"
            )
        said = (meta["rows"], pd.Timestamp(meta["first"]), pd.Timestamp(meta["last"]))
        holds = (len(frame), frame.index[0], frame.index[-1]) if len(frame) else (0, None, None)
        if said != holds:
            has = f"{holds[0]} rows {holds[1].isoformat()} .. {holds[2].isoformat()}" if holds[0] else "no rows"
            raise DataError(
                f"cached {symbol} ({timeframe}) metadata {json_path} disagrees with its data: it says "
                f"{said[0]} rows {meta['first']} .. {meta['last']}, the data holds {has}; "
                f"delete {json_path} and import {symbol} again"
            )
        return frame, meta

    def read(self, symbol: str, timeframe: str = "1d") -> pd.DataFrame:
        """The cached frame, metadata attached; fingerprint, rows and first/last bar are checked against it."""
        self._recover()
        frame, meta = self._read_checked(symbol, timeframe)
        frame = attach(frame, SeriesMeta(meta["symbol"], meta["source"], meta["timeframe"], meta["tz"]))
        frame.attrs["fingerprint"] = meta["fingerprint"]
        return frame

    def read_version(self, symbol: str, timeframe: str, fp: str) -> pd.DataFrame | None:
        """A replaced version of a series by its fingerprint, kept under ``versions/`` (None when not kept).

        Checked against ``fp``; carries the current metadata's symbol, source and time zone.
        """
        if not re.fullmatch(r"[0-9a-f]{16}", str(fp)):
            return None
        meta = self._load_meta(symbol, timeframe)
        path = self.root / VERSIONS / self._data_name(self.key(meta["symbol"], meta["timeframe"]), fp)
        if not path.is_file():
            return None
        frame = pd.read_parquet(path)
        frame.index = normalise_index(pd.DatetimeIndex(frame.index))
        frame = frame[list(self.columns)]
        if fingerprint(frame, self.columns) != fp:
            return None
        frame = attach(frame, SeriesMeta(meta["symbol"], meta["source"], meta["timeframe"], meta["tz"]))
        frame.attrs["fingerprint"] = fp
        return frame

    def info(self, symbol: str, timeframe: str = "1d") -> dict:
        """Verified metadata for ``riskon data show``: rows, first and last recomputed from the Parquet data.

        Raises a one-line ``DataError`` when the metadata JSON disagrees with the data
        (or is malformed, or the data is damaged). The returned numbers come from the data.
        """
        self._recover()
        frame, meta = self._read_checked(symbol, timeframe)
        out = dict(meta)
        out.update(
            rows=len(frame),
            first=frame.index[0].isoformat(),
            last=frame.index[-1].isoformat(),
            fingerprint=fingerprint(frame, self.columns),
        )
        return out

    # ------------------------------------------------------------ writing

    def _meta_for(self, m: SeriesMeta, frame: pd.DataFrame, fp: str) -> dict:
        key = self.key(m.symbol, m.timeframe)
        return {
            "symbol": canonical_symbol(m.symbol),
            "source": m.source,
            "timeframe": canonical_timeframe(m.timeframe),
            "tz": m.tz,
            "first": frame.index[0].isoformat(),
            "last": frame.index[-1].isoformat(),
            "rows": len(frame),
            "fingerprint": fp,
            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "file": self._data_name(key, fp),
        }

    def _unchanged(self, m: SeriesMeta, fp: str) -> dict | None:
        """The stored metadata when the series is cached, sound, and holds exactly ``fp``; else None."""
        if not (self.root / f"{self.key(m.symbol, m.timeframe)}.json").exists():
            return None
        try:
            _, meta = self._read_checked(m.symbol, m.timeframe)
        except DataError:
            return None
        return meta if meta["fingerprint"] == fp else None

    def write(self, frame: pd.DataFrame) -> dict:
        """Store ``frame`` (normalised, metadata attached) atomically, replacing any previous version.

        A malformed previous entry is replaced too; older Parquet files of the series
        are removed (found by name, never by a path from the metadata).
        """
        m = meta_of(frame)
        key = self.key(m.symbol, m.timeframe)
        if frame.empty:
            raise DataError(f"{m.symbol} ({m.timeframe}): no rows to store; the cache is unchanged")
        self.root.mkdir(parents=True, exist_ok=True)
        frame = frame[list(self.columns)]
        fp = fingerprint(frame, self.columns)
        meta = self._meta_for(m, frame, fp)
        plain = _plain(frame, self.columns)
        with self._locked():
            self._recover_locked()
            _atomic_write_bytes(self._inside(meta["file"]), lambda f: plain.to_parquet(f, engine="pyarrow"))
            payload = json.dumps(meta, indent=1).encode()
            _atomic_write_bytes(self._inside(f"{key}.json"), lambda f: f.write(payload))
            fsync_dir(self.root)
            for stale in self._data_files(key):
                if stale.name != meta["file"]:
                    with contextlib.suppress(OSError):
                        retire(self.root, stale)  # kept under versions/: stored runs that read it rebuild from it
        return meta

    def write_many(self, frames: Iterable[pd.DataFrame]) -> list[dict]:
        """Store several series all or nothing (one folder import); return their metadata in order.

        Every series is staged to temporary files first, then committed together
        under an undo journal (see the module docstring): on any error, or a crash,
        the cache ends exactly as it was before. A series whose content is already
        cached is left untouched (its metadata is returned as stored).
        """
        staged = []
        seen: dict[str, str] = {}
        for frame in frames:
            m = meta_of(frame)
            key = self.key(m.symbol, m.timeframe)
            if key in seen:
                raise DataError(f"{m.symbol} ({m.timeframe}) appears twice in one import; import it once")
            seen[key] = m.symbol
            if frame.empty:
                raise DataError(f"{m.symbol} ({m.timeframe}): no rows to store; the cache is unchanged")
            body = frame[list(self.columns)]
            staged.append((key, m, body, fingerprint(body, self.columns)))
        if not staged:
            return []
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._recover_locked()
            metas: list[dict | None] = [self._unchanged(m, fp) for _, m, _, fp in staged]
            if all(meta is not None for meta in metas):  # nothing to write: no journal either
                return metas  # type: ignore[return-value]
            txn = secrets.token_hex(8)
            prefix = f".txn-{txn}."
            journal: dict[str, Any] = {"txn": txn, "state": "begun", "entries": []}
            write_journal(self.root, journal)
            try:
                entries: list[dict] = []
                for i, (key, m, body, fp) in enumerate(staged):
                    if metas[i] is not None:
                        continue
                    meta = self._meta_for(m, body, fp)
                    plain = _plain(body, self.columns)
                    data_tmp = write_temp(
                        self.root, f"{prefix}{i}.", ".parquet.tmp", lambda f, p=plain: p.to_parquet(f)
                    )
                    payload = json.dumps(meta, indent=1).encode()
                    meta_tmp = write_temp(self.root, f"{prefix}{i}.", ".json.tmp", lambda f, b=payload: f.write(b))
                    json_name = f"{key}.json"
                    entries.append(
                        {
                            "key": key,
                            "json": json_name,
                            "data": meta["file"],
                            "data_existed": (self.root / meta["file"]).exists(),
                            "data_tmp": data_tmp.name,
                            "meta_tmp": meta_tmp.name,
                            "backup": f"{prefix}{i}.json.bak" if (self.root / json_name).exists() else None,
                        }
                    )
                    metas[i] = meta
                journal = {"txn": txn, "state": "prepared", "entries": entries}
                write_journal(self.root, journal)
                for e in entries:
                    if e["backup"] is not None:
                        try:
                            os.link(self.root / e["json"], self.root / e["backup"])
                        except OSError:  # no hard links here: a copy does the same job
                            shutil.copy2(self.root / e["json"], self.root / e["backup"])
                for e in entries:
                    os.replace(self.root / e["data_tmp"], self._inside(e["data"]))
                for e in entries:
                    os.replace(self.root / e["meta_tmp"], self._inside(e["json"]))
                fsync_dir(self.root)
                journal = {"txn": txn, "state": "committed", "entries": entries}
                write_journal(self.root, journal)  # the commit point
            except BaseException:
                with contextlib.suppress(Exception):  # what is on disk decides: rolled back, or finished
                    self._recover_locked()
                raise
            with contextlib.suppress(OSError):  # committed: what is left is clean-up, redone on next open if need be
                self._recover_locked()
        return metas  # type: ignore[return-value]

    def update(self, new: pd.DataFrame) -> tuple[dict, int]:
        """Append the bars of ``new`` that the cache lacks; return the metadata and rows added.

        Overlapping bars must agree on prices: a source that rewrote history
        (e.g. a split adjustment) is refused rather than silently mixed in.
        """
        m = meta_of(new)
        if not self.has(m.symbol, m.timeframe):
            return self.write(new), len(new)
        old = self.read(m.symbol, m.timeframe)
        common = old.index.intersection(new.index)
        if len(common):
            a = old.loc[common, ["open", "high", "low", "close"]].to_numpy()
            b = new.loc[common, ["open", "high", "low", "close"]].to_numpy()
            diff = ~np.isclose(a, b, rtol=1e-9, atol=0).all(axis=1)
            if diff.any():
                when = common[diff][0].strftime("%Y-%m-%d %H:%M")
                raise DataError(
                    f"{m.symbol}: new data disagrees with the cache on {when} ({diff.sum()} bar(s)); "
                    "the cache is unchanged; to overwrite the series on purpose, import the full series "
                    "with `riskon data import FILE --replace`"
                )
        added = new.loc[new.index.difference(old.index)]
        if added.empty:
            return self.meta(m.symbol, m.timeframe), 0
        merged = pd.concat([old, added]).sort_index()
        merged = attach(
            merged,
            SeriesMeta(
                m.symbol,
                old.attrs["source"] if m.source == old.attrs["source"] else f"{old.attrs['source']}+{m.source}",
                m.timeframe,
                m.tz,
            ),
        )
        return self.write(merged), len(added)

    # ------------------------------------------------------------ listing

    def list(self, verify: bool = False) -> pd.DataFrame:
        """One row per cached series: symbol, source, timeframe, first, last, rows, fingerprint, fetched_at.

        Malformed entries are skipped. With ``verify`` every series is read: rows,
        first and last come from the data, and a ``problem`` column holds the
        one-line error of any series (malformed ones included) that fails its checks.
        """
        self._recover()
        cols = ["symbol", "source", "timeframe", "first", "last", "rows", "fingerprint", "fetched_at"]
        rows = []
        names = sorted(os.listdir(self.root)) if self.root.is_dir() else []
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue
            stem = name[: -len(".json")]
            path = self.root / name
            quoted, _, timeframe = stem.rpartition("__")
            symbol = unquote(quoted)
            try:
                raw = json.loads(path.read_text())
                meta = check_meta(raw, stem, symbol, timeframe, path)
                symbol, timeframe = meta["symbol"], meta["timeframe"]
                row = {c: meta.get(c) for c in cols} | {"problem": None}
                if verify:
                    row |= {k: v for k, v in self.info(symbol, timeframe).items() if k in cols}
            except (OSError, ValueError) as e:  # DataError is a ValueError
                if not verify:
                    continue
                row = {c: None for c in cols} | {"symbol": symbol, "timeframe": timeframe}
                row["problem"] = str(e) if isinstance(e, DataError) else f"{path} is unreadable ({type(e).__name__})"
            rows.append(row)
        out = pd.DataFrame(rows, columns=cols + ["problem"])
        return out if verify else out[cols]
