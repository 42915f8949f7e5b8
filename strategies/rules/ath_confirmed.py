"""``ath_confirmed``: the index closes above its prior all-time high and stays there.

In market terms: the Russell 2000 breaks to a record close (optionally by a
margin) and holds above the broken level for ``confirm_days`` sessions, or
through the close of its week. The signal fires on the confirming session.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategies.indicators import prior_high
from strategies.params import Param
from strategies.rules import Rule


class AthConfirmed(Rule):
    """Confirmed new all-time closing high of the index (DESIGN.md §5)."""

    name = "ath_confirmed"
    level = True
    params = {
        "threshold": Param(0.0, float, "fraction above the prior high", 0.0, 0.5, sweep=(0.0, 0.03, 0.005)),
        "confirm_days": Param(1, int, "index sessions, break day included", 1, 60, sweep=(1, 10, 1)),
        "confirm": Param("days", str, "", choices=("days", "weekly")),
    }

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        """Per session: ``signal`` on confirming sessions, ``level`` = the confirmed break level B."""
        close = sessions["idx_close"].to_numpy(dtype="float64")
        n = len(close)
        prior = prior_high(close)
        level = prior * (1.0 + self.values["threshold"])
        with np.errstate(invalid="ignore"):
            brk = close > level  # NaN level (first session) compares False
        signal = np.zeros(n, dtype=bool)
        out_level = np.full(n, np.nan)
        if self.values["confirm"] == "weekly":
            week_end = sessions["idx_week_end"].to_numpy(dtype=bool)
            # the first week-ending session at or after each session
            nxt = np.full(n, -1)
            j = -1
            for i in range(n - 1, -1, -1):
                if week_end[i]:
                    j = i
                nxt[i] = j
            for b in np.flatnonzero(brk):
                s = nxt[b]
                if s >= 0 and (close[b : s + 1] > level[b]).all() and not signal[s]:
                    signal[s] = True
                    out_level[s] = level[b]  # the earliest break confirmed on s
        else:
            k = self.values["confirm_days"]
            if n >= k:
                window_min = (
                    pd.Series(close[::-1]).rolling(k, min_periods=k).min().to_numpy()[::-1]
                )  # min of close[b : b + k]
                ok = brk.copy()
                ok[: n - k + 1] &= window_min[: n - k + 1] > level[: n - k + 1]
                ok[n - k + 1 :] = False
                confirmed = np.flatnonzero(ok) + k - 1
                signal[confirmed] = True
                out_level[confirmed] = level[confirmed - k + 1]
        return pd.DataFrame({"signal": signal, "level": out_level}, index=sessions.index)
