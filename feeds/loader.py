"""Getting a series into the cache and out again: import, fetch, and load-on-demand.

``load`` is what backtests call: the cached series, or — on first use — the
cache filled from ``RISKON_DATA`` (a folder of CSV files) when it is set,
otherwise from Yahoo or the exchange. It always says where data came from,
and a download says so before it starts (it can take up to its deadline).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.advice import IMPORT_HINT
from feeds.cache import Cache
from feeds.csv_source import read_csv
from feeds.deadline import DEFAULT_DEADLINE, call_with_deadline
from feeds.errors import DataError, NetworkError
from feeds.frame import COLUMNS, meta_of, timeframe_delta
from feeds.symbols import (
    canonical_symbol,
    canonical_timeframe,
    filename_for,
    split_exchange_symbol,
    symbol_from_filename,
)
from feeds.validate import DataWarning


@dataclass
class Filled:
    """What one import or fetch did: the stored metadata, rows added, and the data's warnings."""

    meta: dict
    added: int
    warnings: list[DataWarning] = field(default_factory=list)
    origin: str = ""


def data_dir() -> Path | None:
    """The ``RISKON_DATA`` folder, if set."""
    env = os.environ.get("RISKON_DATA")
    return Path(env).expanduser() if env else None


def _when(stamp: pd.Timestamp, timeframe: str) -> str:
    return stamp.strftime("%Y-%m-%d" if timeframe.endswith(("d", "w")) else "%Y-%m-%d %H:%M")


def check_extends(old: pd.DataFrame, new: pd.DataFrame, origin: str, columns: tuple[str, ...] = COLUMNS) -> None:
    """Refuse ``new`` as the next version of the cached ``old`` unless it only adds bars.

    ``new`` must hold every cached bar with the same values in ``columns`` (``rtol`` 1e-9,
    NaN equal to NaN): fewer rows, missing bars or rewritten history raise a one-line
    ``DataError`` that says how to replace the series on purpose.
    """
    m = meta_of(new)
    what = f"{m.symbol} ({m.timeframe})"
    how = f"the cache is unchanged; to replace {m.symbol} on purpose, import with --replace (replace=True)"
    missing = old.index.difference(new.index)
    if len(missing):
        raise DataError(
            f"{origin}: importing it would drop {len(missing)} of the {len(old)} cached {what} bars "
            f"(the file has {len(new)} row(s); first missing bar {_when(missing[0], m.timeframe)}); {how}"
        )
    a = old[list(columns)].to_numpy(dtype="float64")
    b = new.loc[old.index, list(columns)].to_numpy(dtype="float64")
    differs = ~np.isclose(a, b, rtol=1e-9, atol=0, equal_nan=True)
    rows = differs.any(axis=1)
    if rows.any():
        i = int(np.flatnonzero(rows)[0])
        j = int(np.flatnonzero(differs[i])[0])
        raise DataError(
            f"{origin}: {int(rows.sum())} cached {what} bar(s) differ in the file, first on "
            f"{_when(old.index[i], m.timeframe)} ({columns[j]} {a[i, j]:g} cached, {b[i, j]:g} in the file); "
            f"importing it would rewrite history; {how}"
        )


def import_files(
    paths: Sequence[str | Path],
    symbol: str | None = None,
    cache: Cache | None = None,
    *,
    replace: bool = False,
    timeframe: str | None = None,
    allow_jumps: bool = False,
    now: datetime | pd.Timestamp | None = None,
    progress: Callable[[Path], None] | None = None,
) -> list[Filled]:
    """Import CSV files all or nothing: validate every file, then commit every series together.

    Each file is read and validated (``timeframe``, ``allow_jumps`` and the clock ``now``
    go to :func:`feeds.csv_source.read_csv`); two files naming one series are refused;
    unless ``replace``, a file must extend its cached series (see :func:`check_extends`).
    Only then are the series written, with :meth:`Cache.write_many`. Any bad file raises
    a one-line ``DataError`` that starts with its path, and the cache is left as it was,
    byte for byte. ``progress`` is called with each path before it is read.
    """
    cache = cache or Cache()
    paths = [Path(p) for p in paths]
    if symbol is not None and len(paths) != 1:
        raise DataError(f"a symbol ({symbol}) can name one file only, not {len(paths)}")
    read: list[tuple[Path, pd.DataFrame, list[DataWarning]]] = []
    owner: dict[tuple[str, str], Path] = {}
    for path in paths:
        if progress:
            progress(path)
        frame, warnings = read_csv(path, symbol=symbol, timeframe=timeframe, now=now, allow_jumps=allow_jumps)
        m = meta_of(frame)
        series = (m.symbol, m.timeframe)
        if series in owner:
            raise DataError(
                f"{path}: {m.symbol} ({m.timeframe}) is also in {owner[series]}; import one file per series"
            )
        owner[series] = path
        read.append((path, frame, warnings))
    added = []
    for path, frame, _ in read:
        m = meta_of(frame)
        if replace or not cache.has(m.symbol, m.timeframe):
            added.append(len(frame))
            continue
        old = cache.read(m.symbol, m.timeframe)
        check_extends(old, frame, str(path))
        added.append(len(frame) - len(old))
    metas = cache.write_many(frame for _, frame, _ in read)
    return [
        Filled(meta, n, warnings, origin=str(path))
        for (path, _, warnings), meta, n in zip(read, metas, added, strict=True)
    ]


def import_file(
    path: str | Path,
    symbol: str | None = None,
    cache: Cache | None = None,
    replace: bool = False,
    *,
    timeframe: str | None = None,
    allow_jumps: bool = False,
    now: datetime | pd.Timestamp | None = None,
) -> Filled:
    """Validate one CSV file and store it; an invalid file raises ``DataError`` and stores nothing.

    Over a cached series the file must only add bars unless ``replace`` (see :func:`import_files`).
    """
    (filled,) = import_files(
        [path], symbol, cache, replace=replace, timeframe=timeframe, allow_jumps=allow_jumps, now=now
    )
    return filled


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv" and path.is_file()


def csv_files(paths: list[str | Path]) -> list[Path]:
    """Expand folders into their ``*.csv`` files (any case of ``.csv``), keep files as they are, sorted and unique."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(c for c in p.iterdir() if _is_csv(c))
            if not found:
                raise DataError(f"{p}: no .csv files in this folder")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    return list(dict.fromkeys(out))


def _fetch_frame(symbol: str, timeframe: str, start, end):
    if split_exchange_symbol(symbol):
        from feeds.exchange import fetch_ccxt  # lazy: ccxt is slow to import and only fetches need it

        return fetch_ccxt(symbol, timeframe, start, end)
    from feeds.yahoo import fetch_yahoo  # lazy: yfinance is slow to import and only fetches need it

    return fetch_yahoo(symbol, start, end, interval=timeframe)


def source_name(symbol: str) -> str:
    """Where ``symbol`` is downloaded from: ``Yahoo``, or the exchange of a pair (``binance``)."""
    parts = split_exchange_symbol(symbol)
    return parts[0] if parts else "Yahoo"


def fetch(
    symbol: str,
    timeframe: str = "1d",
    start: str | None = None,
    end: str | None = None,
    cache: Cache | None = None,
    deadline: float = DEFAULT_DEADLINE,
    announce: Callable[[str], None] | None = None,
) -> Filled:
    """Fetch a series from its source (Yahoo or ccxt) into the cache, only the missing tail if cached.

    The network call runs under a hard deadline; on any failure the cache is untouched. ``announce``
    is told before the attempt starts ("downloading BTC-USD (1d) from Yahoo: all history ..."), so a
    wait of up to ``deadline`` seconds is never a silent one.
    """
    cache = cache or Cache()
    symbol, timeframe = canonical_symbol(symbol), canonical_timeframe(timeframe)
    span = "all history" if start is None else f"from {str(start)[:10]}"
    if start is None and cache.has(symbol, timeframe):
        # re-fetch the last stored bar: it must agree, and proves the series joins up
        start = pd.Timestamp(cache.meta(symbol, timeframe)["last"]).isoformat()
        span = f"the bars from {start[:10]} on"
    if end is not None:
        span += f" to {str(end)[:10]}"
    if announce:
        src = source_name(symbol)
        announce(f"downloading {symbol} ({timeframe}) from {src}: {span} (gives up after {deadline:g} s) ...")
    frame, warnings = call_with_deadline(
        _fetch_frame, symbol, timeframe, start, end, deadline=deadline, what=f"fetching {symbol}"
    )
    meta, added = cache.update(frame)
    src = "exchange" if split_exchange_symbol(symbol) else "Yahoo"
    return Filled(meta, added, warnings, origin=src)


def _inside(path: Path, folder: Path) -> Path:
    """``path`` if it resolves inside ``folder`` (symbolic links followed); ``DataError`` otherwise."""
    if not path.resolve().is_relative_to(folder.resolve()):
        raise DataError(
            f"{path} resolves to {path.resolve()}, outside RISKON_DATA={folder}; "
            "riskon reads only files inside that folder"
        )
    return path


def find_in_data_dir(symbol: str, timeframe: str, folder: Path) -> Path | None:
    """The file in ``folder`` whose name maps to ``symbol`` at ``timeframe``, if any.

    Names match case-insensitively (``eth-usd.csv`` is ``ETH-USD``), the symbol is
    checked first (``../OUTSIDE`` is refused) and the file found must resolve inside
    ``folder``. Two files for one series raise ``DataError``.
    """
    symbol, timeframe = canonical_symbol(symbol), canonical_timeframe(timeframe)
    guess = folder / filename_for(symbol, timeframe)
    found = []
    for p in sorted(folder.iterdir()):
        if not _is_csv(p):
            continue
        try:
            sym, tf = symbol_from_filename(p)
        except DataError:
            continue
        if sym == symbol and (tf or "1d") == timeframe:
            found.append(p)
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DataError(f"RISKON_DATA={folder} has {len(found)} files for {symbol} ({timeframe}): {names}; keep one")
    if found:
        return _inside(found[0], folder)
    return _inside(guess, folder) if guess.is_file() else None


def fill_from_data_dir(
    symbol: str,
    timeframe: str = "1d",
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
) -> Filled | None:
    """Import ``symbol`` into the cache from its file in ``RISKON_DATA``, as ``load`` does on first use.

    Returns None (and changes nothing) when ``RISKON_DATA`` is unset or has no file for the series;
    a ``RISKON_DATA`` that is not a folder, or a bad file, is a one-line ``DataError``. ``announce``
    gets one line naming the file and the rows filled.
    """
    cache = cache or Cache()
    symbol, timeframe = canonical_symbol(symbol), canonical_timeframe(timeframe)
    folder = data_dir()
    if folder is None:
        return None
    if not folder.is_dir():
        raise DataError(f"RISKON_DATA={folder} is not a folder; point it at a folder of CSV files")
    path = find_in_data_dir(symbol, timeframe, folder)
    if path is None:
        return None
    filled = import_file(path, symbol=symbol, cache=cache)
    if announce:
        announce(f"cache: filled {symbol} from {path} ({filled.meta['rows']} rows)")
    return filled


def load(
    symbol: str,
    timeframe: str = "1d",
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> pd.DataFrame:
    """The cached series for ``symbol``, filling the cache first if it is not there yet.

    From ``RISKON_DATA`` when it is set (:func:`fill_from_data_dir`), otherwise by a download
    (:func:`fetch`); ``announce`` hears of either, a download before it starts.
    """
    cache = cache or Cache()
    timeframe_delta(timeframe)  # validates the timeframe string (a ValueError, as before)
    symbol, timeframe = canonical_symbol(symbol), canonical_timeframe(timeframe)
    if not cache.has(symbol, timeframe):
        folder = data_dir()
        if folder is not None:
            if fill_from_data_dir(symbol, timeframe, cache, announce) is None:
                raise DataError(
                    f"{symbol} ({timeframe}) is not cached and RISKON_DATA={folder} has no file for it "
                    f"(expected {filename_for(symbol, timeframe)}); add one or unset RISKON_DATA to download"
                )
        else:
            try:
                filled = fetch(symbol, timeframe, cache=cache, deadline=deadline, announce=announce)
            except NetworkError as e:
                if IMPORT_HINT in str(e):  # the source's own line already says how to go on without it
                    raise
                raise NetworkError(
                    f"{e}. The cache is unchanged; import files with `riskon data import PATH` "
                    "or set RISKON_DATA to a folder of CSV files"
                ) from None
            if announce:
                announce(f"cache: downloaded {symbol} from {filled.origin} ({filled.meta['rows']} rows)")
    return cache.read(symbol, timeframe)
