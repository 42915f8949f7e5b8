"""Exits and the liquidity cap, each checked trade by trade against the raw bars.

BTC-USD on the ^RUT ``ath_confirmed`` signal over short windows. For every trade the test recomputes,
from the raw OHLCV file and the raw index sessions, when the exit had to be decided and at what price
it had to fill — intrabar stop orders, a liquidity-capped entry, a composed exit rule, and the
close-based fixed stop and take profit — and compares with what the backtrader strategy did.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feeds.align import session_frame
from feeds.loader import load
from riskon.config import ConfigError, parse
from riskon.runner import run
from strategies.backtest import check_accounting

FEE, SLIP = 0.001, 0.0005
WINDOW = {"start": "2019-01-01", "end": "2022-12-31"}


def config(exits: dict, target: dict | None = None, asset: str = "BTC-USD", window: dict = WINDOW, **strategy):
    return parse(
        {
            "name": "exits",
            "data": {**window, "asset": asset},
            "strategy": {"rule": "ath_confirmed", "params": {"confirm_days": 1}, **strategy},
            "exits": exits,
            "target": target or {},
            "costs": {"fee_bps": FEE * 1e4, "slippage_bps": SLIP * 1e4},
            "report": {"tearsheet": False, "chart": False},
        }
    )


@pytest.fixture(scope="module")
def raw_btc(data_dir) -> pd.DataFrame:
    return load("BTC-USD", "1d")


def prices(raw: pd.DataFrame, index: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """The raw file's OHLCV on the run's bars, as arrays."""
    frame = raw.reindex(index)
    assert not frame[["open", "high", "low", "close"]].isna().any().any()
    return {c: frame[c].to_numpy(dtype="float64") for c in ("open", "high", "low", "close", "volume")}


def closed_and_open(res):
    tr = res.trades
    assert len(tr) >= 3, "the window must trade for the checks to mean anything"
    assert tr["open"].sum() <= 1
    assert check_accounting(res.backtest) == []
    return tr[~tr["open"]], tr[tr["open"]]


def assert_one_exit_per_position(res) -> None:
    """Fills alternate buy, sell, buy, ...: no stop order fires beside a market exit, none is lost."""
    sides = res.backtest.fills["side"].tolist()
    assert sides == ["buy", "sell"] * (len(sides) // 2) + ["buy"] * (len(sides) % 2)
    assert len(res.trades) == (len(sides) + 1) // 2


# ------------------------------------------------------------------------------------------ (a) intrabar stops
INTRABAR = {
    "trail": {"trailing_stop": 0.1},
    "stop_max_hold": {"stop": 0.05, "max_hold_days": 20.0},  # the hold limit makes the stop-only run trade
    "both": {"trailing_stop": 0.1, "stop": 0.05},
}


@pytest.mark.parametrize("case", list(INTRABAR))
def test_intrabar_stops_fill_inside_the_bar(case, raw_btc):
    exits = INTRABAR[case]
    trail, stop = exits.get("trailing_stop"), exits.get("stop")
    res = run(config({**exits, "intrabar": True}))
    closed, still_open = closed_and_open(res)
    assert_one_exit_per_position(res)
    index = res.bars.index
    p = prices(raw_btc, index)
    op, low, close = p["open"], p["low"], p["close"]

    def level(e: int, k: int, entry: float) -> tuple[float, str]:
        """The stop working in bar k of a trade filled at bar e: set at bar k-1's close."""
        levels = []
        if stop is not None:
            levels.append((entry * (1.0 - stop), "stop"))
        if trail is not None:
            levels.append((close[e:k].max() * (1.0 - trail), "trail"))  # peak close from the fill bar to k-1
        return max(levels)

    def untouched(e: int, end: int, entry: float) -> None:
        """No bar after the fill bar and before ``end`` reached its own stop."""
        for k in range(e + 1, end):
            assert low[k] > level(e, k, entry)[0], f"the stop should have filled on {index[k]}"

    stopped = closed[closed["exit_reason"].str.endswith("_intrabar")]
    gaps = 0
    for t in stopped.itertuples():
        e, x = index.get_loc(t.entry_time), index.get_loc(t.exit_time)
        assert x > e, "no stop works in the entry fill bar"
        s, kind = level(e, x, t.entry_price)
        assert t.exit_reason == f"{kind}_intrabar"
        assert low[x] <= s, "the stop was touched in its exit bar"
        assert t.exit_price == pytest.approx(min(op[x], s) * (1.0 - SLIP), rel=1e-12)
        assert t.exit_fee == pytest.approx(FEE * t.exit_price * t.size, rel=1e-12)
        assert t.exit_decision_time == index[x - 1], "decided (placed) at the close before the fill bar"
        untouched(e, x, t.entry_price)
        gaps += op[x] < s
    for t in closed[~closed.index.isin(stopped.index)].itertuples():  # close-based exits (max_hold)
        e, x = index.get_loc(t.entry_time), index.get_loc(t.exit_time)
        assert t.exit_reason == "max_hold" and "max_hold_days" in exits
        assert (t.exit_time - t.entry_time).days == 21 and t.exit_decision_time == index[x - 1]
        assert t.exit_price == pytest.approx(op[x] * (1.0 - SLIP), rel=1e-12)
        untouched(e, x, t.entry_price)  # the fill bar's working stop was cancelled at its open
    for t in still_open.itertuples():
        untouched(index.get_loc(t.entry_time), len(index), t.entry_price)
    assert len(stopped) >= 3
    if case == "both":
        assert set(stopped["exit_reason"]) == {"trail_intrabar", "stop_intrabar"}, "each level binds sometimes"
        # BTC trades around the clock, so the open is the last close: a gap through the stop comes from
        # a crash on the entry fill bar (the first stop already sits above that close)
        assert 1 <= gaps < len(stopped), "fills both at the stop and at an open below it"


def test_intrabar_stop_is_cancelled_by_a_close_based_exit(raw_btc):
    """A take profit decided at a close replaces the working stop: exactly one sale per position."""
    res = run(config({"trailing_stop": 0.1, "take_profit": 0.08, "intrabar": True}))
    closed, _ = closed_and_open(res)
    assert_one_exit_per_position(res)
    reasons = set(closed["exit_reason"])
    assert "take_profit" in reasons and "trail_intrabar" in reasons
    index = res.bars.index
    op = prices(raw_btc, index)["open"]
    for t in closed[closed["exit_reason"] == "take_profit"].itertuples():
        x = index.get_loc(t.exit_time)
        assert t.exit_decision_time == index[x - 1]
        assert t.exit_price == pytest.approx(op[x] * (1.0 - SLIP), rel=1e-12)


def test_intrabar_stop_fill_starts_the_cooldown_in_both_engine_modes():
    cfg = config({"trailing_stop": 0.1, "stop": 0.05, "intrabar": True}, cooldown_days=5.0)
    res = run(cfg)
    tr = res.trades
    assert len(tr) >= 3 and tr["exit_reason"].iloc[:-1].str.endswith("_intrabar").all()
    waits = (tr["decision_time"].iloc[1:].to_numpy() - tr["exit_time"].iloc[:-1].to_numpy()) / pd.Timedelta(days=1)
    assert (waits >= 5).all(), "no entry decided within the cooldown after a stop fill"
    pd.testing.assert_frame_equal(run(cfg, runonce=False).trades, tr)


@pytest.mark.parametrize("mode", ["basket", "top_k"])
def test_config_refuses_intrabar_without_a_single_target(mode):
    with pytest.raises(ConfigError, match="intrabar stops need \\[target\\] mode = 'single'"):
        config({"trailing_stop": 0.1, "intrabar": True}, {"mode": mode, "assets": ["BTC-USD", "ETH-USD"]})


# ------------------------------------------------------------------------------------------ (b) liquidity cap
@pytest.mark.parametrize("asset", ["BTC-USD", "binance:BTC/USDT"])
def test_liquidity_cap_limits_each_entry_to_a_share_of_base_volume(asset, data_dir):
    cap = 1e-6
    res = run(config({"trailing_stop": 0.1}, {"liquidity_cap": cap}, asset=asset))
    tr = res.trades
    assert len(tr) >= 3
    raw = load(asset, "1d").reindex(res.bars.index)
    # Yahoo's -USD volume is quoted in dollars; an exchange's in the coin
    base = raw["volume"] / raw["close"] if asset.endswith("-USD") else raw["volume"]
    equity, cash = res.equity, res.backtest.cash
    for t in tr.itertuples():
        assert t.size == pytest.approx(cap * base.loc[t.entry_time], rel=1e-12)
        flat_equity = equity.loc[t.decision_time]
        assert cash.loc[t.decision_time] == pytest.approx(flat_equity, rel=1e-12), "flat before the entry"
        uncapped = flat_equity / (t.entry_price * (1.0 + FEE)) * (1.0 - 1e-9)
        assert t.size < 0.9 * uncapped, "the cap binds"
        left = flat_equity - t.size * t.entry_price * (1.0 + FEE)
        assert cash.loc[t.entry_time] == pytest.approx(left, rel=1e-9)
        assert left > 0.1 * flat_equity, "the rest stays in cash"
        assert t.entry_price == pytest.approx(raw["open"].loc[t.entry_time] * (1.0 + SLIP), rel=1e-12)
    assert sum("entry capped" in line for line in res.backtest.log) == len(tr)
    assert check_accounting(res.backtest) == []


# ------------------------------------------------------------------------------------------ (c) exit rule
def test_exit_rule_index_below_its_average(raw_btc, data_dir):
    # a longer window: this exit keeps positions for months
    res = run(config({"rule": {"not": {"rule": "index_above_ma", "window": 50}}}, window={"start": "2016-01-01"}))
    closed, still_open = closed_and_open(res)
    assert_one_exit_per_position(res)
    assert set(closed["exit_reason"]) == {"rule"}
    # by hand: each bar's visible ^RUT session (closed by the bar's close) and its 50-session SMA
    sessions = session_frame(load("^RUT", "1d"))
    close = sessions["idx_close"].to_numpy()
    sma = pd.Series(close).rolling(50).mean().to_numpy()
    index = res.bars.index
    stamps = pd.DatetimeIndex(sessions["idx_close_time"]).tz_convert("UTC")
    bar_close = index + pd.Timedelta(days=1)
    pos = np.searchsorted(stamps.asi8, bar_close.as_unit(stamps.unit).asi8, side="right") - 1
    assert (pos >= 49).all()
    at_or_below = close[pos] <= sma[pos]
    op = prices(raw_btc, index)["open"]
    for t in closed.itertuples():
        e, d = index.get_loc(t.entry_time), index.get_loc(t.exit_decision_time)
        assert at_or_below[d], f"exit decided on {index[d]} with the index above its average"
        assert not at_or_below[e:d].any(), f"an earlier bar of the trade entered on {t.entry_time} was below"
        assert t.exit_time == index[d + 1]
        assert t.exit_price == pytest.approx(op[d + 1] * (1.0 - SLIP), rel=1e-12)
    for t in still_open.itertuples():
        assert not at_or_below[index.get_loc(t.entry_time) : len(index) - 1].any()


# ------------------------------------------------------------------------------------------ (d) fixed stop, take profit
def test_fixed_stop_and_take_profit_on_the_close(raw_btc):
    stop, tp = 0.05, 0.10
    res = run(config({"stop": stop, "take_profit": tp}))
    closed, still_open = closed_and_open(res)
    assert_one_exit_per_position(res)
    index = res.bars.index
    p = prices(raw_btc, index)
    op, close = p["open"], p["close"]

    def first_exit(e: int, entry: float) -> tuple[int, str] | None:
        for k in range(e, len(index) - 1):  # a decision on the last bar could not fill
            if close[k] < entry * (1.0 - stop):
                return k, "stop"
            if close[k] > entry * (1.0 + tp):
                return k, "take_profit"
        return None

    for t in closed.itertuples():
        e = index.get_loc(t.entry_time)
        assert t.entry_price == pytest.approx(op[e] * (1.0 + SLIP), rel=1e-12)
        found = first_exit(e, t.entry_price)
        assert found is not None
        k, reason = found
        assert (t.exit_decision_time, t.exit_reason) == (index[k], reason)
        assert t.exit_time == index[k + 1]
        assert t.exit_price == pytest.approx(op[k + 1] * (1.0 - SLIP), rel=1e-12)
    for t in still_open.itertuples():
        assert first_exit(index.get_loc(t.entry_time), t.entry_price) is None
    assert set(closed["exit_reason"]) == {"stop", "take_profit"}
