"""Data and signals the user hands in (``riskon.run(config, index=df, asset=df, signal=series)``).

Frames are validated exactly as a CSV import of the same symbol is (``feeds.user_frame``) and
then take the place of the cached series. A supplied entry signal takes the place of the
config's rule: riskon cannot know how it was made, so it cannot check it for lookahead, and
every report of such a run says so (``SIGNAL_SUPPLIED``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from feeds.errors import DataError
from feeds.user_frame import from_frame
from riskon.config import ConfigError, RunConfig
from strategies.signals import bar_events

#: How a run whose entry signal was handed in is marked in every report.
SIGNAL_SUPPLIED = "signal supplied, not checked"


def given_frames(
    config: RunConfig,
    index: pd.DataFrame | None = None,
    asset: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    announce: Callable[[str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """The user's frames by symbol, validated as imports of the config's symbols are (warnings announced).

    ``index`` is the config's ``data.index`` series (daily bars); ``asset`` is the single target's
    frame, or a dict of frames by target symbol (a basket). A symbol not given is read from the
    cache as usual.
    """
    d, targets = config.data, config.target["assets"]
    wanted: dict[str, tuple[pd.DataFrame, str]] = {}
    if index is not None:
        wanted[d["index"]] = (index, "1d")
    if isinstance(asset, Mapping):
        unknown = [s for s in asset if s not in targets]
        if unknown:
            raise ConfigError(
                f"asset frame {unknown[0]!r} is not a target of {config.name}; targets: {', '.join(targets)}"
            )
        wanted.update({s: (f, d["timeframe"]) for s, f in asset.items()})
    elif asset is not None:
        if len(targets) != 1:
            raise ConfigError(
                f"{config.name} trades {len(targets)} assets: pass asset as a dict of frames by symbol "
                f"({', '.join(targets)})"
            )
        wanted[targets[0]] = (asset, d["timeframe"])
    out = {}
    for symbol, (frame, timeframe) in wanted.items():
        out[symbol], warnings = from_frame(frame, symbol, timeframe)
        for w in warnings:
            if announce:
                announce(f"warning: {w}")
    return out


def session_signal(sessions: pd.DataFrame, signal: pd.Series, index_symbol: str) -> pd.DataFrame:
    """A supplied entry signal as a rule's output on the index ``sessions``: ``signal`` and (NaN) ``level``.

    ``signal`` is a boolean Series indexed by session dates (time-zone-aware stamps are read as New York
    dates); every date must be a session of the index, and sessions it leaves out are False.
    """
    if not isinstance(signal, pd.Series):
        raise DataError(f"signal: expected a boolean pandas Series on {index_symbol} sessions, got "
                        f"{type(signal).__name__}")  # fmt: skip
    if signal.dtype != bool:
        raise DataError(
            f"signal: must be a boolean Series (True on the sessions that fire), got dtype {signal.dtype}; "
            "convert it with .astype(bool) after dropping missing values"
        )
    if not isinstance(signal.index, pd.DatetimeIndex):
        raise DataError(
            f"signal: its index must be the {index_symbol} session dates, got {type(signal.index).__name__}"
        )
    dates = signal.index
    if dates.tz is not None:
        dates = dates.tz_convert("America/New_York").tz_localize(None).normalize()  # sessions are NYSE dates
    elif (dates != dates.normalize()).any():
        bad = dates[dates != dates.normalize()][0]
        raise DataError(f"signal: {bad} is not a date; index the signal by session date (midnight, no time zone)")
    dates = dates.as_unit("us")
    if dates.has_duplicates:
        raise DataError(f"signal: the date {dates[dates.duplicated()][0]:%Y-%m-%d} appears twice")
    extra = dates.difference(sessions.index)
    if len(extra):
        raise DataError(
            f"signal: {extra[0]:%Y-%m-%d} is not a {index_symbol} session ({len(extra)} such date(s)); "
            "a signal lives on the index's sessions"
        )
    on = pd.Series(signal.to_numpy(dtype=bool), index=dates).reindex(sessions.index, fill_value=False)
    return pd.DataFrame({"signal": on.to_numpy(dtype=bool), "level": np.nan}, index=sessions.index)


def supplied_events(
    config: RunConfig, sessions: pd.DataFrame, bars: pd.DataFrame, signal: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bar events of a supplied signal (as ``bar_events`` gives a rule's) and the sessions with its column."""
    if config.exits["index_below_break"]:
        raise ConfigError(
            f"{config.name}: [exits] index_below_break needs a break level, which a supplied signal has not; "
            "set it to false"
        )
    out = session_signal(sessions, signal, config.data["index"])
    return bar_events(bars, out), sessions.join(out[["signal"]])
