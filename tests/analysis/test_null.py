"""The random-entry null: exact fills by hand and by the strategy's own engines, placement rules, seeding."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from riskon import config
from riskon.analysis.random_null import holding_periods, null_summary, placements, random_entry_null, simulate
from riskon.metrics import metrics
from riskon.runner import run
from strategies.backtest import backtest
from strategies.fastsim import fast_backtest

ALTS = ["binance:MATIC/USDT", "binance:SOL/USDT", "binance:ADA/USDT"]  # MATIC's data ends 2024-09-10


def _config(**sections) -> config.RunConfig:
    raw = {
        "name": "null-test",
        "data": {"index": "^RUT"},
        "strategy": {"rule": "ath_confirmed", "params": {"confirm_days": 3}},
        "costs": {"fee_bps": 10, "slippage_bps": 5},
    }
    for key, body in sections.items():
        raw.setdefault(key, {}).update(body)
    return config.parse(raw)


@pytest.fixture(scope="module")
def one_trade(data_dir):
    """BTC, one trade (2020-11-18 .. 2021-01-28, trailing stop), half the equity per entry."""
    cfg = _config(
        data={"asset": "BTC-USD", "start": "2020-10-01", "end": "2021-01-31"},
        exits={"trailing_stop": 0.25},
        portfolio={"fraction": 0.5},
    )
    return run(cfg, engine="fast")


@pytest.fixture(scope="module")
def seed_run(data_dir):
    """The seed strategy on the full BTC history (19 positions, the last one open)."""
    return run(config.load(config_path("seed")), engine="fast")


def config_path(name: str) -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[2] / "runs" / f"{name}.toml")


def _events_at(bars: pd.DataFrame, decision_bars: np.ndarray) -> pd.DataFrame:
    """The same bars with the entry rule's events replaced by events on exactly these bars."""
    out = bars.copy()
    event = np.zeros(len(out), dtype=bool)
    event[decision_bars] = True
    out["event"] = event
    out["event_session"] = pd.DatetimeIndex(out["idx_session"]).where(event)
    out["event_level"] = np.where(event, out["idx_ath"], np.nan)
    return out


def test_one_trade_by_hand_and_by_the_strategy(one_trade):
    r = one_trade
    starts, lengths = holding_periods(r)
    assert len(lengths) == 1 and lengths[0] == r.bars.index.get_loc(r.trades["exit_time"].iloc[0]) - starts[0]
    draws = placements(r, n=6, seed=11)
    null = random_entry_null(r, n=6, seed=11)
    p = r.backtest.params
    opens = r.assets["BTC-USD"]["open"].to_numpy()
    closes = r.assets["BTC-USD"]["close"].to_numpy()
    n = len(r.bars)
    for d in draws.itertuples():
        e, x = d.entry_bar, d.exit_bar
        # by hand: buy half the equity at the next open + slippage, fee on both sides, sell at the open x bars later
        buy = opens[e] * (1 + 0.0005)
        size = 0.5 * 100_000 / (buy * (1 + 0.001)) * (1 - 1e-9)
        cash = 100_000 - size * buy * (1 + 0.001)
        final = cash + size * opens[x] * (1 - 0.0005) * (1 - 0.001) if x < n else cash + size * closes[-1]
        assert null.at[d.draw, "total_return"] == pytest.approx(final / 100_000 - 1, rel=1e-12, abs=1e-15)
        assert null.at[d.draw, "fees"] == pytest.approx(
            size * buy * 0.001 + (size * opens[x] * (1 - 0.0005) * 0.001 if x < n else 0.0), rel=1e-12
        )
    # the strategy's own accounting: an event on the decision bar and an exit after the same bars held
    sim = simulate(r, draws)
    for d in draws.itertuples():
        bars = _events_at(r.bars, np.array([d.entry_bar - 1]))
        params = dataclasses.replace(p, trail=None, max_hold_days=float(d.hold_bars - 1))
        engines = [fast_backtest(bars, params, r.assets)]
        if d.draw == 0:
            engines.append(backtest(bars, params, assets=r.assets))
        for res in engines:
            np.testing.assert_allclose(sim["equity"][d.draw], res.equity.to_numpy(), rtol=1e-12)
            assert res.trades["entry_time"].iloc[0] == d.entry_time
            if d.exit_bar < n:
                assert res.trades["exit_time"].iloc[0] == d.exit_time


@pytest.mark.parametrize("mode", ["single", "basket", "top_k"])
def test_many_positions_equal_the_strategy_engine(mode, data_dir):
    """Every draw's equity equals the fast engine fed events at the draw's decision bars (data end included)."""
    if mode == "single":
        cfg = _config(data={"asset": "BTC-USD", "start": "2016-06-01", "end": "2018-12-31"},
                      exits={"max_hold_days": 30})  # fmt: skip
    else:
        cfg = _config(data={"start": "2020-09-01", "end": "2025-06-30"}, exits={"max_hold_days": 30},
                      target={"mode": mode, "assets": ALTS, "k": 2, "momentum_days": 20})  # fmt: skip
    r = run(cfg, engine="fast")
    starts, lengths = holding_periods(r)
    assert len(lengths) >= 5 and set(lengths) == {31}  # every position: entry fill + 31 bars = exit fill
    draws = placements(r, n=25, seed=5)
    sim = simulate(r, draws)
    null = random_entry_null(r, n=25, seed=5)
    matic_end = r.bars.index.get_loc(r.assets[ALTS[0]]["close"].last_valid_index()) if mode != "single" else -1
    crossed = 0
    for d, rows in draws.groupby("draw"):
        bars = _events_at(r.bars, rows["entry_bar"].to_numpy() - 1)
        res = fast_backtest(bars, r.backtest.params, r.assets)
        np.testing.assert_allclose(sim["equity"][d], res.equity.to_numpy(), rtol=1e-12)
        assert res.positions["entry_time"].tolist() == rows["entry_time"].tolist()
        assert null.at[d, "fees"] == pytest.approx(res.fees, rel=1e-12)
        crossed += int(((rows["entry_bar"] <= matic_end) & (rows["exit_bar"] > matic_end)).any())
    if mode != "single":
        assert crossed > 0  # some draws hold MATIC over its last bar: the data-end sale is exercised


def test_null_metrics_are_the_run_metrics(seed_run):
    """Each draw's row equals riskon.metrics.metrics on its equity and positions, and matches the run's shape."""
    r = seed_run
    null = random_entry_null(r, n=30, seed=0)
    draws = placements(r, n=30, seed=0)
    sim = simulate(r, draws)
    idx, n = r.bars.index, len(r.bars)
    for d in (0, 13, 29):
        eq = sim["equity"][d]
        returns = pd.Series(eq / np.concatenate([[100_000.0], eq[:-1]]) - 1, index=idx)
        end = sim["pos_end"][d]
        positions = pd.DataFrame(
            {"entry_time": idx[sim["entries"][d]], "exit_time": idx[np.minimum(end, n - 1)], "pnl": sim["pnl"][d],
             "open": end >= n}
        )  # fmt: skip
        expected = metrics(returns, positions, float((end - sim["entries"][d]).sum()) / n, float(sim["fees"][d]))
        for key, value in expected.items():
            assert null.at[d, key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    # same count and holding periods, no data ends: the exposure of every draw is the run's own
    assert (null["trades"] == r.metrics.at["trades", "strategy"]).all()
    np.testing.assert_allclose(null["exposure"], r.metrics.at["exposure", "strategy"], rtol=1e-12)


def test_placements_never_overlap_and_stay_inside(seed_run):
    r = seed_run
    n = len(r.bars)
    _, lengths = holding_periods(r)
    draws = placements(r, n=300, seed=3)
    assert len(draws) == 300 * len(lengths)
    for _, rows in draws.groupby("draw"):
        e, x = rows["entry_bar"].to_numpy(), rows["exit_bar"].to_numpy()
        assert e[0] >= 1 and x[-1] <= n  # a decision bar before the first fill; n = held to the end (marked)
        assert (e[1:] > x[:-1]).all()  # the next entry fills after the previous exit fill
        assert sorted(x - e) == sorted(lengths)
    # the draws are spread: first entries cover most of the history
    firsts = draws.groupby("draw")["entry_bar"].min()
    assert firsts.nunique() > 100


def test_seeded_and_deterministic(seed_run):
    a = random_entry_null(seed_run, n=40, seed=7)
    b = random_entry_null(seed_run, n=40, seed=7)
    c = random_entry_null(seed_run, n=40, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["total_return"], c["total_return"])


def test_zero_trades_is_degenerate(data_dir):
    r = run(_config(data={"asset": "BTC-USD", "start": "2019-01-01", "end": "2019-12-31"},
                    exits={"trailing_stop": 0.25}), engine="fast")  # fmt: skip
    assert r.trades.empty
    assert placements(r, n=10).empty
    null = random_entry_null(r, n=10, seed=0)
    assert len(null) == 10
    for key in ("total_return", "cagr", "max_drawdown", "exposure", "trades", "fees"):
        assert (null[key] == 0).all(), key
        assert r.metrics.at[key, "strategy"] == 0
    assert null["sharpe"].isna().all() and math.isnan(r.metrics.at["sharpe", "strategy"])
    s = null_summary(r, null)
    assert s.at["total_return", "percentile"] == 0.0  # no draw strictly below the strategy's 0
    assert math.isnan(s.at["sharpe", "percentile"]) and s.at["sharpe", "draws"] == 0


def test_summary_percentiles(seed_run):
    r = seed_run
    null = random_entry_null(r, n=200, seed=1)
    s = null_summary(r, null)
    assert list(s.columns[:5]) == ["strategy", "null_p05", "null_median", "null_p95", "percentile"]
    for metric in ("total_return", "sharpe", "max_drawdown"):
        v = r.metrics.at[metric, "strategy"]
        draws = null[metric].to_numpy()
        assert s.at[metric, "percentile"] == (draws < v).mean()
        assert s.at[metric, "null_median"] == np.median(draws)
        assert s.at[metric, "null_p05"] <= s.at[metric, "null_median"] <= s.at[metric, "null_p95"]
    assert s.at["max_drawdown", "better"].startswith("higher")


@pytest.mark.parametrize(
    ("mode", "portfolio"),
    [
        ("single", {"cash_rate": 0.05, "sizing": "vol_target", "vol_target": 0.4, "vol_lookback": 20}),
        ("basket", {"cash_rate": -0.01, "sizing": "vol_target", "vol_target": 0.6, "vol_lookback": 15}),
        ("top_k", {"cash_rate": 0.03, "sizing": "notional", "notional": 60_000.0}),
        ("single", {"cash_rate": 0.04, "sizing": "notional", "notional": 250_000.0}),  # above equity: capped
    ],
)
def test_draws_earn_the_cash_rate_and_size_like_the_run(mode, portfolio, data_dir):
    """With a cash rate and vol-targeted or notional sizing, every draw still equals the fast engine."""
    if mode == "single":
        cfg = _config(data={"asset": "BTC-USD", "start": "2016-06-01", "end": "2018-12-31"},
                      exits={"max_hold_days": 30}, portfolio=portfolio)  # fmt: skip
    else:
        target = {"mode": mode, "assets": ALTS, "k": 2, "momentum_days": 20}
        cfg = _config(data={"start": "2020-09-01", "end": "2025-06-30"}, exits={"max_hold_days": 30}, target=target,
                      portfolio=portfolio)  # fmt: skip
    r = run(cfg, engine="fast")
    draws = placements(r, n=12, seed=3)
    sim = simulate(r, draws)
    null = random_entry_null(r, n=12, seed=3)
    flat = r.equity.iloc[: r.bars.index.get_loc(r.trades["entry_time"].min())]
    assert flat.iloc[-1] != 100_000.0  # the run's own idle cash earned (or paid) the rate before its first entry
    for d, rows in draws.groupby("draw"):
        bars = _events_at(r.bars, rows["entry_bar"].to_numpy() - 1)
        res = fast_backtest(bars, r.backtest.params, r.assets)
        assert len(res.positions) == len(rows)  # no draw's entry was skipped
        np.testing.assert_allclose(sim["equity"][d], res.equity.to_numpy(), rtol=1e-12)
        assert null.at[d, "fees"] == pytest.approx(res.fees, rel=1e-12)
