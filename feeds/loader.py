"""Getting a series into the cache and out again: import, fetch, and load-on-demand.

``load`` is what backtests call: the cached series, or — on first use — the
cache filled from ``RISKON_DATA`` (a folder of CSV files) when it is set,
otherwise from Yahoo or the exchange. It always says where data came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from feeds.cache import Cache
from feeds.csv_source import read_csv
from feeds.deadline import DEFAULT_DEADLINE, call_with_deadline
from feeds.errors import DataError, NetworkError
from feeds.frame import timeframe_delta
from feeds.symbols import filename_for, split_exchange_symbol, symbol_from_filename
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


def import_file(
    path: str | Path, symbol: str | None = None, cache: Cache | None = None, replace: bool = True
) -> Filled:
    """Validate one CSV file and store it; an invalid file raises ``DataError`` and stores nothing."""
    cache = cache or Cache()
    frame, warnings = read_csv(path, symbol=symbol)
    meta = cache.write(frame) if replace else cache.update(frame)[0]
    return Filled(meta, len(frame), warnings, origin=str(path))


def csv_files(paths: list[str | Path]) -> list[Path]:
    """Expand folders into their ``*.csv`` files, keep files as they are, sorted and unique."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.csv"))
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
        from feeds.exchange import fetch_ccxt

        return fetch_ccxt(symbol, timeframe, start, end)
    from feeds.yahoo import fetch_yahoo

    return fetch_yahoo(symbol, start, end, interval=timeframe)


def fetch(
    symbol: str,
    timeframe: str = "1d",
    start: str | None = None,
    end: str | None = None,
    cache: Cache | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> Filled:
    """Fetch a series from its source (Yahoo or ccxt) into the cache, only the missing tail if cached.

    The network call runs under a hard deadline; on any failure the cache is untouched.
    """
    cache = cache or Cache()
    if start is None and cache.has(symbol, timeframe):
        # re-fetch the last stored bar: it must agree, and proves the series joins up
        start = pd.Timestamp(cache.meta(symbol, timeframe)["last"]).isoformat()
    frame, warnings = call_with_deadline(
        _fetch_frame, symbol, timeframe, start, end, deadline=deadline, what=f"fetching {symbol}"
    )
    meta, added = cache.update(frame)
    src = "exchange" if split_exchange_symbol(symbol) else "Yahoo"
    return Filled(meta, added, warnings, origin=src)


def find_in_data_dir(symbol: str, timeframe: str, folder: Path) -> Path | None:
    """The file in ``folder`` whose name maps to ``symbol`` at ``timeframe``, if any."""
    guess = folder / filename_for(symbol, timeframe)
    if guess.exists():
        return guess
    for p in sorted(folder.glob("*.csv")):
        sym, tf = symbol_from_filename(p)
        if sym == symbol and (tf or "1d") == timeframe:
            return p
    return None


def load(
    symbol: str,
    timeframe: str = "1d",
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> pd.DataFrame:
    """The cached series for ``symbol``, filling the cache first if it is not there yet."""
    cache = cache or Cache()
    timeframe_delta(timeframe)  # validates the timeframe string
    if not cache.has(symbol, timeframe):
        folder = data_dir()
        if folder is not None:
            if not folder.is_dir():
                raise DataError(f"RISKON_DATA={folder} is not a folder; point it at a folder of CSV files")
            path = find_in_data_dir(symbol, timeframe, folder)
            if path is None:
                raise DataError(
                    f"{symbol} ({timeframe}) is not cached and RISKON_DATA={folder} has no file for it "
                    f"(expected {filename_for(symbol, timeframe)}); add one or unset RISKON_DATA to download"
                )
            filled = import_file(path, symbol=symbol, cache=cache)
            if announce:
                announce(f"cache: filled {symbol} from {path} ({filled.meta['rows']} rows)")
        else:
            try:
                filled = fetch(symbol, timeframe, cache=cache, deadline=deadline)
            except NetworkError as e:
                raise NetworkError(
                    f"{e}. The cache is unchanged; import files with `riskon data import PATH` "
                    "or set RISKON_DATA to a folder of CSV files"
                ) from None
            if announce:
                announce(f"cache: downloaded {symbol} from {filled.origin} ({filled.meta['rows']} rows)")
    return cache.read(symbol, timeframe)
