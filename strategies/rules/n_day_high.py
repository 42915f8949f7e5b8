"""``n_day_high``: the index closes above its highest close of the previous N sessions.

In market terms: a breakout to a fresh N-session closing high (a 52-week high
with ``window = 252``) rather than to an all-time high, so the signal also
fires in markets still below their old record.
"""

from __future__ import annotations

import pandas as pd

from strategies.params import Param
from strategies.rules import Rule


class NDayHigh(Rule):
    """Close > the highest close of the ``window`` sessions before it."""

    name = "n_day_high"
    level = True
    params = {
        "window": Param(252, int, "index sessions", 2, 2520, sweep=(20, 260, 20)),
        "threshold": Param(0.0, float, "fraction above that high", 0.0, 0.5, sweep=(0.0, 0.02, 0.005)),
    }

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        """``signal`` on each session closing above the prior ``window``-session high; ``level`` = that high."""
        close = sessions["idx_close"]
        prior = close.shift(1).rolling(self.values["window"], min_periods=self.values["window"]).max()
        level = prior * (1.0 + self.values["threshold"])
        return pd.DataFrame({"signal": (close > level).to_numpy(), "level": level.to_numpy()}, index=sessions.index)
