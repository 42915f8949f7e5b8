"""backtrader feeds that carry a crypto series together with the index lines.

The frame handed in is already aligned in pandas (backtrader's own multi-feed
synchronisation would repeat Friday's index bar on weekends). Bars are stamped
with their *open* time, so backtrader's dates are the bars' own dates.
"""

from __future__ import annotations

import pandas as pd

from feeds.btcompat import bt

#: The extra lines every riskon feed carries beside OHLCV.
EXTRA_LINES = ("idx_close", "idx_ath", "idx_age", "event", "event_level", "exit_signal", "t_days")


class IndexCryptoData(bt.feeds.PandasData):
    """A crypto OHLCV feed plus the index lines seen at each bar and the rule's events."""

    lines = EXTRA_LINES
    params = (
        ("datetime", None),  # the index holds the bar open time
        ("openinterest", None),  # crypto has none
        ("idx_close", -1),  # index close seen by the bar
        ("idx_ath", -1),  # index all-time high (full history) seen by the bar
        ("idx_age", -1),  # days from that index close to this bar's close
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
        elif col in lines.columns:
            df[col] = lines[col].to_numpy(dtype="float64")
        else:
            df[col] = 0.0
    return df


def make_feed(prices: pd.DataFrame, lines: pd.DataFrame, name: str = "asset") -> IndexCryptoData:
    """An ``IndexCryptoData`` feed: a coin's prices plus the index lines and rule events."""
    return IndexCryptoData(dataname=feed_frame(prices, lines), name=name)
