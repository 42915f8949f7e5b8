"""backtrader feeds that carry a crypto series together with the index lines.

The frame handed in is already aligned in pandas (backtrader's own multi-feed
synchronisation would repeat Friday's index bar on weekends). Bars are stamped
with their *open* time, so backtrader's dates are the bars' own dates.

``idx_session`` (the index session a bar sees) is a float line like backtrader's own
``datetime``: the session date at 00:00 in backtrader's ``date2num`` encoding (days since
0001-01-01, plus one), so ``bt.num2date(data.idx_session[0]).date()`` is the session date;
NaN on bars that see no session yet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from feeds.btcompat import bt

#: The extra lines every riskon feed carries beside OHLCV.
EXTRA_LINES = ("idx_close", "idx_ath", "idx_age", "idx_session", "event", "event_level", "exit_signal", "t_days")


class IndexCryptoData(bt.feeds.PandasData):
    """A crypto OHLCV feed plus the index lines seen at each bar and the rule's events."""

    lines = EXTRA_LINES
    params = (
        ("datetime", None),  # the index holds the bar open time
        ("openinterest", None),  # crypto has none
        ("idx_close", -1),  # index close seen by the bar
        ("idx_ath", -1),  # index all-time high (full history) seen by the bar
        ("idx_age", -1),  # days from that index close to this bar's close
        ("idx_session", -1),  # the index session seen, as backtrader's date2num of its date (NaN: none yet)
        ("event", -1),  # 1.0 on bars where a confirming session became visible
        ("event_level", -1),  # the break level behind the event
        ("exit_signal", -1),  # 1.0 where the composed exit rule is true
        ("t_days", -1),  # bar open time in days since 1970-01-01 (for calendar-day rules)
    )


def feed_frame(prices: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """The columns ``IndexCryptoData`` reads, on a tz-naive UTC index, as floats.

    ``prices`` holds the coin's OHLCV on the master calendar (NaN where it has
    no bar); ``lines`` the index lines and events on the same calendar.
    """
    df = pd.DataFrame(index=lines.index.tz_convert("UTC").tz_localize(None))
    for col in ("open", "high", "low", "close", "volume"):
        df[col] = prices[col].to_numpy(dtype="float64")
    for col in EXTRA_LINES:
        if col == "t_days":
            df[col] = lines.index.as_unit("us").asi8 / 86_400_000_000
        elif col == "idx_session" and col in lines.columns:
            df[col] = session_numbers(lines[col])
        elif col in lines.columns:
            df[col] = lines[col].to_numpy(dtype="float64")
        else:
            df[col] = 0.0
    return df


def session_numbers(sessions: pd.Series) -> np.ndarray:
    """Session dates (naive, NaT where none) as backtrader ``date2num`` floats (NaN where none)."""
    dates = pd.DatetimeIndex(sessions.to_numpy())
    seen = ~dates.isna()
    out = np.full(len(dates), np.nan)
    if seen.any():
        out[seen] = date2num(dates[seen])
    return out


def date2num(index: pd.DatetimeIndex) -> list[float]:
    """backtrader's ``date2num`` (days since 0001-01-01, plus 1) for a naive UTC index, vectorised.

    Computed in the same order of float operations as ``backtrader.date2num``, so
    the values are bit-identical (a test checks it).
    """
    us = index.as_unit("us").asi8
    days, rem = np.divmod(us, 86_400_000_000)
    ordinal = (days + 719_163).astype("float64")  # 1970-01-01 has ordinal 719163
    hour, rem = np.divmod(rem, 3_600_000_000)
    minute, rem = np.divmod(rem, 60_000_000)
    second, micro = np.divmod(rem, 1_000_000)
    frac = hour / 24.0 + minute / 1440.0 + second / 86400.0 + micro / 86400000000.0
    return (ordinal + frac).tolist()


class ArrayCryptoData(bt.feed.DataBase):
    """The same lines as ``IndexCryptoData``, loaded from plain arrays instead of a DataFrame.

    ``PandasData`` reads every cell through pandas indexing, about two thirds of a
    backtest's time; this feed reads pre-built rows and gives identical bars
    (a test runs both and compares every trade and equity value).
    """

    lines = EXTRA_LINES
    params = (("frame", None),)  # the frame ``feed_frame`` builds
    #: the index's full session history and the aligned bars behind the lines (set by ``riskon.bt.IndexCryptoFeed``;
    #: None on the feeds riskon's own runs build, whose rule events are already in the ``event`` lines)
    sessions: pd.DataFrame | None = None
    aligned: pd.DataFrame | None = None

    def start(self) -> None:
        """Turn the frame into rows of floats once."""
        super().start()
        frame = self.p.frame
        stamps = date2num(frame.index)
        cols = [frame[c].to_numpy(dtype="float64").tolist() for c in ("open", "high", "low", "close", "volume")]
        extra = [frame[c].to_numpy(dtype="float64").tolist() for c in EXTRA_LINES]
        self._rows = list(zip(stamps, *cols, *extra, strict=True))
        self._names = ("datetime", "open", "high", "low", "close", "volume", *EXTRA_LINES)
        self._targets = [getattr(self.lines, n) for n in self._names]
        self._i = 0

    def preload(self) -> None:
        """Fill every line's buffer in one step: what ``load()`` bar by bar would leave behind.

        Valid because this feed has no filters, no input time zone and no date bounds;
        otherwise backtrader's own bar-by-bar preload runs.
        """
        if self._filters or self._ffilters or self._tzinput or self.p.fromdate or self.p.todate:
            return super().preload()
        columns = list(zip(*self._rows, strict=True)) if self._rows else [()] * len(self._names)
        for line, values in zip(self._targets, columns, strict=True):
            line.array.extend(values)
        self.lines.openinterest.array.extend([0.0] * len(self._rows))
        self._i = len(self._rows)
        self._last()
        self.home()

    _TICKS = ("open", "high", "low", "close", "volume")

    def _tick_nullify(self) -> None:
        # only the OHLCV ticks are read (by the broker); backtrader resets every line's tick
        self.tick_open = self.tick_high = self.tick_low = self.tick_close = self.tick_volume = None
        self.tick_last = None

    def _tick_fill(self, force: bool = False) -> None:
        if force or self.tick_close is None:
            ln = self.lines
            self.tick_open, self.tick_high, self.tick_low = ln.open[0], ln.high[0], ln.low[0]
            self.tick_close, self.tick_volume = ln.close[0], ln.volume[0]
            self.tick_last = ln.close[0]

    def _load(self) -> bool:
        if self._i >= len(self._rows):
            return False
        row = self._rows[self._i]
        self._i += 1
        for line, value in zip(self._targets, row, strict=True):
            line[0] = value
        self.lines.openinterest[0] = 0.0
        return True


def make_feed(prices: pd.DataFrame, lines: pd.DataFrame, name: str = "asset", pandas: bool = False):
    """A feed of a coin's prices plus the index lines and rule events (array-backed unless ``pandas``)."""
    frame = feed_frame(prices, lines)
    if pandas:
        return IndexCryptoData(dataname=frame, name=name)
    return ArrayCryptoData(frame=frame, name=name)
