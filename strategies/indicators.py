"""Small indicators rules share, computed from the past only.

They live apart from the registry (``strategies.rules``) so that a rule's code hash
(``strategies.codehash.rule_hash``) covers the helpers it uses and nothing else:
editing ``sma`` changes the identity of runs of rules that use it, not of the others.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sma(values: pd.Series, window: int) -> pd.Series:
    """Trailing simple moving average (NaN until ``window`` values exist): uses the past only."""
    return values.rolling(window, min_periods=window).mean()


def prior_high(close: np.ndarray) -> np.ndarray:
    """The highest close strictly before each row (NaN for the first): the level a new high must beat."""
    out = np.full(len(close), np.nan)
    if len(close) > 1:
        out[1:] = np.maximum.accumulate(close)[:-1]
    return out
