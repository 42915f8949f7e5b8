"""The state of a strategy's signal on the latest cached data, or as of a past date.

"Is it on right now?" answered with the code a backtest uses, never a second
implementation: the data goes through ``feeds.align`` (``session_frame`` and
``align`` via ``riskon.runner.build_bars``), the entry expression through
``strategies.compose`` and the rules in ``strategies/rules/``, and the
position through the backtest itself (``riskon.runner.run_prepared``), cut at the
as-of bar: crypto bars after it are dropped, and every figure about the index
is computed on the sessions that bar sees (closed and published by its close).

Confirmation progress is asked of the rule: a rule with a ``confirm_days``
parameter is evaluated again with shorter windows ``j = k-1 .. 1``; if the
``j``-session version confirms on the last session, a break ``j`` sessions ago
has held above its level so far ("j of k sessions confirmed").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from feeds.cache import Cache
from feeds.deadline import DEFAULT_DEADLINE
from feeds.errors import DataError
from feeds.frame import timeframe_delta
from feeds.loader import fetch
from riskon.config import ConfigError, RunConfig, entry_spec
from riskon.metrics import price_text
from riskon.runner import Result, prepare, run_prepared, strategy_params
from strategies import compose, rules
from strategies.indicators import prior_high

#: ``idx_age`` (days) above which the index data is flagged as stale: a long weekend is ~3.1 days.
STALE_DAYS = 4.0


def utc_now() -> pd.Timestamp:
    """The current time in UTC: the clock ``status`` measures the data's age against (tests pass their own)."""
    return pd.Timestamp.now(tz="UTC")


@dataclass(frozen=True)
class Pending:
    """A break that has held above its level so far but is not confirmed yet."""

    break_session: pd.Timestamp
    level: float
    done: int  # sessions above the level so far, the break day included
    needed: int | None  # sessions required (None: weekly, confirmed by the week's last close)

    def text(self) -> str:
        """E.g. ``break on 2021-01-06 above 2,000.00: 2 of 3 sessions confirmed``."""
        head = f"break on {self.break_session:%Y-%m-%d} above {self.level:,.2f}: "
        if self.needed is None:
            return head + f"{self.done} session(s) above; confirms if the week's last session closes above"
        return head + f"{self.done} of {self.needed} sessions confirmed"


@dataclass(frozen=True)
class LeafState:
    """One rule of the entry expression on the as-of bar."""

    rule: str  # the rule with its parameters, e.g. ath_confirmed(threshold=0.0, confirm_days=3, confirm='days')
    kind: str  # event or filter
    on: str  # index or asset
    now: bool  # event: fired on the last session (index) / bar (asset); filter: its state on the as-of bar
    last_true: pd.Timestamp | None  # the last session (index) or bar date (asset) where the rule was true
    pending: Pending | None = None
    confirm: str = ""  # what the rule's confirmation means, e.g. "3 sessions"; empty when it has none


@dataclass(frozen=True)
class Holding:
    """One open leg at the as-of bar's close, marked at that close (no exit fee)."""

    asset: str
    signal_session: pd.Timestamp | None
    entry_time: pd.Timestamp
    entry_price: float
    size: float
    last_close: float
    unrealised: float  # net of the entry fee
    ret: float  # unrealised / (size * entry price + entry fee)


@dataclass
class Status:
    """The signal's state as of one bar, and the position the strategy holds at its close."""

    config: RunConfig
    asof: pd.Timestamp  # the as-of bar (open time, UTC)
    requested: pd.Timestamp | None  # the date asked for (None: latest)
    index_session: pd.Timestamp  # the last index session the as-of bar sees
    index_close: float
    idx_age: float  # days from that session's close to the as-of bar's close
    ath: float
    ath_distance: float  # index close / ATH - 1 (0 on a record close, negative below)
    last_record: pd.Timestamp | None  # the last record close (above every earlier close)
    sessions_since_record: int | None
    leaves: list[LeafState]
    signal_now: bool  # the entry expression fires on the as-of bar
    last_signal_bar: pd.Timestamp | None  # the last bar on which the entry expression fired
    last_signal_session: pd.Timestamp | None  # the index session behind that event (NaT for asset-only events)
    holdings: list[Holding]
    next_open: str  # what the strategy decided at the as-of close: "buy", "sell (<reason>)" or "nothing"
    last_exit: dict | None  # the last closed position: exit time, reason, pnl
    result: Result = field(repr=False)
    notes: list[str] = field(default_factory=list)
    now: pd.Timestamp | None = None  # the clock's time when the status was taken (None: an as-of date was asked)
    data_age: float | None = None  # days from the as-of bar's close to ``now`` (None with an as-of date)

    @property
    def in_position(self) -> bool:
        """True when the strategy holds a position at the as-of bar's close."""
        return bool(self.holdings)

    def rows(self) -> list[tuple[str, str]]:
        """The status as (label, text) rows, for the terminal and for HTML."""
        cfg = self.config
        idx = cfg.data["index"]
        rows = [
            ("as of", f"the {self.asof:%a %Y-%m-%d} bar (closes "
                      f"{self.asof + timeframe_delta(cfg.data['timeframe']):%Y-%m-%d %H:%M} UTC)"),
        ]  # fmt: skip
        if self.now is not None and self.data_age is not None:
            rows.append(("data age", f"{self.data_age:.1f} days: the latest bar closed "
                         f"{self.asof + timeframe_delta(cfg.data['timeframe']):%Y-%m-%d %H:%M} UTC, "
                         f"it is now {self.now:%Y-%m-%d %H:%M} UTC"))  # fmt: skip
        rows += [
            ("index", f"{idx} closed {self.index_close:,.2f} on {self.index_session:%a %Y-%m-%d}; "
                      f"idx_age {self.idx_age:.3f} days"),
            ("all-time high", f"{self.ath:,.2f}" + (f" set {self.last_record:%Y-%m-%d}" if self.last_record else "")
             + ("; the last close is that record" if self.ath_distance == 0
                else f"; the last close is {-self.ath_distance:.2%} below")),
            ("since record", "no record close yet" if self.sessions_since_record is None
             else f"{self.sessions_since_record} session(s) since the last record close"),
        ]  # fmt: skip
        for leaf in self.leaves:
            if leaf.kind == "event":
                text = f"last true {leaf.last_true:%Y-%m-%d}" if leaf.last_true is not None else "never true"
                if leaf.now:
                    text += " (the last session)" if leaf.on == "index" else " (the as-of bar)"
                if leaf.confirm:
                    text += "; " + (leaf.pending.text() if leaf.pending else "no break pending")
            else:
                text = ("true" if leaf.now else "false") + " on the as-of bar"
            rows.append((leaf.kind, f"{leaf.rule}: {text}"))
        if self.last_signal_bar is None:
            rows.append(("last signal", "the entry has never fired on these bars"))
        else:
            sess = "" if pd.isna(self.last_signal_session) else f"session {self.last_signal_session:%Y-%m-%d} "
            rows.append(("last signal", f"{sess}seen on bar {self.last_signal_bar:%Y-%m-%d}"
                         + (" (today)" if self.signal_now else "")))  # fmt: skip
        if self.holdings:
            for h in self.holdings:
                rows.append(("position", f"long {h.asset} since {h.entry_time:%Y-%m-%d} at {price_text(h.entry_price)} "
                             f"(size {h.size:.6g}); close {price_text(h.last_close)}; unrealised {h.unrealised:+,.2f} "
                             f"({h.ret:+.2%})"))  # fmt: skip
        else:
            rows.append(("position", "flat"))
        if self.last_exit:
            x = self.last_exit
            rows.append(("last exit", f"{x['exit_time']:%Y-%m-%d} ({x['exit_reason']}), pnl {x['pnl']:+,.2f}"))
        rows.append(("next open", self.next_open))
        rows += [("note", n) for n in self.notes]
        return rows


def refresh(
    config: RunConfig,
    cache: Cache | None = None,
    deadline: float | None = None,
    announce: Callable[[str], None] | None = None,
) -> list[str]:
    """Fetch the missing tail of every series the config uses (as ``riskon data fetch`` does); one line each.

    ``announce`` hears of each download before it starts.
    """

    cache = cache or Cache()
    lines = []
    need = [(config.data["index"], "1d")] + [(a, config.data["timeframe"]) for a in config.target["assets"]]
    for sym, tf in dict.fromkeys(need):
        filled = fetch(sym, tf, cache=cache, deadline=DEFAULT_DEADLINE if deadline is None else deadline,
                       announce=announce)  # fmt: skip
        m = filled.meta
        lines.append(f"{sym}: +{filled.added} rows from {filled.origin}, {m['rows']} cached "
                     f"({m['first'][:10]} .. {m['last'][:10]})")  # fmt: skip
    return lines


def _day(value) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"as-of date {value!r} is not a date; write YYYY-MM-DD") from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def _engine(config: RunConfig) -> str:
    # numba loads only for the fast engine
    from strategies.fastsim import is_supported

    return "fast" if is_supported(strategy_params(config))[0] else "backtrader"


def status(
    config: RunConfig,
    asof=None,
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
    engine: str | None = None,
    clock: Callable[[], pd.Timestamp] | None = None,
) -> Status:
    """The signal's state at the close of the latest bar (or the last bar on or before ``asof``).

    The backtest runs from the config's start to that bar (its ``end`` is
    ignored: status is about the as-of day) with ``engine`` (default: the fast
    simulator when it supports the config, else backtrader). Without ``asof`` the
    latest bar's age is measured against ``clock()`` (default ``utc_now``), and a note warns when it closed
    more than ``[report] stale_days`` ago: the state shown is then not today's.
    """
    d = config.data
    requested = None if asof is None else _day(asof)
    end = None if requested is None else f"{requested:%Y-%m-%d}"
    cfg = replace(config, data={**d, "end": end})
    if end is not None and d["start"] and d["start"] > end:
        raise ConfigError(f"{config.source}: as-of date {end} is before the config's start {d['start']}")
    # the index keeps its full history, as in every backtest: alignment shows a bar only the sessions closed
    # (and published) by its close, and rules read the past only; status's own figures use those sessions
    sessions, bars, assets, fps = prepare(cfg, cache, announce)
    last_bar = bars.index[-1]
    engine = engine or _engine(cfg)
    result = run_prepared(cfg, sessions, bars, assets, fps, engine=engine)

    last = bars.iloc[-1]
    pos = int(last["idx_pos"])
    if pos < 0:
        raise DataError(f"the {last_bar:%Y-%m-%d} bar sees no {d['index']} session yet")
    seen = sessions.iloc[: pos + 1]
    close = seen["idx_close"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        record = close > prior_high(close)
    rec = np.flatnonzero(record)
    ath = float(seen["idx_ath"].iloc[-1])

    entry = compose.build(entry_spec(cfg.strategy, cfg.rule_params), "[strategy.entry]")
    leaves = [_leaf_state(leaf, seen, bars) for leaf in entry.leaves()]

    ev = np.flatnonzero(bars["event"].to_numpy(dtype=bool))
    holdings = [_holding(t) for t in result.trades.itertuples() if t.open]
    closed = result.trades[~result.trades["open"]]
    last_exit = None
    if len(closed):
        x = closed.sort_values("exit_time").iloc[-1]
        last_exit = {"exit_time": x["exit_time"], "exit_reason": x["exit_reason"],
                     "pnl": float(closed[closed["position"] == x["position"]]["pnl"].sum())}  # fmt: skip
    notes = []
    if requested is not None and last_bar.tz_localize(None) < requested:
        notes.append(f"no bar on {requested:%Y-%m-%d}: the data ends {last_bar:%Y-%m-%d}")
    if float(last["idx_age"]) > STALE_DAYS:
        notes.append(f"stale index: its last close is {float(last['idx_age']):.1f} days old at this bar")
    now = age = None
    if requested is None:
        now, age = data_age(last_bar, d["timeframe"], clock or utc_now)
        limit = float(cfg.report.get("stale_days", 3.0))
        if age > limit:
            notes.append(
                f"stale data: the latest bar closed {age:.1f} days ago (more than {limit:g}), so this is the state "
                f"of {last_bar:%Y-%m-%d}, not today's; run `riskon status --refresh` or `riskon data fetch` first"
            )
    return Status(
        config=cfg,
        asof=last_bar,
        requested=requested,
        index_session=seen.index[-1],
        index_close=float(close[-1]),
        idx_age=float(last["idx_age"]),
        ath=ath,
        ath_distance=float(close[-1] / ath - 1.0),
        last_record=seen.index[rec[-1]] if len(rec) else None,
        sessions_since_record=int(pos - rec[-1]) if len(rec) else None,
        leaves=leaves,
        signal_now=bool(bars["event"].iloc[-1]),
        last_signal_bar=bars.index[ev[-1]] if len(ev) else None,
        last_signal_session=bars["event_session"].iloc[ev[-1]] if len(ev) else None,
        holdings=holdings,
        next_open=_next_open(cfg, bars, assets, engine),
        last_exit=last_exit,
        result=result,
        notes=notes,
        now=now,
        data_age=age,
    )


def data_age(bar: pd.Timestamp, timeframe: str, clock: Callable[[], pd.Timestamp]) -> tuple[pd.Timestamp, float]:
    """``(now, days)``: the clock's time and the days from the close of ``bar`` (its open time) to it."""
    now = pd.Timestamp(clock())
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    closes = bar + timeframe_delta(timeframe)
    return now, (now - closes) / pd.Timedelta(days=1)


def _holding(t) -> Holding:
    return Holding(
        asset=t.asset,
        signal_session=None if pd.isna(t.signal_session) else t.signal_session,
        entry_time=t.entry_time,
        entry_price=float(t.entry_price),
        size=float(t.size),
        last_close=float(t.exit_price),
        unrealised=float(t.pnl),
        ret=float(t.pnl / (t.size * t.entry_price + t.entry_fee)),
    )


def _leaf_state(leaf: compose.Leaf, sessions: pd.DataFrame, bars: pd.DataFrame) -> LeafState:
    rule = leaf.rule
    if rule.on == "asset":
        sig = rule.compute(bars)["signal"].to_numpy(dtype=bool)
        true = np.flatnonzero(sig)
        return LeafState(repr(rule), rule.kind, rule.on, bool(sig[-1]), bars.index[true[-1]] if len(true) else None)
    sig = leaf.session_output(sessions)["signal"].to_numpy(dtype=bool)
    true = np.flatnonzero(sig)
    last_true = sessions.index[true[-1]] if len(true) else None
    if rule.kind == "filter":  # the state of the session the as-of bar sees
        return LeafState(repr(rule), rule.kind, rule.on, bool(sig[-1]), last_true)
    pending, confirm = confirmation(rule, sessions)
    return LeafState(repr(rule), rule.kind, rule.on, bool(sig[-1]), last_true, pending, confirm)


def confirmation(rule: rules.Rule, sessions: pd.DataFrame) -> tuple[Pending | None, str]:
    """The most advanced unconfirmed break on the last session, asked of the rule itself.

    For a rule with a ``confirm_days`` parameter ``k``: the rule with a window of
    ``j`` sessions confirms on the last session exactly when a break ``j - 1``
    sessions earlier has closed above its level on every session since. The
    largest such ``j < k`` is the oldest break still pending. With
    ``confirm = "weekly"`` the windows run back to the previous week-ending
    session. Returns ``(None, "")`` for rules without a confirmation window.
    """
    if "confirm_days" not in rule.params:
        return None, ""
    weekly = rule.values.get("confirm") == "weekly"
    n = len(sessions)
    if weekly:
        ends = np.flatnonzero(sessions["idx_week_end"].to_numpy(dtype=bool)[:-1])
        longest = n - 1 - (ends[-1] if len(ends) else -1)
        if sessions["idx_week_end"].iloc[-1]:
            longest = 0  # the week's last session has confirmed or voided every break of the week
        what, needed = "the week's last close", None
    else:
        needed = int(rule.values["confirm_days"])
        longest, what = needed - 1, f"{needed} sessions"
    for j in range(min(longest, n), 0, -1):
        values = {**rule.values, "confirm_days": j}
        if weekly:
            values["confirm"] = "days"
        try:
            shorter = type(rule)(**values)
        except ValueError:
            continue
        out = shorter.compute(sessions)
        if bool(out["signal"].iloc[-1]):
            level = float(out["level"].iloc[-1]) if "level" in out else float("nan")
            return Pending(sessions.index[n - j], level, j, needed), what
    return None, what


def _next_open(cfg: RunConfig, bars: pd.DataFrame, assets: dict[str, pd.DataFrame], engine: str) -> str:
    """What the strategy decided at the as-of bar's close, from the backtest run one bar further.

    A copy of the last bar is appended (no new signal, no exit-rule signal, prices
    unchanged); any fill on it is a decision taken at the as-of close. Decisions
    on the appended bar itself cannot fill and are dropped by the backtest.
    """
    # backtrader loads only when a backtrader backtest runs
    from strategies.backtest import backtest

    step = timeframe_delta(cfg.data["timeframe"])
    t = bars.index[-1] + step

    def extend(frame: pd.DataFrame) -> pd.DataFrame:
        row = frame.iloc[[-1]].copy()
        row.index = pd.DatetimeIndex([t], name=frame.index.name).as_unit(frame.index.unit)
        if "open" in row and not np.isnan(row["close"].iloc[0]):
            row["open"] = row["high"] = row["low"] = row["close"].iloc[0]
        for col, blank in (("event", False), ("exit_signal", False), ("event_level", np.nan)):
            if col in row:
                row[col] = blank
        if "event_session" in row:
            row["event_session"] = pd.NaT
        out = pd.concat([frame, row])
        out.attrs = dict(frame.attrs)
        return out

    more_bars = extend(bars)
    more_assets = {s: extend(f) for s, f in assets.items()}
    params = strategy_params(cfg)
    if engine == "fast":
        # numba loads only for the fast engine
        from strategies.fastsim import fast_backtest

        res = fast_backtest(more_bars, params, more_assets)
    else:
        res = backtest(more_bars, params, assets=more_assets)
    tr = res.trades
    if len(tr) and (tr["entry_time"] == t).any():
        return "buy (an entry was decided at this close)"
    sold = tr[(tr["exit_time"] == t) & ~tr["open"]] if len(tr) else tr
    if len(sold):
        return f"sell ({sold['exit_reason'].iloc[0]}: an exit was decided at this close)"
    return "hold" if len(tr) and tr["open"].any() else "nothing (flat, no entry decided)"
