"""The local Parquet cache: one file per series, written atomically, with metadata.

Layout under the cache root: ``<key>.json`` (metadata, the commit point) naming
``<key>.<fingerprint>.parquet`` (the rows). A write lands a new Parquet file
under a temporary name, renames it into place, then atomically replaces the
JSON; only after that is the old Parquet file removed. A crash at any moment
leaves the previous version readable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from feeds.errors import DataError
from feeds.frame import COLUMNS, SeriesMeta, attach, meta_of, normalise_index


def default_root() -> Path:
    """``RISKON_CACHE`` if set, else the user's cache directory."""
    env = os.environ.get("RISKON_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("riskon"))


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of the rows (timestamps and every column), stable across file formats."""
    h = hashlib.sha256()
    h.update(frame.index.as_unit("us").asi8.tobytes())
    for col in COLUMNS:
        h.update(col.encode())
        h.update(np.ascontiguousarray(frame[col].to_numpy(dtype="float64")).tobytes())
    return h.hexdigest()[:16]


def _atomic_write_bytes(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Cache:
    """A folder of cached series, keyed by symbol and timeframe."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def key(self, symbol: str, timeframe: str = "1d") -> str:
        """The file-name-safe key of a series."""
        return f"{quote(symbol, safe='')}__{timeframe}"

    def _meta_path(self, symbol: str, timeframe: str) -> Path:
        return self.root / f"{self.key(symbol, timeframe)}.json"

    def has(self, symbol: str, timeframe: str = "1d") -> bool:
        """True when the series is cached."""
        return self._meta_path(symbol, timeframe).exists()

    def meta(self, symbol: str, timeframe: str = "1d") -> dict:
        """The stored metadata of a cached series."""
        path = self._meta_path(symbol, timeframe)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(
                f"{symbol} ({timeframe}) is not in the cache {self.root}; "
                f"run `riskon data fetch {symbol}` or `riskon data import FILE`"
            ) from None
        except (OSError, ValueError) as e:
            raise DataError(
                f"cached {symbol} ({timeframe}) metadata {path} is unreadable ({type(e).__name__}); "
                "delete it and import the series again"
            ) from None

    def read(self, symbol: str, timeframe: str = "1d") -> pd.DataFrame:
        """The cached frame, metadata attached; its fingerprint is checked against the stored one."""
        meta = self.meta(symbol, timeframe)
        try:
            frame = pd.read_parquet(self.root / meta["file"])
        except (OSError, ValueError) as e:  # missing or damaged file (pyarrow errors are ValueErrors)
            raise DataError(
                f"cached {symbol} ({timeframe}) data {self.root / meta['file']} is unreadable ({type(e).__name__}); "
                f"delete {self._meta_path(symbol, timeframe)} and import it again"
            ) from None
        frame.index = normalise_index(pd.DatetimeIndex(frame.index))
        frame = frame[list(COLUMNS)]
        if fingerprint(frame) != meta["fingerprint"]:
            raise DataError(
                f"cached {symbol} ({timeframe}) does not match its fingerprint; "
                f"delete {self.root / meta['file']} and import it again"
            )
        frame = attach(frame, SeriesMeta(meta["symbol"], meta["source"], meta["timeframe"], meta["tz"]))
        frame.attrs["fingerprint"] = meta["fingerprint"]
        return frame

    def write(self, frame: pd.DataFrame) -> dict:
        """Store ``frame`` (normalised, metadata attached) atomically, replacing any previous version."""
        m = meta_of(frame)
        self.root.mkdir(parents=True, exist_ok=True)
        frame = frame[list(COLUMNS)]
        fp = fingerprint(frame)
        data_name = f"{self.key(m.symbol, m.timeframe)}.{fp}.parquet"
        old = self.meta(m.symbol, m.timeframe) if self.has(m.symbol, m.timeframe) else None
        plain = pd.DataFrame(frame)
        plain.attrs = {}
        _atomic_write_bytes(self.root / data_name, lambda f: plain.to_parquet(f, engine="pyarrow"))
        meta = {
            "symbol": m.symbol,
            "source": m.source,
            "timeframe": m.timeframe,
            "tz": m.tz,
            "first": frame.index[0].isoformat(),
            "last": frame.index[-1].isoformat(),
            "rows": len(frame),
            "fingerprint": fp,
            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "file": data_name,
        }
        payload = json.dumps(meta, indent=1).encode()
        _atomic_write_bytes(self._meta_path(m.symbol, m.timeframe), lambda f: f.write(payload))
        if old and old["file"] != data_name:
            with contextlib.suppress(OSError):
                (self.root / old["file"]).unlink()
        return meta

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
                    "the cache is unchanged; re-import with replace to overwrite"
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

    def list(self) -> pd.DataFrame:
        """One row per cached series: symbol, source, timeframe, first, last, rows, fingerprint."""
        rows = []
        if self.root.exists():
            for p in sorted(self.root.glob("*.json")):
                try:
                    rows.append(json.loads(p.read_text()))
                except (OSError, ValueError):
                    continue
        cols = ["symbol", "source", "timeframe", "first", "last", "rows", "fingerprint", "fetched_at"]
        return pd.DataFrame(rows, columns=cols + ["tz", "file"])[cols]
