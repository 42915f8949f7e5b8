"""backtrader feeds that carry a crypto series together with the index lines.

The frame handed in is already aligned in pandas (backtrader's own multi-feed
synchronisation would repeat Friday's index bar on weekends). Bars are stamped
with their *open* time, so backtrader's dates are the bars' own dates.
"""

from __future__ import annotations

import pandas as pd

from feeds.btcompat import bt

#: The extra lines every riskon feed carries beside OHLCV.
EXTRA_LINES = ("idx_close", "idx_ath", "idx_age", "event", "event_level", "t_days")


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
        ("t_days", -1),  # bar open time in days since 1970-01-01 (for calendar-day rules)
    )


def feed_frame(aligned: pd.DataFrame) -> pd.DataFrame:
    """The columns ``IndexCryptoData`` reads, on a tz-naive UTC index, as floats."""
    df = pd.DataFrame(index=aligned.index.tz_convert("UTC").tz_localize(None))
    for col in ("open", "high", "low", "close", "volume", *EXTRA_LINES):
        if col == "t_days":
            values = aligned.index.as_unit("us").asi8 / 86_400_000_000
        elif col == "event":
            values = aligned[col].to_numpy(dtype="float64")
        else:
            values = aligned[col].to_numpy(dtype="float64")
        df[col] = values
    df["volume"] = df["volume"].fillna(0.0)
    return df


def make_feed(aligned: pd.DataFrame, name: str = "asset") -> IndexCryptoData:
    """An ``IndexCryptoData`` feed over an aligned frame (with ``event``/``event_level`` columns)."""
    return IndexCryptoData(dataname=feed_frame(aligned), name=name)
