"""How much an entry buys: the sizing rules every engine shares (backtrader, the vectorised simulator, the null).

Kept free of backtrader so the fast engine's driver and workers never import it. The numba kernel
(``strategies.fastsim``) repeats ``basket_volatility`` operation for operation (it may call no other
module's code); the tests hold the two equal.

- ``fraction``: the entry's budget is ``fraction · equity`` at the decision close.
- ``vol_target``: the budget is ``min(vol_cap, vol_target / vol) · equity``, where ``vol`` is the annualised
  volatility of the equal-weight basket of the chosen coins (one coin: that coin) over the ``vol_lookback``
  bars up to and including the decision bar (``basket_volatility``). A chosen coin without a close
  ``vol_lookback`` bars back leaves the volatility unknown: the entry is skipped (and counted).
- ``notional``: the budget is ``min(notional, equity)``; an entry capped at the equity is counted.

The budget is split equally over the chosen coins; each leg buys ``budget / n / (price · (1 + fee)) ·
(1 − SIZE_HAIRCUT)`` units at its fill.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Size haircut so rounding can never make a full-equity buy exceed the cash.
SIZE_HAIRCUT = 1e-9
#: The sizing rules, in the fast kernel's code order (``SIZING.index(name)``).
SIZING = ("fraction", "vol_target", "notional")
#: Days per year that annualise a daily volatility (the 365-day calendar of the metrics and the cash rate).
VOL_DAYS = 365.0


def basket_volatility(closes: Sequence[Sequence[float]]) -> float:
    """Annualised volatility of an equal-weight basket from each coin's last ``L + 1`` closes (oldest first).

    Daily simple returns ``c_t / c_{t-1} - 1`` of each coin; the basket's return on a bar is their mean
    (coins summed in order, divided by their count); the volatility is the sample standard deviation
    (``ddof = 1``, two passes: mean, then squared deviations) of the ``L`` basket returns times
    ``sqrt(365)``. The fast kernel computes exactly these operations in this order.
    """
    n = len(closes)
    lookback = len(closes[0]) - 1
    basket = []
    for t in range(1, lookback + 1):
        s = 0.0
        for c in closes:
            s += c[t] / c[t - 1] - 1.0
        basket.append(s / n)
    mean = 0.0
    for b in basket:
        mean += b
    mean /= lookback
    var = 0.0
    for b in basket:
        var += (b - mean) * (b - mean)
    var /= lookback - 1
    return math.sqrt(var) * math.sqrt(VOL_DAYS)


def vol_fraction(vol: float, target: float, cap: float) -> float:
    """The share of equity a volatility-targeted entry buys: ``min(cap, target / vol)``; ``cap`` when vol is 0."""
    if vol > 0.0:
        f = target / vol
        return cap if f > cap else f
    return cap


def sizing_notes(
    sizing: str, skipped: int, capped: int, entries: int, lookback: int, notional: float | None
) -> list[str]:
    """The run summary's lines about sizing: entries skipped for lack of history, entries capped at the equity."""
    out = []
    if sizing == "vol_target" and skipped:
        out.append(
            f"{skipped} entr{'y' if skipped == 1 else 'ies'} skipped: vol_target sizing needs a close {lookback} bars "
            "before the decision for every chosen coin (its volatility is unknown before that)"
        )
    if sizing == "notional" and capped:
        out.append(
            f"{capped} of {entries} entries capped at the equity: notional {notional:,.2f} exceeded the equity at the "
            "decision, so they bought with all of it (never on margin)"
        )
    return out


__all__ = ["SIZE_HAIRCUT", "SIZING", "VOL_DAYS", "basket_volatility", "sizing_notes", "vol_fraction"]
