"""The ``[walkforward]`` table and the windows it cuts: anchored or rolling train windows, each followed by
its test window, in calendar days on the bars' open dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from riskon.config import ConfigError
from riskon.sweeps.spec import parse_sweep
from strategies.params import Param, check_params

#: Metrics computable from daily returns alone: the objectives a walk-forward can select on.
RETURN_METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar")

WALKFORWARD_KEYS = {
    "mode": Param("anchored", str, "", choices=("anchored", "rolling")),
    "train_days": Param(None, int, "calendar days per train window", 2, 36500),
    "test_days": Param(None, int, "calendar days per test window", 2, 36500),
    "step_days": Param(None, int, "calendar days between windows (default test_days)", 1, 36500, nullable=True),
    "start": Param(None, str, "first train day YYYY-MM-DD (default the first bar)", nullable=True),
}
_DAY = pd.Timedelta(days=1)
#: Test days a partial last window needs: a window is traded from its first bar to a sale at its last close.
MIN_PARTIAL_DAYS = 2


@dataclass(frozen=True)
class WalkForwardSpec:
    """A validated ``[walkforward]`` table plus the sweep objective it selects on."""

    mode: str
    train_days: int
    test_days: int
    step_days: int
    start: str | None
    objective: str
    direction: str


@dataclass(frozen=True)
class Window:
    """One walk-forward step: train days and the test days right after them (bar open dates, inclusive).

    ``partial``: the last test window, cut short by the end of the data (fewer than ``test_days``).
    """

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    partial: bool = False


# -- config ---------------------------------------------------------------------------------
def parse_walkforward(raw: dict, where: str = "config") -> WalkForwardSpec:
    """Validate the ``[walkforward]`` table of a raw config (which must also hold a ``[sweep]`` grid)."""
    section = raw.get("walkforward")
    if section is None:
        raise ConfigError(f"{where}: no [walkforward] table; add one with train_days and test_days")
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [walkforward] must be a table (with train_days and test_days), got {section!r}")
    try:
        opts = check_params("[walkforward]", WALKFORWARD_KEYS, dict(section))
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    if opts["step_days"] is None:
        opts["step_days"] = opts["test_days"]
    if opts["step_days"] < opts["test_days"]:
        raise ConfigError(
            f"{where}: [walkforward] step_days = {opts['step_days']} is shorter than test_days = "
            f"{opts['test_days']}; test windows would overlap (use step_days >= test_days)"
        )
    start = opts["start"]
    if start is not None:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", start):
            raise ConfigError(f"{where}: [walkforward] start = {start!r} is not a date; write YYYY-MM-DD")
        try:
            pd.Timestamp(start)
        except ValueError:
            raise ConfigError(f"{where}: [walkforward] start = {start!r} is not a valid date") from None
    sweep = parse_sweep(raw, where)
    if sweep.method != "grid":
        raise ConfigError(
            f"{where}: [walkforward] needs [sweep] method = 'grid' (every combination is scored on every train "
            f"window); got method = {sweep.method!r}"
        )
    if sweep.objective not in RETURN_METRICS:
        raise ConfigError(
            f"{where}: [walkforward] selects on [sweep] objective = {sweep.objective!r}, which daily returns alone "
            f"do not give; use one of {', '.join(RETURN_METRICS)}"
        )
    return WalkForwardSpec(objective=sweep.objective, direction=sweep.direction, **opts)


def make_windows(spec: WalkForwardSpec, first: pd.Timestamp, last: pd.Timestamp, where: str = "config") -> list[Window]:
    """The train/test windows that fit between the first and last bar (dates of daily bars, inclusive).

    Anchored: train ``[start, start + train_days - 1 + k * step_days]``; rolling: train
    ``[start + k * step_days, ... + train_days - 1]``. The test window is the
    ``test_days`` right after the train window. When the data ends inside a test
    window, that window is kept up to the last bar and marked ``partial`` (the most
    recent stretch is never dropped); it needs at least ``MIN_PARTIAL_DAYS`` test days.
    """
    start = pd.Timestamp(spec.start, tz=first.tz) if spec.start else first
    if start < first or start > last:
        raise ConfigError(
            f"{where}: [walkforward] start = {spec.start} is outside the data ({first:%Y-%m-%d} .. {last:%Y-%m-%d})"
        )
    out = []
    k = 0
    while True:
        if spec.mode == "anchored":
            train_start = start
            train_end = start + (spec.train_days - 1 + k * spec.step_days) * _DAY
        else:
            train_start = start + k * spec.step_days * _DAY
            train_end = train_start + (spec.train_days - 1) * _DAY
        test_start, test_end = train_end + _DAY, train_end + spec.test_days * _DAY
        if test_end > last:
            if (last - test_start) / _DAY + 1 >= MIN_PARTIAL_DAYS:
                out.append(Window(train_start, train_end, test_start, last, partial=True))
            break
        out.append(Window(train_start, train_end, test_start, test_end))
        k += 1
    if not out:
        need = start + (spec.train_days + MIN_PARTIAL_DAYS - 1) * _DAY
        raise ConfigError(
            f"{where}: [walkforward] train_days = {spec.train_days} days from {start:%Y-%m-%d} and at least "
            f"{MIN_PARTIAL_DAYS} test days need data to {need:%Y-%m-%d}, but it ends {last:%Y-%m-%d}; shorten "
            "train_days or move start"
        )
    return out
