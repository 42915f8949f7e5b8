"""``breakout_retest``: resistance turned support — break a record, retest it, then push higher.

In market terms: the index closes above its prior all-time high (the broken
level L); within ``max_days`` sessions it pulls back to within ``retest_pct``
above L without closing below L; the signal fires on the first later session
that closes higher than the previous session. A close below L voids the setup.
This is the pattern the seed article describes for late 2020.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategies.indicators import prior_high
from strategies.params import Param
from strategies.rules import Rule


class BreakoutRetest(Rule):
    """Break of the prior ATH, a pullback to within ``retest_pct`` of it, then a higher close."""

    name = "breakout_retest"
    level = True
    params = {
        "retest_pct": Param(
            0.02, float, "fraction above the broken level that counts as a retest", 0.0, 0.2, sweep=(0.005, 0.05, 0.005)
        ),  # fmt: skip
        "max_days": Param(40, int, "index sessions from the break to the higher close", 2, 500, sweep=(10, 120, 10)),
    }

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        """``signal`` on the confirming higher close; ``level`` = the broken all-time high L."""
        close = sessions["idx_close"].to_numpy(dtype="float64")
        n = len(close)
        prior = prior_high(close)
        with np.errstate(invalid="ignore"):
            brk = close > prior
        pct, horizon = self.values["retest_pct"], self.values["max_days"]
        signal = np.zeros(n, dtype=bool)
        level = np.full(n, np.nan)
        # one setup at a time: a new break while a setup is open restarts it at the new level
        state, lvl, start, retested = "idle", np.nan, -1, False
        for t in range(n):
            if brk[t]:
                state, lvl, start, retested = "armed", prior[t], t, False
                continue
            if state != "armed":
                continue
            if t - start >= horizon or close[t] < lvl:
                state = "idle"
                continue
            if retested and close[t] > close[t - 1]:
                signal[t], level[t] = True, lvl
                state = "idle"
                continue
            if close[t] <= lvl * (1.0 + pct):
                retested = True
        return pd.DataFrame({"signal": signal, "level": level}, index=sessions.index)
