"""As-of alignment of index sessions onto crypto bars, with no lookahead.

Two clocks meet here. An index session is known only at its close (16:00 New
York, earlier on early-close days, from the NYSE calendar); a crypto bar closes
at its open plus its length. A crypto bar sees an index session only when the
session's close stamp is at or before the bar's own close minus the
publication lag. The close stamps are used for the join and nowhere else:
every frame stays indexed by bar *open* time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from feeds.errors import DataError
from feeds.frame import timeframe_delta
from feeds.sessions import session_closes, week_ending

_US_PER_DAY = 86_400_000_000


def session_frame(index: pd.DataFrame, price: str = "close") -> pd.DataFrame:
    """Index bars as sessions: ``idx_close``, ``idx_ath`` (running high of closes), week ends, close stamps.

    ``index`` is a normalised daily frame (bars at 00:00 exchange time); the
    result is indexed by tz-naive session date and always covers the index's
    full history, so the all-time high is a true all-time high.
    """
    if price not in index.columns:
        raise DataError(f"the index has no {price!r} column; use 'close' or 'adj_close'")
    tz = index.attrs.get("tz", "America/New_York")
    dates = index.index.tz_convert(tz).tz_localize(None).normalize().as_unit("us")
    closes = index[price].to_numpy(dtype="float64")
    if np.isnan(closes).any() or (closes <= 0).any():
        bad = dates[np.isnan(closes) | (closes <= 0)][0]
        raise DataError(
            f"the index's {price} is missing or not positive on {bad:%Y-%m-%d}; fix the file or use 'close'"
        )
    out = pd.DataFrame(
        {
            "idx_close": closes,
            "idx_ath": np.maximum.accumulate(closes),
            "idx_week_end": week_ending(dates).to_numpy(),
            "idx_close_time": session_closes(dates),
        },
        index=pd.DatetimeIndex(dates, name="session"),
    )
    return out


def align(asset: pd.DataFrame, sessions: pd.DataFrame, lag: pd.Timedelta | float = 0.0) -> pd.DataFrame:
    """Join ``sessions`` (from ``session_frame``, plus any per-session columns) onto ``asset`` bars.

    ``lag`` is the publication lag (a Timedelta, or hours as a number). Adds every
    session column as seen by each bar, plus ``idx_session`` (the session date
    seen), ``idx_pos`` (its ordinal, -1 when none yet) and ``idx_age`` (days from
    that session's close to the bar's close). Bars that see no session yet carry NaN.
    """
    if not isinstance(lag, pd.Timedelta):
        lag = pd.Timedelta(hours=float(lag))
    if lag < pd.Timedelta(0):
        raise DataError("the publication lag cannot be negative")
    if "timeframe" not in asset.attrs:
        raise DataError("the asset frame carries no timeframe; its bar length decides what it may see")
    bar = timeframe_delta(asset.attrs["timeframe"])
    stamps = pd.DatetimeIndex(sessions["idx_close_time"]).tz_convert("UTC").as_unit("us").asi8
    if len(stamps) > 1 and (np.diff(stamps) <= 0).any():
        raise DataError("index session close stamps are not strictly increasing")
    opens = asset.index.tz_convert("UTC").as_unit("us").asi8
    closes = opens + int(bar / pd.Timedelta(microseconds=1))
    cutoff = closes - int(lag / pd.Timedelta(microseconds=1))
    pos = np.searchsorted(stamps, cutoff, side="right") - 1
    seen = pos >= 0
    out = asset.copy()
    safe = np.where(seen, pos, 0)
    for col in sessions.columns:
        if col == "idx_close_time":
            continue
        values = sessions[col].to_numpy()
        if values.dtype == bool:
            column = np.where(seen, values[safe], False)
        else:
            column = np.where(seen, values[safe].astype("float64"), np.nan)
        out[col] = column
    session = sessions.index[safe].to_numpy().copy()
    session[~seen] = np.datetime64("NaT")
    out["idx_session"] = session
    out["idx_pos"] = np.where(seen, pos, -1)
    out["idx_age"] = np.where(seen, (closes - stamps[safe]) / _US_PER_DAY, np.nan)
    out.attrs = dict(asset.attrs)
    return out
