"""No lookahead on the single-run path (DESIGN.md §8, §9): cut the RAW sources at a UTC instant t,
re-align, recompute and re-run; nothing already known before t may change.

The index keeps only the sessions whose close stamp is <= t, the crypto series only the bars whose
close (open + 1 day) is <= t. Everything the cut run produced — the sessions' rule output, each bar's
aligned index lines and signal events, the strategy's decisions and fills, the equity curve — must
equal the full-history run on the same bars. The last bar of a cut run cannot fill a decision, so a
decision on it is not compared. A deliberately peeking rule must be caught by the same helper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from feeds.align import align, session_frame
from feeds.loader import load
from feeds.sessions import session_closes
from strategies import rules
from strategies.backtest import BacktestResult, StrategyParams, backtest, check_accounting
from strategies.params import Param
from strategies.rules import Rule
from strategies.signals import bar_events

CUTS = [
    "2016-11-15T00:00Z",  # just after the 2016-11-14 session (the post-election break)
    "2018-01-10T12:00Z",  # mid-morning UTC, before that day's session closes
    "2020-11-16T21:30Z",  # half an hour after the 2020-11-16 close, before BTC's bar closes
    "2020-11-27T18:30Z",  # just after an early close (day after Thanksgiving, 13:00 New York)
    "2021-06-01T00:00Z",  # the Monday-Tuesday boundary after a long weekend (Memorial Day)
]
PARAMS = StrategyParams(trail=0.25, index_exit_dd=0.10, fee=0.001, slippage=0.0005, cash=100_000.0, max_hold_days=120.0)
CASES = {
    "days1": ({"confirm_days": 1}, 0.0),
    "weekly": ({"confirm": "weekly"}, 0.0),
    "weekly_lag5": ({"confirm": "weekly"}, 5.0),
    "days3_lag5": ({"confirm_days": 3}, 5.0),
}
SESSION_COLS = ("idx_close", "idx_ath", "idx_week_end", "idx_close_time", "signal", "level")
BAR_COLS = ("idx_close", "idx_ath", "idx_week_end", "idx_session", "idx_pos", "idx_age",
            "event", "event_level", "event_session")  # fmt: skip


@dataclass
class Run:
    sessions: pd.DataFrame
    bars: pd.DataFrame
    result: BacktestResult


def pipeline(index: pd.DataFrame, asset: pd.DataFrame, rule: Rule, lag: float, sessions=None) -> Run:
    """What ``riskon.runner.prepare`` + ``backtest`` do, from raw frames (``sessions``: session_frame(index))."""
    sessions = session_frame(index) if sessions is None else sessions
    rule_out = rule.compute(sessions)
    sessions = sessions.join(rule_out)
    bars = align(asset, sessions.drop(columns=["signal", "level"]), lag=lag)
    bars = bars.join(bar_events(bars, rule_out))
    result = backtest(bars, PARAMS)
    assert check_accounting(result) == []
    return Run(sessions, bars, result)


def cut_sources(index: pd.DataFrame, asset: pd.DataFrame, t: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The raw frames as they stood at instant ``t``: sessions closed by t, crypto bars closed by t."""
    dates = index.index.tz_convert(index.attrs.get("tz", "America/New_York")).tz_localize(None).normalize()
    closes = session_closes(dates)
    index_cut = index[np.asarray(closes <= t)].copy()
    asset_cut = asset[np.asarray(asset.index + pd.Timedelta(days=1) <= t)].copy()
    index_cut.attrs, asset_cut.attrs = dict(index.attrs), dict(asset.attrs)
    return index_cut, asset_cut


def _same(a, b) -> bool:
    """Exact equality that treats NaN/NaT as equal to themselves."""
    if pd.isna(a) and pd.isna(b):
        return True
    return bool(a == b)


def _column_diffs(what: str, full: pd.DataFrame, cut: pd.DataFrame, cols) -> list[str]:
    out = []
    for col in cols:
        a, b = full[col].to_numpy(), cut[col].to_numpy()
        bad = [i for i in range(len(b)) if not _same(a[i], b[i])]
        if bad:
            i = bad[0]
            out.append(f"{what} {col}: {len(bad)} differ, first at {cut.index[i]}: full {a[i]!r} vs cut {b[i]!r}")
    return out


def lookahead_diffs(full: Run, cut: Run, t: pd.Timestamp) -> list[str]:
    """Everything known before ``t`` that the cut run sees differently from the full run."""
    diffs: list[str] = []
    # sessions closed by t: the rule's output on them
    known = full.sessions[pd.DatetimeIndex(full.sessions["idx_close_time"]) <= t]
    if not known.index.equals(cut.sessions.index):
        return [f"cut sessions {len(cut.sessions)} != sessions closed by t {len(known)}"]
    diffs += _column_diffs("session", known, cut.sessions, SESSION_COLS)
    # crypto bars closed by t: what each bar saw, its events, and the equity
    n = len(cut.bars)
    if not full.bars.index[:n].equals(cut.bars.index) or (cut.bars.index + pd.Timedelta(days=1) > t).any():
        return [f"cut bars {cut.bars.index[0]}..{cut.bars.index[-1]} are not the full run's bars closed by t"]
    diffs += _column_diffs("bar", full.bars.iloc[:n], cut.bars, BAR_COLS)
    fe, ce = full.result.equity.to_numpy()[:n], cut.result.equity.to_numpy()
    bad = np.flatnonzero(~np.isclose(fe, ce, rtol=1e-12, atol=0))
    if len(bad):
        i = bad[0]
        diffs.append(f"equity: {len(bad)} bars differ, first {cut.bars.index[i]}: full {fe[i]!r} vs cut {ce[i]!r}")
    # decisions made before the cut's last bar (one on the last bar can never fill, so it is dropped there)
    last = cut.bars.index[-1]

    def decisions(run: Run) -> list[tuple]:
        tr = run.result.trades
        entries = [("buy", t_.decision_time, t_.signal_session) for t_ in tr.itertuples() if t_.decision_time < last]
        exits = [("sell", t_.exit_decision_time, t_.exit_reason) for t_ in tr.itertuples()
                 if not pd.isna(t_.exit_decision_time) and t_.exit_decision_time < last]  # fmt: skip
        return sorted(entries + exits, key=lambda d: (d[1], d[0]))

    fd, cd = decisions(full), decisions(cut)
    if fd != cd:
        diffs.append(f"decisions before {last}: full {fd} vs cut {cd}")
    # fills on the cut's bars follow from those decisions
    ff = full.result.fills
    ff = ff[ff["time"] <= last] if len(ff) else ff
    cf = cut.result.fills
    if len(ff) != len(cf):
        diffs.append(f"fills by {last}: full {len(ff)} vs cut {len(cf)}")
    elif len(ff):
        for col in ("time", "side"):
            if ff[col].tolist() != cf[col].tolist():
                diffs.append(f"fills {col}: full {ff[col].tolist()} vs cut {cf[col].tolist()}")
        for col in ("price", "size", "fee"):
            if not np.allclose(ff[col].to_numpy(), cf[col].to_numpy(), rtol=1e-12, atol=0):
                diffs.append(f"fills {col}: full {ff[col].tolist()} vs cut {cf[col].tolist()}")
    return diffs


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def raw(data_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The raw ^RUT and BTC-USD daily frames, as the loader hands them to a run."""
    return load("^RUT", "1d"), load("BTC-USD", "1d")


_FULL: dict[str, Run] = {}
_CUT: dict[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]] = {}


def cut_inputs(raw, cut: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(index, asset, sessions) as they stood at ``cut``, computed once per cut."""
    if cut not in _CUT:
        index_cut, asset_cut = cut_sources(*raw, pd.Timestamp(cut))
        _CUT[cut] = (index_cut, asset_cut, session_frame(index_cut))
    return _CUT[cut]


def full_run(raw, case: str) -> Run:
    if case not in _FULL:
        values, lag = CASES[case]
        _FULL[case] = pipeline(*raw, rules.make("ath_confirmed", **values), lag)
    return _FULL[case]


# ------------------------------------------------------------------------------------------ tests
def test_pipeline_is_the_run_path(raw):
    """The frames built here are the ones ``riskon run`` builds, so the check covers the real path."""
    from riskon.config import parse
    from riskon.runner import prepare

    values, lag = CASES["weekly_lag5"]
    cfg = parse({"data": {"publication_lag_hours": lag}, "strategy": {"params": values}})
    bars = prepare(cfg)[1]
    mine = full_run(raw, "weekly_lag5").bars
    assert bars.index.equals(mine.index)
    assert _column_diffs("bar", bars, mine, ("open", "high", "low", "close", *BAR_COLS)) == []


def test_cut_keeps_exactly_what_was_closed_by_t(raw):
    index, asset = raw
    t = pd.Timestamp("2020-11-16T21:30Z")
    index_cut, asset_cut = cut_sources(index, asset, t)
    sessions = session_frame(index_cut)
    assert sessions.index[-1] == pd.Timestamp("2020-11-16")  # closed 21:00 UTC
    assert asset_cut.index[-1] == pd.Timestamp("2020-11-15", tz="UTC")  # 11-16's bar closes at midnight
    t = pd.Timestamp("2020-11-27T18:30Z")
    index_cut, asset_cut = cut_sources(index, asset, t)
    assert session_frame(index_cut).index[-1] == pd.Timestamp("2020-11-27")  # early close 18:00 UTC
    assert asset_cut.index[-1] == pd.Timestamp("2020-11-26", tz="UTC")


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("case", list(CASES))
def test_no_lookahead(raw, case, cut):
    full = full_run(raw, case)
    t = pd.Timestamp(cut)
    values, lag = CASES[case]
    index_cut, asset_cut, sessions = cut_inputs(raw, cut)
    cut_run = pipeline(index_cut, asset_cut, rules.make("ath_confirmed", **values), lag, sessions)
    assert lookahead_diffs(full, cut_run, t) == []


def test_cases_are_not_vacuous(raw):
    """The comparison has something to compare: signals and trades on both sides of the cuts."""
    for case in CASES:
        full = full_run(raw, case)
        trades = full.result.trades
        assert full.bars["event"].sum() >= 10, case
        assert len(trades) >= 5, case
        for cut in CUTS[1:]:
            t = pd.Timestamp(cut)
            assert (trades["decision_time"] < t).any(), (case, cut)


# ------------------------------------------------------------------------------------------ a planted bug
class PeekTomorrow(Rule):
    """A new closing high that *tomorrow's* close confirms: a lookahead bug on purpose."""

    name = "peek_tomorrow"
    params = {"threshold": Param(0.0, float, "fraction above the prior high", 0.0, 0.5)}

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        close = sessions["idx_close"]
        level = close.cummax().shift(1) * (1.0 + self.values["threshold"])
        signal = (close > level) & (close.shift(-1) > close)  # tomorrow's close
        return pd.DataFrame({"signal": signal.to_numpy(dtype=bool), "level": level.where(signal)})


def test_helper_catches_a_peeking_rule_and_clears_the_real_one(raw):
    index, asset = raw
    peek, honest = PeekTomorrow(), rules.make("ath_confirmed", confirm_days=2)
    full_peek, full_honest = pipeline(index, asset, peek, 0.0), pipeline(index, asset, honest, 0.0)
    # cut just after sessions on which the peeking rule fired (inside BTC's history)
    fired = full_peek.sessions[full_peek.sessions["signal"]]
    fired = fired[fired.index >= pd.Timestamp("2016-01-01")]
    assert len(fired) >= 3
    caught = 0
    for stamp in pd.DatetimeIndex(fired["idx_close_time"])[[0, len(fired) // 2, -2]]:
        # half past midnight UTC: the crypto bar of the signal day has closed, the next session has not
        t = stamp.normalize() + pd.Timedelta(days=1, minutes=30)
        index_cut, asset_cut = cut_sources(index, asset, t)
        diffs = lookahead_diffs(full_peek, pipeline(index_cut, asset_cut, peek, 0.0), t)
        caught += bool(diffs)
        assert any(d.startswith("session signal") for d in diffs), diffs
        assert any(d.startswith("bar event:") for d in diffs), diffs
        assert lookahead_diffs(full_honest, pipeline(index_cut, asset_cut, honest, 0.0), t) == []
    assert caught == 3
