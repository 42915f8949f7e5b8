"""What the interactive run page marks on its panels: the exit trigger levels of every position and the
confirmation windows of every index break, derived from a run's bars and trades (nothing is re-simulated).

The trailing stop of ``strategies.fastsim`` (and its backtrader twin) trails the *position value*:
``value = sum(size_j * close_j) + proceeds of legs whose data ended``, its ``peak`` is the highest value at a
close since the entry fill bar (that bar's close included), and the position is sold at the next open when a
close has ``value < peak * (1 - trail)``. For one asset the value is ``size * close``, so the trigger is
exactly ``close < peak close since entry * (1 - trail)``: the level is drawn in price on the asset panel.
A basket's level lives on its value and is drawn on a position-value panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskon.runner import Result


def bar_length(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The run's bar length (the most common step between bar open times; one day for a single bar)."""
    if len(index) < 2:
        return pd.Timedelta(days=1)
    return pd.Series(index[1:] - index[:-1]).mode().iloc[0]


def _held_span(times: pd.DatetimeIndex, leg: pd.Series) -> tuple[int, int, int | None]:
    """Bars (first, last) at whose close the leg is held, and the bar its data-end sale happened (or None)."""
    first = int(times.get_indexer([leg["entry_time"]])[0])
    if bool(leg["open"]):
        return first, len(times) - 1, None
    if leg["exit_reason"] == "data_end":  # sold at that bar's close before the exit checks: not held there
        ended = int(times.get_indexer([leg["exit_time"]])[0])
        return first, ended - 1, ended
    return first, int(times.get_indexer([leg["exit_decision_time"]])[0]), None


def position_levels(result: Result) -> pd.DataFrame:
    """Per bar at whose close a position is held: its id, value, peak value and the exit trigger levels.

    Columns: ``position``, ``value`` (the legs at their closes plus data-ended proceeds), ``peak`` and
    ``trail_level`` (``peak * (1 - trail)``, NaN without a trailing stop) in value terms, and for a single
    asset ``trail_price`` (``trail_level / size``: peak close since entry times ``1 - trail``) and
    ``stop_price`` (entry fill price times ``1 - stop``). With ``[exits] intrabar`` the price levels are the
    stop order working *inside* each bar (set at the previous close), as backtrader places it.
    """
    p = result.backtest.params
    times = result.bars.index
    closes = {a: f["close"].to_numpy(dtype="float64") for a, f in result.assets.items()}
    trail = np.nan if p.trail is None else float(p.trail)
    rows = []
    for pos, legs in result.trades.groupby("position", sort=True):
        spans = {i: _held_span(times, leg) for i, leg in legs.iterrows()}
        start = min(s[0] for s in spans.values())
        end = max(s[1] for s in spans.values())
        if end < start:
            continue
        bars = np.arange(start, end + 1)
        value = np.zeros(len(bars))
        for i, (a, b, ended) in spans.items():
            leg = legs.loc[i]
            held = (bars >= a) & (bars <= b)
            value[held] += float(leg["size"]) * closes[leg["asset"]][bars[held]]
            if ended is not None:
                value[bars >= ended] += float(leg["size"]) * float(leg["exit_price"]) * (1.0 - p.fee)
        peak = np.maximum.accumulate(value)
        frame = pd.DataFrame(
            {"position": int(pos), "value": value, "peak": peak, "trail_level": peak * (1.0 - trail)},
            index=times[bars],
        )
        if len(result.assets) == 1:  # one asset, one leg: the value is size x close
            leg = legs.iloc[0]
            size = float(leg["size"])
            frame["trail_price"] = frame["trail_level"] / size
            frame["stop_price"] = np.nan if p.stop is None else float(leg["entry_price"]) * (1.0 - float(p.stop))
            if p.intrabar:  # the order working in bar t was set at the close of bar t - 1
                frame["trail_price"] = frame["trail_price"].shift(1)
                frame = frame.iloc[1:]
        rows.append(frame)
    cols = ["position", "value", "peak", "trail_level", "trail_price", "stop_price"]
    if not rows:
        return pd.DataFrame(columns=cols, index=times[:0])
    out = pd.concat(rows)
    return out.reindex(columns=cols)


def confirmation_windows(result: Result) -> pd.DataFrame:
    """One row per entry event of the run: its break session, signal session, break level and what followed.

    The *break session* is the first index session of the unbroken run of closes above the break level
    (``event_level``) that ends at the signal session (``event_session``): for ``ath_confirmed`` exactly the
    session that broke the record. Columns: ``bar`` (the bar whose close saw the signal), ``break_session``,
    ``signal_session``, ``level`` (NaN for rules without a level; then the break session is the signal
    session) and ``entered`` (a position took this signal).
    """
    bars = result.bars
    ev = bars[bars["event"].to_numpy(dtype=bool)]
    sessions = result.sessions
    close = sessions["idx_close"].to_numpy(dtype="float64")
    where = sessions.index.get_indexer(pd.DatetimeIndex(ev["event_session"]))
    tr = result.trades
    seen = {(pd.Timestamp(a), pd.Timestamp(b)) for a, b in zip(tr["signal_session"], tr["decision_time"], strict=True)}
    delay = int(result.backtest.params.signal_delay)
    times = bars.index
    rows = []
    for (t, row), s in zip(ev.iterrows(), where, strict=True):
        level = float(row["event_level"])
        b = s
        if s >= 0 and np.isfinite(level):
            while b > 0 and close[b - 1] > level:
                b -= 1
        at = times.get_loc(t) + delay
        decided = times[at] if at < len(times) else None
        rows.append(
            {
                "bar": t,
                "break_session": sessions.index[b] if s >= 0 else pd.NaT,
                "signal_session": row["event_session"],
                "level": level,
                "entered": (pd.Timestamp(row["event_session"]), decided) in seen,
            }
        )
    return pd.DataFrame(rows, columns=["bar", "break_session", "signal_session", "level", "entered"])
