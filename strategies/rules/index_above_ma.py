"""``index_above_ma`` (filter): the index closes above its moving average.

In market terms: only take signals while small caps are in an uptrend — the
last visible index close is above the simple average of the last ``window``
session closes (200 by default, the classic trend line).
"""

from __future__ import annotations

import pandas as pd

from strategies.indicators import sma
from strategies.params import Param
from strategies.rules import Rule


class IndexAboveMa(Rule):
    """State: index close > SMA(index close, ``window`` sessions)."""

    name = "index_above_ma"
    kind = "filter"
    params = {"window": Param(200, int, "index sessions", 2, 2520, sweep=(50, 250, 50))}

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        """``signal`` True on sessions closing above their trailing average."""
        close = sessions["idx_close"]
        return pd.DataFrame({"signal": (close > sma(close, self.values["window"])).to_numpy()}, index=sessions.index)
