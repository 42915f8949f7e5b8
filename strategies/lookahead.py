"""The lookahead check: cut the raw sources at UTC instants, re-align, recompute, compare.

A rule peeks at the future exactly when some signal it gave before an instant
t changes once the data after t is removed. For each cut t this module keeps
only the index sessions whose close stamp is at or before t and the asset bars
that closed by t, rebuilds sessions, alignment and the rule's output from those
raw rows, and compares every earlier signal (and, on a sample of cuts, every
earlier strategy decision) with the full-history run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from feeds.align import align, session_frame
from feeds.frame import timeframe_delta
from strategies import compose, rules
from strategies.backtest import StrategyParams, backtest


@dataclass(frozen=True)
class Difference:
    """One signal or decision that changed when the future was cut away."""

    rule: str
    cut: pd.Timestamp
    when: pd.Timestamp
    what: str

    def __str__(self) -> str:
        return (
            f"{self.rule}: {self.what} on {self.when:%Y-%m-%d %H:%M} changes "
            f"when the data is cut at {self.cut:%Y-%m-%d %H:%M} UTC"
        )


def _node(rule) -> compose.Node:
    if isinstance(rule, rules.Rule):
        return compose.Leaf(rule)
    if isinstance(rule, compose.Node):
        return rule
    return compose.build(rule)


def _evaluate(node: compose.Node, index: pd.DataFrame, asset: pd.DataFrame, lag: float):
    sessions = session_frame(index)
    bars = align(asset, sessions, lag=lag)
    sig = node.evaluate(sessions, bars)
    per_session = {}
    for leaf in node.leaves():
        if leaf.rule.on == "index":
            per_session[repr(leaf.rule)] = leaf.session_output(sessions)
    return sessions, bars, sig, per_session


def cut_sources(index: pd.DataFrame, asset: pd.DataFrame, t: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The raw rows known at instant ``t``: sessions closed by t, asset bars closed by t."""
    # the market calendar loads only when sessions are stamped
    from feeds.sessions import session_closes

    tz = index.attrs.get("tz", "America/New_York")
    closes = session_closes(index.index.tz_convert(tz).tz_localize(None).normalize())
    idx = index[np.asarray(closes <= t)]
    bar = timeframe_delta(asset.attrs.get("timeframe", "1d"))
    ast = asset[asset.index + bar <= t]
    idx.attrs, ast.attrs = dict(index.attrs), dict(asset.attrs)
    return idx, ast


def default_cuts(sessions: pd.DataFrame, signal_sessions: pd.DatetimeIndex, n_signal: int, n_random: int, seed: int):
    """Cut instants: around sampled signals (just before, at, and after the close) plus random instants."""
    closes = pd.DatetimeIndex(sessions["idx_close_time"])
    pos = sessions.index.get_indexer(signal_sessions)
    pos = pos[pos >= 0]
    rng = np.random.default_rng(seed)
    if len(pos) > n_signal:
        pos = np.sort(rng.choice(pos, n_signal, replace=False))
    cuts = []
    for p in pos:
        c = closes[p]
        cuts += [c - pd.Timedelta(microseconds=1), c, c + pd.Timedelta(hours=5), c + pd.Timedelta(days=3)]
    lo, hi = closes[0].value, closes[-1].value
    cuts += [pd.Timestamp(int(v), tz="UTC") for v in rng.integers(lo, hi, n_random)]
    return sorted(set(cuts))


def check(
    rule,
    index: pd.DataFrame,
    asset: pd.DataFrame,
    cuts: list[pd.Timestamp] | None = None,
    lag: float = 0.0,
    n_signal: int = 40,
    n_random: int = 20,
    n_backtest: int = 6,
    seed: int = 0,
    start: str | None = "2014-01-01",
) -> list[Difference]:
    """Every difference the cuts reveal for ``rule`` (a name, spec, Rule or composed node); empty means clean.

    ``asset`` should start at ``start`` (a long asset history only slows the check).
    """
    node = _node(rule)
    name = compose.describe(node)
    sessions, bars, full, full_sessions = _evaluate(node, index, asset, lag)
    if cuts is None:
        sig_sessions = pd.DatetimeIndex([])
        for out in full_sessions.values():
            sig_sessions = sig_sessions.union(out.index[out["signal"].to_numpy(dtype=bool)])
        if start is not None:
            sig_sessions = sig_sessions[sig_sessions >= pd.Timestamp(start)]
        sig_bars = bars.index[full.on]
        extra = pd.DatetimeIndex(sig_bars.tz_convert(None).normalize()).intersection(sessions.index)
        cuts = default_cuts(sessions, sig_sessions.union(extra), n_signal, n_random, seed)
    diffs: list[Difference] = []
    bt_cuts = set(np.random.default_rng(seed + 1).choice(len(cuts), min(n_backtest, len(cuts)), replace=False).tolist())
    full_decisions = _decisions(bars, full) if bt_cuts else None
    for k, t in enumerate(cuts):
        idx_c, ast_c = cut_sources(index, asset, t)
        if len(idx_c) < 2 or len(ast_c) < 2:
            continue
        _, bars_c, part, part_sessions = _evaluate(node, idx_c, ast_c, lag)
        for key, out in part_sessions.items():
            ref = full_sessions[key].loc[out.index]
            for col in out.columns:
                a, b = out[col].to_numpy(), ref[col].to_numpy()
                same = (a == b) | (pd.isna(a) & pd.isna(b)) if a.dtype != bool else a == b
                if not np.all(same):
                    j = int(np.flatnonzero(~np.asarray(same))[0])
                    diffs.append(Difference(key, t, out.index[j], f"{col} of session"))
        n = len(bars_c)
        for col, a, b in (("signal", part.on, full.on[:n]), ("level", part.level, full.level[:n])):
            same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype != bool else a == b
            if not np.all(same):
                j = int(np.flatnonzero(~same)[0])
                diffs.append(Difference(name, t, bars_c.index[j], f"bar {col}"))
        if k in bt_cuts:
            dec = _decisions(bars_c, part)
            ref = [d for d in full_decisions if d[0] < n - 1]
            mine = [d for d in dec if d[0] < n - 1]
            if mine != ref:
                bad = next((m for m, r in zip(mine, ref, strict=False) if m != r), (mine or ref)[0])
                diffs.append(Difference(name, t, bars_c.index[bad[0]], f"{bad[1]} decision"))
    return diffs


def _decisions(bars: pd.DataFrame, sig: compose.BarSignal) -> list[tuple[int, str]]:
    b = bars.join(sig.frame(bars.index)).assign(exit_signal=False)
    b.attrs = dict(bars.attrs)
    res = backtest(b, StrategyParams(trail=0.15, max_hold_days=60, fee=0.001), assets={"asset": b})
    out = [(int(row.bar), "entry") for row in res.fills.itertuples() if row.side == "buy"]
    return sorted({(f[0] - 1, f[1]) for f in out})


def check_all(
    names: list[str] | None, index: pd.DataFrame, asset: pd.DataFrame, **kwargs
) -> dict[str, list[Difference]]:
    """The check for each named rule (default: every registered rule) with its default parameters."""
    out = {}
    for name in names or rules.available():
        rule = rules.make(name)
        out[name] = check(rule, index, asset, **kwargs)
    return out


# -- every session: the exhaustive check, and its fast form run before every run ---------------------------------
#: Rows drawn at random (besides the signal and change rows) by the fast form
FAST_SAMPLE = 100


@dataclass(frozen=True)
class Peek:
    """The first row whose output, computed on the data known at that row, differs from the full history's."""

    rule: str
    when: pd.Timestamp
    column: str

    def __str__(self) -> str:
        return (
            f"rule {self.rule} reads the future: its {self.column} on {self.when:%Y-%m-%d} changes when the data "
            "after that date is removed"
        )


def rule_frame(rule: rules.Rule, sessions: pd.DataFrame, bars: pd.DataFrame | None) -> pd.DataFrame:
    """What ``rule.compute`` reads: the index sessions (``on = "index"``) or the aligned asset bars."""
    if rule.on == "index":
        return sessions
    if bars is None:
        raise ValueError(f"rule {rule!r} reads the asset's bars: pass the aligned bars")
    return bars


def first_peek(rule: rules.Rule, frame: pd.DataFrame, rows: np.ndarray | None = None) -> Peek | None:
    """The first of ``rows`` (default: every row) where the rule's output on ``frame[: row + 1]`` differs at that row.

    ``frame`` is the full history the rule reads (``rule_frame``). Cutting it by position is cutting the raw
    sources at that row's close: for sessions, ``session_frame`` is cumulative (the running high, the
    calendar's week ends and close stamps of a prefix of the index are the prefix of its frame), and for bars
    ``feeds.align.align`` is as-of (a bar sees only sessions closed by its own close); both are proven on the
    raw files by tests/strategies/test_lookahead.py. Row t of the cut output is what a live run would have
    seen at t; when it equals the full history's row t for every t, the rule never used the future.
    """
    full = rule.compute(frame)
    cols = [c for c in ("signal", "level") if c in full.columns]
    want = {c: full[c].to_numpy() for c in cols}
    todo = np.arange(len(frame)) if rows is None else np.unique(np.asarray(rows, dtype=np.int64))
    for t in todo:
        part = rule.compute(frame.iloc[: t + 1])
        for c in cols:
            if c not in part.columns or len(part) != t + 1:
                return Peek(repr(rule), _date(frame.index[t]), c)
            a, b = part[c].to_numpy()[t], want[c][t]
            if not (a == b or (pd.isna(a) and pd.isna(b))):
                return Peek(repr(rule), _date(frame.index[t]), c)
    return None


def fast_rows(rule: rules.Rule, frame: pd.DataFrame, sample: int = FAST_SAMPLE, seed: int = 0) -> np.ndarray:
    """The rows the fast form cuts at: every signal, every change of the signal, and ``sample`` others (seeded).

    For a filter (a state) only the rows where it turns on or off count as its signals.
    The ``level`` is compared at those rows too; a level is read only where its signal fires, so a
    level that changes on rows without a signal (a running record) does not add rows.

    A peek that creates a signal or moves one shows at a signal row (the cut output lacks it there); one that
    only suppresses signals leaves no trace in the full output and is caught only if the sample hits it:
    ``riskon check lookahead`` (every row) catches it.
    """
    signal = rule.compute(frame)["signal"].to_numpy(dtype=bool)
    changed = np.r_[False, signal[1:] != signal[:-1]]
    picked = changed if rule.kind == "filter" else signal | changed  # a filter's True rows are states, not signals
    others = np.flatnonzero(~picked)
    rng = np.random.default_rng(seed)
    extra = rng.choice(others, min(sample, len(others)), replace=False) if len(others) else others
    return np.sort(np.concatenate([np.flatnonzero(picked), extra]))


def fast_check(rule: rules.Rule, frame: pd.DataFrame, sample: int = FAST_SAMPLE, seed: int = 0) -> Peek | None:
    """The fast form of ``first_peek``: only at ``fast_rows`` (run before every run and sweep, then cached)."""
    return first_peek(rule, frame, fast_rows(rule, frame, sample, seed))


def _date(stamp: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(stamp).tz_localize(None) if pd.Timestamp(stamp).tz is not None else pd.Timestamp(stamp)
