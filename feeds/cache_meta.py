"""The cache's per-series metadata: its key, its Parquet file name, and the checks a JSON must pass.

Nothing read from a metadata file is trusted: :func:`check_meta` refuses a JSON
that is not an object, lacks a key, has a value of the wrong type, describes
another series, or whose ``file`` is not exactly the name :func:`data_name`
builds from the key and the fingerprint (so no ``..``, no absolute path).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from feeds.atomic import bare_name
from feeds.errors import DataError
from feeds.symbols import canonical_symbol, canonical_timeframe

#: Keys every metadata JSON must hold (``fetched_at`` is informative and optional).
META_KEYS = ("symbol", "source", "timeframe", "tz", "first", "last", "rows", "fingerprint", "file")
FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


def series_key(symbol: str, timeframe: str) -> str:
    """The file-name-safe key of a series: the checked, case-folded symbol URL-quoted, and the timeframe."""
    return f"{quote(canonical_symbol(symbol), safe='')}__{canonical_timeframe(timeframe)}"


def data_name(key: str, fp: str) -> str:
    """The one Parquet file name a series ``key`` with fingerprint ``fp`` may have."""
    return f"{key}.{fp}.parquet"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def malformed(symbol: str, timeframe: str, path: Path, why: str) -> DataError:
    """The one-line error for a malformed metadata file, saying how to repair it."""
    return DataError(
        f"cached {symbol} ({timeframe}) metadata {path} is malformed ({why}); "
        f"delete {path} and import {symbol} again (or import it with --replace)"
    )


def _problem(raw: object, key: str) -> str | None:
    if not isinstance(raw, dict):
        kinds = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
        return f"not a JSON object but {kinds.get(type(raw), 'null')}"
    missing = [k for k in META_KEYS if k not in raw]
    if missing:
        return f"missing key(s) {', '.join(missing)}"
    for k in META_KEYS:
        want = int if k == "rows" else str
        if type(raw[k]) is not want:
            return f"{k} is {_short(raw[k])}, not {'an integer' if want is int else 'a string'}"
    if raw["rows"] < 1:
        return f"rows is {raw['rows']}"
    try:
        same_series = series_key(raw["symbol"], raw["timeframe"]) == key
    except DataError:
        same_series = False
    if not same_series:
        return f"it describes {_short(raw['symbol'])} ({_short(raw['timeframe'])})"
    if not FINGERPRINT.match(raw["fingerprint"]):
        return f"fingerprint {_short(raw['fingerprint'])} is not 16 hex digits"
    expected = data_name(key, raw["fingerprint"])
    if raw["file"] != expected:
        where = "points outside the cache" if not bare_name(raw["file"]) else f"is not {expected!r}"
        return f"its file entry {_short(raw['file'])} {where}"
    try:
        ZoneInfo(raw["tz"])
    except (ValueError, ZoneInfoNotFoundError):
        return f"tz {_short(raw['tz'])} is not a time zone"
    for k in ("first", "last"):
        try:
            pd.Timestamp(raw[k])
        except (ValueError, TypeError):
            return f"{k} {_short(raw[k])} is not a time"
    return None


def check_meta(raw: object, key: str, symbol: str, timeframe: str, path: Path) -> dict:
    """``raw`` (parsed JSON) checked to be well-formed metadata of the series ``key``.

    Raises the one-line :func:`malformed` error naming the series (``symbol``,
    ``timeframe``), the file ``path`` and what is wrong.
    """
    why = _problem(raw, key)
    if why is not None:
        raise malformed(symbol, timeframe, path, why)
    assert isinstance(raw, dict)
    return raw
