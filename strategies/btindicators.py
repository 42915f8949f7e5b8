"""Rule signals as backtrader indicators: any registered rule, on riskon's combined feed.

``RuleSignal(data, "n_day_high", window=252)`` and ``ConfirmedHigh(data, confirm_days=3)`` give,
bar by bar, exactly what the rule gives a ``riskon run``: the rule is computed on the index's full
session history the feed carries (``data.sessions``, from 1987 for the Russell 2000) and turned into
bar values by the same code (``strategies.compose``), so an all-time high is a true all-time high
even when the feed starts in 2020.

Lines:

- ``signal``: for an *event* rule (a breakout), 1.0 on the bar where a confirming session first
  becomes visible (Friday's signal is not repeated on the weekend bars that still see Friday); for a
  *filter* rule (a state such as ``index_above_ma``), 1.0 on every bar whose session satisfies it.
  0.0 otherwise.
- ``level``: the break level behind an event (NaN elsewhere, and for rules without a level).

No lookahead: a rule's output for a session uses only sessions up to it (every rule is checked),
and a bar reads only the latest session whose close it can see. The values are computed once,
when the indicator is created, from arrays that already obey that rule; ``next`` and ``once``
only copy them out, so a value never changes later in the run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from feeds.btcompat import bt
from strategies import compose, rules
from strategies.errors import RuleError


class RuleSignal(bt.Indicator):
    """The signal of any registered rule by name, with its parameters as keywords (see the module docstring)."""

    lines = ("signal", "level")
    plotinfo = {"subplot": True, "plotname": "rule signal"}

    def __init__(self, rule: str, **values: Any) -> None:
        self._setup(rule, values)

    def _setup(self, name: str, values: dict[str, Any]) -> None:
        data = self.data
        sessions, aligned = getattr(data, "sessions", None), getattr(data, "aligned", None)
        if sessions is None or aligned is None:
            raise RuleError(
                f"{type(self).__name__} needs riskon.bt.IndexCryptoFeed as its data (it carries the index's full "
                f"history), got {type(data).__name__}"
            )
        self.rule = rules.make(name, **values)
        out = compose.Leaf(self.rule).evaluate(sessions, aligned)
        self._on = out.on.astype("float64")
        self._level = np.asarray(out.level, dtype="float64")
        #: per bar: the index session behind each event (NaT elsewhere), as numpy datetime64
        self.event_sessions = out.session

    def next(self) -> None:
        """Copy out this bar's value (computed from what the bar can see)."""
        i = len(self) - 1
        self.lines.signal[0] = self._on[i]
        self.lines.level[0] = self._level[i]

    def once(self, start: int, end: int) -> None:
        """Copy out the values of bars ``start`` to ``end`` (backtrader's vectorised mode)."""
        signal, level = self.lines.signal.array, self.lines.level.array
        for i in range(start, end):
            signal[i] = self._on[i]
            level[i] = self._level[i]


class ConfirmedHigh(RuleSignal):
    """The seed's signal: a new all-time closing high of the index, held for ``confirm_days`` sessions.

    ``RuleSignal(data, "ath_confirmed", ...)`` with the seed's confirmation as the default.
    """

    params = (
        ("confirm_days", 3),  # index sessions the close must stay above the broken level, break day included
        ("threshold", 0.0),  # fraction above the prior all-time high that counts as a break
        ("confirm", "days"),  # "days", or "weekly": confirmed at the first week-ending close above the level
    )
    plotinfo = {"subplot": True, "plotname": "confirmed new high"}

    def __init__(self) -> None:
        p = self.p
        self._setup("ath_confirmed", {"confirm_days": p.confirm_days, "threshold": p.threshold, "confirm": p.confirm})
