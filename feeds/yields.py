"""Yield series: an annual rate per US date (a T-bill yield, a policy rate), imported from CSV with its unit.

A yield series is its own kind of series. It has no OHLC columns: a CSV file holds a date column and one
value column (``date,value``; FRED's downloads ``DATE,DGS3MO`` and ``observation_date,DGS3MO`` too, where
``.`` or an empty cell marks a day without a value: those rows are dropped and counted). The file declares
its unit: ``percent`` (5.25 is 5.25 % a year) or ``fraction`` (0.0525); the cache always holds annual
fractions. Values may be zero or negative.

The cache keeps yields in their own folder (``<cache>/yields/``) with the same machinery as price series:
one Parquet file per series under its fingerprint, atomic writes, checked metadata, and an import that
never drops or rewrites a cached value unless told to replace the series.

**When a yield is known.** A day's yield is known at that day's close: the close of the NYSE session
(16:00 New York, earlier on early-close days; :func:`feeds.sessions.session_closes`, as for the index),
plus the run's publication lag. A date that is no NYSE session (a bond-market day such as Good Friday)
is known at 16:00 New York. :func:`load_yield` returns the values indexed by those *known-at* stamps in
UTC, the form :mod:`strategies.cash` takes: a bar uses the last value known at its open, so Friday's
yield is first used by Saturday's crypto bar, never by Friday's.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.cache import Cache, default_root
from feeds.errors import DataError
from feeds.frame import SeriesMeta, attach, meta_of
from feeds.loader import check_extends
from feeds.sessions import nyse_sessions, session_closes
from feeds.symbols import NEW_YORK, canonical_symbol, symbol_from_filename

#: The units a yield file may declare.
UNITS = ("percent", "fraction")
#: The one value column a cached yield series holds (an annual fraction).
YIELD_COLUMNS = ("value",)
#: The sub-folder of the cache that holds yield series.
YIELD_FOLDER = "yields"
#: Cells that mark a missing value (FRED writes ``.``; its newer downloads leave the cell empty).
MISSING = (".", "")
_PRICE_COLUMNS = ("open", "high", "low", "close", "adj close", "adj_close", "volume")
_REGULAR_CLOSE = pd.Timedelta(hours=16)
#: Yield series already read in this process (a sweep resolves its rate once per run), keyed by file identity.
_LOADED: dict[tuple, pd.Series] = {}


class YieldCache(Cache):
    """The cache folder of yield series (``<cache root>/yields``): one ``value`` column of annual fractions."""

    columns = YIELD_COLUMNS

    def __init__(self, root: str | Path | Cache | None = None) -> None:
        base = root.root if isinstance(root, Cache) else Path(root) if root is not None else default_root()
        super().__init__(base / YIELD_FOLDER)

    def _meta_for(self, m: SeriesMeta, frame: pd.DataFrame, fp: str) -> dict:
        """The price cache's metadata plus ``kind`` and ``unit`` (what the stored values are)."""
        return {**super()._meta_for(m, frame, fp), "kind": "yield", "unit": "fraction, annual"}


@dataclass
class YieldImport:
    """What one yield import did: the stored metadata, values added, and what was dropped (said to the user)."""

    meta: dict
    added: int
    notes: list[str] = field(default_factory=list)
    origin: str = ""


def check_unit(unit: str | None) -> str:
    """``unit`` checked to be ``percent`` or ``fraction``; a one-line ``DataError`` otherwise."""
    if unit is None:
        raise DataError(
            "a yield series needs its unit: --unit percent (5.25 means 5.25% a year) or --unit fraction (0.0525)"
        )
    if unit not in UNITS:
        raise DataError(
            f"unknown unit {unit!r} for a yield series; use --unit percent (5.25 means 5.25% a year) "
            "or --unit fraction (0.0525)"
        )
    return unit


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror})") from None
    if not raw.strip():
        raise DataError(f"{path}: the file is empty; nothing was imported")
    if b"\x00" in raw[:8192]:
        raise DataError(f"{path}: binary data, not a CSV text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None


def _columns(path: Path, text: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: malformed CSV ({str(e).strip().splitlines()[-1]})") from None
    names = [str(c).strip() for c in df.columns]
    prices = [c for c in names if c.lower() in _PRICE_COLUMNS]
    if prices:
        raise DataError(
            f"{path}: has price columns ({', '.join(prices)}), so it is a price series, not a yield; "
            "import it without --kind yield, or give a file with a date column and one value column"
        )
    if len(names) != 2:
        raise DataError(
            f"{path}: a yield file has a date column and one value column (e.g. DATE,DGS3MO); "
            f"found {len(names)} column(s): {', '.join(names)}"
        )
    if df.empty:
        raise DataError(f"{path}: only a header, no data rows; nothing was imported")
    df.columns = names
    return df


def _dates(path: Path, cells: pd.Series) -> pd.DatetimeIndex:
    text = cells.str.strip()
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: unparseable date {text.iloc[row]!r} at line {row + 2}; use YYYY-MM-DD")
    dates = pd.DatetimeIndex(parsed)
    if dates.tz is not None or (dates != dates.normalize()).any():
        row = int(np.flatnonzero(dates != dates.normalize())[0]) if dates.tz is None else 0
        raise DataError(
            f"{path}: {text.iloc[row]!r} at line {row + 2} is not a plain date; a yield series has one value "
            "per date (YYYY-MM-DD)"
        )
    dup = dates.duplicated(keep=False)
    if dup.any():
        rows = np.flatnonzero(dup & (dates == dates[dup][0]))
        raise DataError(
            f"{path}: the date {dates[dup][0]:%Y-%m-%d} appears {len(rows)} times (lines "
            f"{', '.join(str(r + 2) for r in rows)}); keep one value per date"
        )
    return dates.as_unit("us")


def read_yield_csv(path: str | Path, symbol: str | None = None, unit: str | None = None) -> tuple[pd.DataFrame, int]:
    """Read a yield CSV file into a frame of annual fractions (column ``value``) and the count of dropped rows.

    The frame is indexed by each date's midnight in New York (in UTC, as index bars are) and carries the
    series' metadata. ``symbol`` defaults to the file name (``DGS3MO.csv`` is ``DGS3MO``). Missing values
    (``.`` or empty) are dropped and counted; anything else that is not a number, a duplicate date, price
    columns, a value of -100 % or less, or a ``fraction`` file holding values of 1 (100 %) or more (a percent
    file declared wrongly) raises a one-line ``DataError`` naming the file and the line.
    """
    path = Path(path)
    unit = check_unit(unit)
    symbol = canonical_symbol(symbol) if symbol is not None else symbol_from_filename(path)[0]
    df = _columns(path, _decode(path))
    date_col, value_col = df.columns
    dates = _dates(path, df[date_col])
    cells = df[value_col].str.strip()
    missing = cells.isin(MISSING).to_numpy()
    values = pd.to_numeric(cells.where(~missing), errors="coerce").to_numpy(dtype="float64")
    junk = ~missing & ~np.isfinite(values)
    if junk.any():
        row = int(np.flatnonzero(junk)[0])
        raise DataError(
            f"{path}: non-numeric {value_col} {cells.iloc[row]!r} at line {row + 2}; a yield is a number "
            f"({unit}), or '.' or an empty cell for a day without one"
        )
    keep = ~missing
    if not keep.any():
        raise DataError(f"{path}: every {value_col} value is missing ('.' or empty); nothing was imported")
    rates = values[keep] / (100.0 if unit == "percent" else 1.0)
    kept = dates[keep]
    shown = values[keep]
    low = rates <= -1.0
    if low.any():
        i = int(np.flatnonzero(low)[0])
        raise DataError(
            f"{path}: {value_col} {shown[i]:g} on {kept[i]:%Y-%m-%d} is -100% a year or less; "
            "no rate can be that low: check the file and its unit"
        )
    if unit == "fraction" and (np.abs(rates) >= 1.0).any():
        i = int(np.flatnonzero(np.abs(rates) >= 1.0)[0])
        raise DataError(
            f"{path}: {value_col} {shown[i]:g} on {kept[i]:%Y-%m-%d} would be {shown[i]:.0%} a year as a fraction; "
            "if the file is in percent, import it with --unit percent"
        )
    index = kept.tz_localize(NEW_YORK).tz_convert("UTC").rename("time")
    frame = pd.DataFrame({"value": rates}, index=index).sort_index()
    attach(frame, SeriesMeta(symbol, f"csv:{path.name} ({unit})", "1d", NEW_YORK))
    return frame, int(missing.sum())


def import_yields(
    paths: list[str | Path],
    unit: str | None,
    symbol: str | None = None,
    cache: Cache | str | Path | None = None,
    *,
    replace: bool = False,
) -> list[YieldImport]:
    """Validate yield CSV files and store them in the cache's yield folder, all or nothing.

    Every file is read first; over a cached series a file must hold every cached date with the same
    value (it may only add dates; :func:`feeds.loader.check_extends`) unless ``replace``. Only then
    are the series written together (:meth:`feeds.cache.Cache.write_many`): one bad file and the
    cache is left as it was. ``notes`` says how many rows without a value each file dropped.
    """
    paths = [Path(p) for p in paths]
    if symbol is not None and len(paths) != 1:
        raise DataError(f"a symbol ({symbol}) can name one file only, not {len(paths)}")
    store = YieldCache(cache)
    read: list[tuple[Path, pd.DataFrame, int, int]] = []
    owner: dict[str, Path] = {}
    for path in paths:
        frame, dropped = read_yield_csv(path, symbol, unit)
        sym = meta_of(frame).symbol
        if sym in owner:
            raise DataError(f"{path}: the yield {sym} is also in {owner[sym]}; import one file per series")
        owner[sym] = path
        added = len(frame)
        if not replace and store.has(sym, "1d"):
            old = store.read(sym, "1d")
            check_extends(old, frame, str(path), YIELD_COLUMNS)
            added = len(frame) - len(old)
        read.append((path, frame, dropped, added))
    metas = store.write_many(frame for _, frame, _, _ in read)
    out = []
    for (path, _, dropped, added), meta in zip(read, metas, strict=True):
        notes = [f"{path.name}: dropped {dropped} row(s) without a value ('.' or empty)"] if dropped else []
        out.append(YieldImport(meta, added, notes, origin=str(path)))
    return out


def import_yield(
    path: str | Path,
    symbol: str | None = None,
    unit: str | None = None,
    cache: Cache | str | Path | None = None,
    *,
    replace: bool = False,
) -> YieldImport:
    """Validate one yield CSV file and store it (see :func:`import_yields`); a bad file stores nothing."""
    (done,) = import_yields([path], unit, symbol, cache, replace=replace)
    return done


def known_at(dates: pd.DatetimeIndex, lag: pd.Timedelta | float = 0.0) -> pd.DatetimeIndex:
    """When each date's yield is known, in UTC: the NYSE close of that date (16:00 New York when the NYSE
    is closed that day) plus ``lag`` (a Timedelta, or hours as a number). ``dates`` are tz-naive dates."""
    if not isinstance(lag, pd.Timedelta):
        lag = pd.Timedelta(hours=float(lag))
    if lag < pd.Timedelta(0):
        raise DataError("the publication lag cannot be negative")
    dates = pd.DatetimeIndex(dates).normalize().as_unit("us")
    if len(dates) == 0:
        return pd.DatetimeIndex([], tz="UTC").as_unit("us")
    regular = (dates + _REGULAR_CLOSE).tz_localize(NEW_YORK).tz_convert("UTC").tz_localize(None).as_unit("us")
    sessions = dates.isin(nyse_sessions(dates.min(), dates.max()))
    closes = regular.to_numpy().copy()
    if sessions.any():
        closes[sessions] = session_closes(dates[sessions]).tz_localize(None).as_unit("us").to_numpy()
    return (pd.DatetimeIndex(closes).tz_localize("UTC") + lag).as_unit("us")


def load_yield(symbol: str, lag: pd.Timedelta | float = 0.0, cache: Cache | str | Path | None = None) -> pd.Series:
    """A cached yield series as :mod:`strategies.cash` takes it: annual fractions indexed by known-at stamps.

    The index is tz-aware UTC: each date's close (:func:`known_at`) plus the publication ``lag``
    (a Timedelta, or hours as a number: pass the run's ``[data] publication_lag_hours``). The name is
    the symbol; ``attrs["fingerprint"]`` is the cached data's fingerprint (for run ids). A series not in
    the cache is a one-line ``DataError`` saying how to import it (``RISKON_DATA`` is not searched: a
    file name does not say its unit).
    """
    store = YieldCache(cache)
    sym = canonical_symbol(symbol)
    if not store.has(sym, "1d"):
        raise DataError(
            f"the yield series {sym} is not in the cache {store.root}; import it with "
            f"`riskon data import FILE --symbol {sym} --kind yield --unit percent` (or --unit fraction)"
        )
    lag = lag if isinstance(lag, pd.Timedelta) else pd.Timedelta(hours=float(lag))
    try:  # every write replaces the JSON by a rename: a new inode, so a changed series is never served stale
        st = os.stat(store.root / f"{store.key(sym, '1d')}.json")
        key = (str(store.root.resolve()), sym, lag.value, st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _LOADED:
        return _LOADED[key].copy()
    frame = store.read(sym, "1d")
    dates = frame.index.tz_convert(NEW_YORK).tz_localize(None)
    out = pd.Series(frame["value"].to_numpy(dtype="float64"), index=known_at(dates, lag), name=sym)
    out.index.name = "known_at"
    out.attrs["fingerprint"] = frame.attrs["fingerprint"]
    if key is not None:
        if len(_LOADED) >= 16:
            _LOADED.clear()
        _LOADED[key] = out
    return out.copy()


def resolve_rate(rate: float | str, lag: pd.Timedelta | float = 0.0, cache: Cache | str | Path | None = None
                 ) -> float | pd.Series:  # fmt: skip
    """A config rate as :mod:`strategies.cash` takes it: a number as it is, a symbol as its yield series."""
    if isinstance(rate, str):
        return load_yield(rate, lag, cache)
    return float(rate)


__all__ = [
    "MISSING",
    "UNITS",
    "YIELD_COLUMNS",
    "YieldCache",
    "YieldImport",
    "check_unit",
    "import_yield",
    "import_yields",
    "known_at",
    "load_yield",
    "read_yield_csv",
    "resolve_rate",
]
