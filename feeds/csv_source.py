"""CSV import: Yahoo-style (``Date,Open,High,Low,Close,Adj Close,Volume``) and ccxt-style files.

A Yahoo-style date is a session date in the symbol's own time zone (New York for
indices and ETFs, UTC for crypto); a ccxt-style ``timestamp`` is the bar open in
ms UTC. Every way a file can be unreadable ends in one ``DataError`` line.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.errors import DataError
from feeds.frame import COLUMNS, SeriesMeta, attach
from feeds.symbols import (
    canonical_symbol,
    canonical_timeframe,
    exchange_tz,
    is_crypto,
    parse_filename,
    symbol_from_filename,
)
from feeds.validate import DataWarning, validate

_TIME_NAMES = ("date", "datetime", "timestamp", "time")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


def _decode(path: Path, raw: bytes) -> str:
    if not raw.strip():
        raise DataError(f"{path}: the file is empty; nothing was imported")
    if b"\x00" in raw[:8192]:
        raise DataError(f"{path}: binary data, not a CSV text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save the file as UTF-8 CSV"
        ) from None


def _column_name(name: str) -> str:
    return re.sub(r"\s+", "_", str(name).strip().lower())


def _offset_minutes(text: pd.Series) -> np.ndarray:
    """The UTC offset each date string is written with, in minutes (``Z`` is 0)."""
    found = text.str.extract(r"(?P<sign>[+-])(?P<h>\d{2}):?(?P<m>\d{2})$")
    minutes = found["h"].fillna("0").astype(int) * 60 + found["m"].fillna("0").astype(int)
    negative = (found["sign"] == "-").fillna(False).to_numpy(dtype=bool)
    return np.where(negative, -minutes.to_numpy(), minutes.to_numpy())


def _parse_times(path: Path, col: pd.Series, tz: str) -> pd.DatetimeIndex:
    """Parse the time column: ms/s epoch numbers are UTC; date strings are local to ``tz``."""
    text = col.astype("string").str.strip()
    if text.isna().any() or (text == "").any():
        row = int(np.flatnonzero((text.isna() | (text == "")).to_numpy())[0]) + 2
        raise DataError(f"{path}: empty date at line {row}")
    if text.str.fullmatch(r"\d{10,13}").all():
        nums = text.astype("int64")
        is_ms = (nums > 10**11).to_numpy()
        if is_ms.any() and not is_ms.all():
            row = int(np.flatnonzero(~is_ms)[0]) + 2
            raise DataError(
                f"{path}: timestamps mix milliseconds and seconds (line {row}); write every timestamp in one unit"
            )
        return pd.DatetimeIndex(pd.to_datetime(nums, unit="ms" if is_ms.all() else "s", utc=True))
    has_offset = text.str.contains(_OFFSET)
    if has_offset.any() and not has_offset.all():
        first_naive = int(np.flatnonzero(~has_offset.to_numpy())[0]) + 2
        raise DataError(
            f"{path}: mixed time zones (some dates carry a UTC offset, line {first_naive} does not); "
            "write every date in one time zone"
        )
    try:
        parsed = pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", utc=bool(has_offset.all())))
    except (ValueError, TypeError) as e:
        bad = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True).isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: unparseable date {text.iloc[row]!r} at line {row + 2}; use YYYY-MM-DD") from None
        raise DataError(f"{path}: cannot read the dates ({e})") from None
    if has_offset.all():
        # one fixed offset throughout, or each date in the series' own zone (e.g. -05:00/-04:00 in New York)
        written = _offset_minutes(text)
        own = (parsed.tz_convert(tz).tz_localize(None) - parsed.tz_localize(None)).total_seconds().to_numpy() / 60
        if len(np.unique(written)) > 1 and (written != own).any():
            row = int(np.flatnonzero(written != own)[0])
            raise DataError(
                f"{path}: mixed time zones ({text.iloc[row]!r} at line {row + 2} has a different UTC offset "
                f"from the others and is not in {tz}); write every date in one time zone"
            )
        return parsed
    local = parsed.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    if local.isna().any():
        row = int(np.flatnonzero(local.isna())[0])
        raise DataError(
            f"{path}: local time {text.iloc[row]!r} at line {row + 2} does not exist or is ambiguous in {tz} "
            "(daylight saving change); write the times with a UTC offset"
        )
    return local.tz_convert("UTC")


def read_csv(
    path: str | Path,
    symbol: str | None = None,
    timeframe: str | None = None,
    *,
    now: datetime | pd.Timestamp | None = None,
    allow_jumps: bool = False,
) -> tuple[pd.DataFrame, list[DataWarning]]:
    """Read and validate one CSV file into a normalised frame (metadata attached) and its warnings.

    The symbol and timeframe come from the file name unless given. Yahoo symbols are
    case-insensitive (``eth-usd.csv`` is ``ETH-USD``). A name without a timeframe
    (``BTC-USD.csv``) declares daily bars: a file of hourly bars under it is refused
    unless ``timeframe`` says so. ``now`` and ``allow_jumps`` go to :func:`feeds.validate.validate`.
    """
    path = Path(path)
    if symbol is not None:
        symbol = canonical_symbol(symbol)
    if timeframe is not None:
        timeframe = canonical_timeframe(timeframe)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror})") from None
    text = _decode(path, raw)
    header = text.splitlines()[0]
    if "," not in header:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in header:
                raise DataError(f"{path}: columns are separated by {name}; riskon reads comma-separated files")
        raise DataError(f"{path}: the first line {header[:60]!r} is not a CSV header with date and price columns")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: malformed CSV ({str(e).strip().splitlines()[-1]})") from None
    df.columns = [_column_name(c) for c in df.columns]
    time_col = next((c for c in _TIME_NAMES if c in df.columns), None)
    missing = [c for c in ("open", "high", "low", "close") if c not in df.columns]
    if time_col is None or missing:
        need = (["date"] if time_col is None else []) + missing
        raise DataError(
            f"{path}: missing column(s) {', '.join(need)}; found {', '.join(df.columns)}. "
            "Expected Date,Open,High,Low,Close,Volume (Yahoo) or timestamp,open,high,low,close,volume (ccxt)"
        )
    if df.empty:
        raise DataError(f"{path}: only a header, no data rows; nothing was imported")

    if symbol is None:
        symbol, name_tf = symbol_from_filename(path)
    else:
        name_tf = parse_filename(path)[1]
    tz = exchange_tz(symbol)
    index = _parse_times(path, df[time_col], tz)

    out = pd.DataFrame(index=index.as_unit("us").rename("time"))
    for col in COLUMNS:
        if col not in df.columns:
            continue
        cells = df[col].str.strip()
        values = pd.to_numeric(cells.replace({"": None, "null": None, "NaN": None, "nan": None}), errors="coerce")
        junk = values.isna() & ~cells.isin(["", "null", "NaN", "nan"])
        if junk.any():
            row = int(np.flatnonzero(junk.to_numpy())[0])
            raise DataError(f"{path}: non-numeric {col} {cells.iloc[row]!r} at line {row + 2}")
        out[col] = values.to_numpy(dtype="float64")
    timeframe = timeframe or name_tf or "1d"
    out, warnings = validate(
        out,
        str(path),
        crypto=is_crypto(symbol),
        timeframe=timeframe,
        local_tz=tz,
        now=now,
        allow_jumps=allow_jumps,
    )
    source = f"csv:{path.name}"
    return attach(out, SeriesMeta(symbol, source, timeframe, tz)), warnings
