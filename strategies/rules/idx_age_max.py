"""``idx_age_max`` (filter): act only on fresh index data.

In market terms: a Monday-morning decision on Friday's close is stale; this
filter passes only bars whose visible index close is at most ``max_days`` old
(``idx_age``: days from the index close to the bar's close — 0.125 on a
weekday's daily bar, 2.125 on Sunday's).
"""

from __future__ import annotations

import pandas as pd

from strategies.params import Param
from strategies.rules import Rule


class IdxAgeMax(Rule):
    """State: ``idx_age`` ≤ ``max_days``."""

    name = "idx_age_max"
    kind = "filter"
    on = "asset"
    params = {"max_days": Param(1.0, float, "days", 0.0, 30.0, sweep=(0.5, 3.5, 1.0))}

    def compute(self, bars: pd.DataFrame) -> pd.DataFrame:
        """``signal`` True where the visible index close is recent enough."""
        return pd.DataFrame({"signal": (bars["idx_age"] <= self.values["max_days"]).to_numpy()}, index=bars.index)
