"""``asset_above_ma`` (filter): the traded asset closes above its own moving average.

In market terms: do not buy Bitcoin into its own downtrend — require the
asset's close to be above the simple average of its last ``window`` closes
(bars of the asset, i.e. calendar days for daily crypto).
"""

from __future__ import annotations

import pandas as pd

from strategies.indicators import sma
from strategies.params import Param
from strategies.rules import Rule


class AssetAboveMa(Rule):
    """State: asset close > SMA(asset close, ``window`` bars)."""

    name = "asset_above_ma"
    kind = "filter"
    on = "asset"
    params = {"window": Param(50, int, "bars of the traded asset", 2, 3650, sweep=(20, 200, 20))}

    def compute(self, bars: pd.DataFrame) -> pd.DataFrame:
        """``signal`` True on bars closing above their trailing average."""
        close = bars["close"]
        return pd.DataFrame({"signal": (close > sma(close, self.values["window"])).to_numpy()}, index=bars.index)
