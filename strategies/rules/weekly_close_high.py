"""``weekly_close_high``: a week closes above every earlier weekly close.

In market terms: the index sets a record *weekly* close — read only at the
week's last session (Friday, or Thursday before Good Friday), so the intra-week
noise that makes daily records flicker is ignored. Never built with
``resample('W')`` plus forward fill, which would leak Friday into Monday.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategies.params import Param
from strategies.rules import Rule


class WeeklyCloseHigh(Rule):
    """A week-ending session whose close beats all earlier week-ending closes by ``threshold``."""

    name = "weekly_close_high"
    level = True
    params = {
        "threshold": Param(
            0.0, float, "fraction above the prior weekly-close record", 0.0, 0.5, sweep=(0.0, 0.02, 0.005)
        ),
    }

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        """``signal`` on record weekly closes; ``level`` = the prior weekly-close record times the threshold."""
        week_end = sessions["idx_week_end"].to_numpy(dtype=bool)
        close = sessions["idx_close"].to_numpy(dtype="float64")
        prior_at_end = np.full(len(close), np.nan)  # the record among earlier week-ending closes
        best = np.nan
        for i in np.flatnonzero(week_end):
            prior_at_end[i] = best
            best = close[i] if np.isnan(best) else max(best, close[i])
        level = prior_at_end * (1.0 + self.values["threshold"])
        with np.errstate(invalid="ignore"):
            signal = week_end & (close > level)
        return pd.DataFrame({"signal": signal, "level": level}, index=sessions.index)
