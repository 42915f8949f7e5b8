"""Walk-forward: windows, in-sample choice, the stitched out-of-sample curve, flat window edges, errors, the CLI.

One anchored walk-forward (a module fixture) of the seed strategy on BTC-USD 2015-01-01..2021-12-31 over a
2 x 2 grid (confirm_days x trailing_stop), train 730 days, test 180 days, fast engine, in a private store.
Its choices are checked against a brute-force argmax of a hand-computed Sharpe ratio over each train window
of backtrader full-history runs, and its stitched curve against backtrader single runs (``riskon.run``) with
[data] start/end set to each test window: those mark a position open on the last bar at its close without a
fee, where the walk-forward sells it there with the fee, so the direct route's last equity of a window is
reduced by that fee before comparing.
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskon.analysis.walk_forward import trade_window, walk_forward
from riskon.analysis.windows import WalkForwardSpec, make_windows, parse_walkforward
from riskon.config import ConfigError, parse
from riskon.runner import prepare, run, strategy_params
from riskon.sweeps.spec import apply
from support.clitools import riskon_cmd

CONFIRM = [1, 3]
TRAIL = [0.15, 0.3]
FEE = 10 / 1e4
SLIP = 5 / 1e4

TEMPLATE = """\
name = "{name}"
description = "{description}"

[data]
index = "^RUT"
asset = "BTC-USD"
start = "2015-01-01"
end = "2021-12-31"

[strategy]
rule = "ath_confirmed"

[strategy.params]
confirm_days = 3

[exits]
trailing_stop = {trail}
index_drawdown = 0.10

[costs]
fee_bps = 10
slippage_bps = 5

[sweep]
method = "grid"
objective = "sharpe"

[sweep.params]
{grid}

[walkforward]
{walkforward}
"""
ANCHORED = 'mode = "anchored"\ntrain_days = 730\ntest_days = 180'
ROLLING = 'mode = "rolling"\ntrain_days = 365\ntest_days = 180\nstep_days = 200'
GRID = '"strategy.params.confirm_days" = [1, 3]\n"exits.trailing_stop" = [0.15, 0.3]'


def write(
    folder: Path,
    walkforward: str = ANCHORED,
    name: str = "wf",
    description: str = "walk-forward test",
    grid: str = GRID,
    trail: float = 0.25,
) -> Path:
    path = folder / f"{name}.toml"
    text = TEMPLATE.format(name=name, description=description, walkforward=walkforward, grid=grid, trail=trail)
    path.write_text(text)
    return path


def ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


def hand_sharpe(r: np.ndarray) -> float:
    """Sharpe at 365 periods, risk-free 0: mean / sample standard deviation * sqrt(365)."""
    sd = r.std(ddof=1)
    return float(r.mean() / sd * math.sqrt(365)) if sd > 0 else math.nan


_PREPARED: dict[str, tuple] = {}


def prepared(base: dict, params: dict) -> tuple:
    """``riskon.runner.prepare`` of the base config with ``params`` set, once per parameter set."""
    key = repr(sorted(params.items()))
    if key not in _PREPARED:
        _PREPARED[key] = prepare(parse(apply(base, params)))[:3]
    return _PREPARED[key]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("walkforward")


@pytest.fixture(scope="module")
def anchored(folder):
    return walk_forward(write(folder), db=folder / "wf.duckdb", engine="fast")


@pytest.fixture(scope="module")
def full_runs(folder):
    """Every grid combination over the whole history, on backtrader (independent of the stored fast runs)."""
    raw = tomllib.loads(write(folder).read_text())
    base = {k: v for k, v in raw.items() if k not in ("sweep", "walkforward")}
    out = {}
    for c in CONFIRM:
        for t in TRAIL:
            cfg = parse(apply(base, {"strategy.params.confirm_days": c, "exits.trailing_stop": t}))
            out[(c, t)] = run(cfg, engine="backtrader").returns
    return out


def _spec(mode: str, train: int, test: int, step: int | None = None, start: str | None = None) -> WalkForwardSpec:
    return WalkForwardSpec(mode, train, test, step or test, start, "sharpe", "maximize")


def test_anchored_windows_explicit_dates():
    got = make_windows(_spec("anchored", 365, 90, start="2020-01-01"), ts("2019-06-01"), ts("2021-12-31"))
    expected = [  # train start, train end, test start, test end (2020 is a leap year)
        ("2020-01-01", "2020-12-30", "2020-12-31", "2021-03-30"),
        ("2020-01-01", "2021-03-30", "2021-03-31", "2021-06-28"),
        ("2020-01-01", "2021-06-28", "2021-06-29", "2021-09-26"),
        ("2020-01-01", "2021-09-26", "2021-09-27", "2021-12-25"),
        ("2020-01-01", "2021-12-25", "2021-12-26", "2021-12-31"),  # the data ends: a partial last test window
    ]
    assert [tuple(w.__dict__.values()) for w in got] == [(*map(ts, e), i == 4) for i, e in enumerate(expected)]


def test_rolling_windows_explicit_dates():
    got = make_windows(_spec("rolling", 365, 90, step=120, start="2020-01-01"), ts("2019-06-01"), ts("2021-12-31"))
    expected = [
        ("2020-01-01", "2020-12-30", "2020-12-31", "2021-03-30"),
        ("2020-04-30", "2021-04-29", "2021-04-30", "2021-07-28"),
        ("2020-08-28", "2021-08-27", "2021-08-28", "2021-11-25"),
        ("2020-12-26", "2021-12-25", "2021-12-26", "2021-12-31"),  # partial
    ]
    assert [tuple(w.__dict__.values()) for w in got] == [(*map(ts, e), i == 3) for i, e in enumerate(expected)]
    # without start: windows begin on the first bar; the last one ends exactly on the last bar when it fits
    got = make_windows(_spec("rolling", 10, 5), ts("2021-01-01"), ts("2021-01-20"))
    assert [(w.train_start.day, w.train_end.day, w.test_start.day, w.test_end.day) for w in got] == [
        (1, 10, 11, 15),
        (6, 15, 16, 20),
    ]


def test_no_test_window_overlaps_its_train_window_or_another(anchored):
    w = anchored.windows
    assert len(w) == 11  # 10 whole test windows and the partial last one (2021-12-05 .. 2021-12-31)
    assert list(w["partial"]) == [False] * 10 + [True]
    assert (w["test_start"] > w["train_end"]).all()
    assert ((w["test_start"] - w["train_end"]) == pd.Timedelta(days=1)).all()
    assert (w["test_start"].iloc[1:].to_numpy() > w["test_end"].iloc[:-1].to_numpy()).all()
    assert (w["train_start"] == ts("2015-01-01")).all()
    assert ((w["train_end"] - w["train_start"]).dt.days + 1 == 730 + 180 * np.arange(11)).all()
    assert list((w["test_end"] - w["test_start"]).dt.days + 1) == [180] * 10 + [27]
    assert w["test_end"].iloc[-1] == ts("2021-12-31")
    # the stitched curve has exactly the test days, in order, once each
    days = pd.DatetimeIndex(
        np.concatenate([pd.date_range(a, b, freq="D") for a, b in zip(w["test_start"], w["test_end"], strict=True)])
    )
    assert anchored.returns.index.equals(days)


@pytest.mark.parametrize("mode", ["anchored", "rolling"])
def test_chosen_params_are_the_brute_force_argmax(mode, folder, anchored, full_runs):
    said: list[str] = []
    if mode == "anchored":
        res = anchored
    else:  # the same grid: every run is already stored (by the anchored walk-forward) and only read
        res = walk_forward(write(folder, ROLLING, "wf_rolling"), db=folder / "wf.duckdb", announce=said.append)
        assert any("4 already stored; running 0" in m for m in said), said
    order = [(c, t) for c in CONFIRM for t in TRAIL]  # grid order breaks ties
    for w in res.windows.to_dict("records"):
        scores = [hand_sharpe(full_runs[k].loc[w["train_start"] : w["train_end"]].to_numpy()) for k in order]
        if not np.isfinite(scores).any():  # nothing traded in the train window: the test window stays in cash
            assert pd.isna(w["run_id"]) and w["candidates"] == 0
            assert (res.returns.loc[w["test_start"] : w["test_end"]] == 0).all()
            continue
        best = max((i for i in range(len(order)) if np.isfinite(scores[i])), key=lambda i: (scores[i], -i))
        assert (w["confirm_days"], w["trailing_stop"]) == order[best], (w["window"], scores)
        assert w["is_sharpe"] == pytest.approx(scores[best], rel=1e-9)
        assert w["candidates"] == np.isfinite(scores).sum()
    if mode == "rolling":
        assert res.windows["run_id"].isna().any()  # this grid has a train window without a single trade
        assert res.windows["train_start"].diff().iloc[1:].eq(pd.Timedelta(days=200)).all()
        assert ((res.windows["train_end"] - res.windows["train_start"]).dt.days + 1 == 365).all()


def test_runs_another_sweep_stored_are_reused(folder, anchored, full_runs):
    """A sub-grid (confirm_days only, trailing stop fixed at 0.15): its runs were stored by the 2 x 2 sweep under
    other parameter texts; they are linked by run id and read, not re-run."""
    said: list[str] = []
    cfg = write(folder, name="wf_sub", grid='"strategy.params.confirm_days" = [1, 3]', trail=0.15)
    res = walk_forward(cfg, db=folder / "wf.duckdb", announce=said.append)
    assert any("2 already stored; running 0" in m for m in said), said
    for w in res.windows.to_dict("records"):
        scores = [hand_sharpe(full_runs[(c, 0.15)].loc[w["train_start"] : w["train_end"]].to_numpy()) for c in CONFIRM]
        assert w["confirm_days"] == CONFIRM[int(np.nanargmax(scores))]
        assert w["is_sharpe"] == pytest.approx(np.nanmax(scores), rel=1e-9)


def test_stitched_curve_equals_single_runs_over_each_test_window(folder, anchored):
    raw = tomllib.loads(write(folder).read_text())
    base = {k: v for k, v in raw.items() if k not in ("sweep", "walkforward")}
    cash = 100_000.0
    direct_parts, bench_parts = [], []
    for w in anchored.windows.to_dict("records"):
        _, full_bars, _ = prepared(base, w["params"])
        window = {"data.start": f"{w['test_start']:%Y-%m-%d}", "data.end": f"{w['test_end']:%Y-%m-%d}"}
        direct = run(parse(apply(base, {**w["params"], **window})), engine="backtrader")
        # a run cut at the window sees, on its first bar, only the session that bar carries; the same events
        # as the full history here (else the two routes would legitimately differ on that first bar)
        assert direct.bars["event"].equals(full_bars["event"].loc[direct.bars.index]), w["window"]
        equity = direct.equity.copy()
        open_legs = direct.trades[direct.trades["open"]]
        equity.iloc[-1] -= float((open_legs["size"] * open_legs["exit_price"]).sum()) * FEE  # sold with the fee
        direct_parts.append(equity / cash)
        # buy-and-hold: bought at the first open (slipped, with the fee), sold at the last close with the fee
        btc = direct.assets["BTC-USD"]
        size = cash / (btc["open"].iloc[0] * (1 + SLIP) * (1 + FEE)) * (1 - 1e-9)
        bench = direct.benchmark.copy()
        bench.iloc[-1] -= size * btc["close"].iloc[-1] * FEE
        bench_parts.append(bench / cash)
    for parts, got in ((direct_parts, anchored.equity), (bench_parts, anchored.benchmark)):
        growth = np.cumprod([1.0] + [p.iloc[-1] for p in parts[:-1]])
        stitched = pd.concat([p * g * cash for p, g in zip(parts, growth, strict=True)])
        assert stitched.index.equals(got.index)
        np.testing.assert_allclose(got.to_numpy(), stitched.to_numpy(), rtol=1e-9, atol=0)
    stitched = anchored.equity
    assert anchored.summary.at["total_return", "out_of_sample"] == pytest.approx(stitched.iloc[-1] / cash - 1, 1e-9)
    assert any(p.iloc[-1] != 1.0 for p in direct_parts)  # the windows did trade


def test_each_window_starts_and_ends_flat(anchored, folder):
    trades, w = anchored.trades, anchored.windows.set_index("window")
    assert len(trades) >= 5 and not trades["open"].any()
    start = trades["window"].map(w["test_start"])
    end = trades["window"].map(w["test_end"])
    assert (trades["entry_time"] > start).all()  # no fill on a window's first bar: flat at its close
    assert (trades["exit_time"] <= end).all()
    ended = trades[trades["exit_reason"] == "window_end"]
    assert len(ended) >= 1  # at least one window ended holding: closed at its last close
    btc = prepared(tomllib.loads(write(folder).read_text()), {})[2]["BTC-USD"]
    for t in ended.itertuples():
        assert t.exit_time == end[t.Index]
        assert t.exit_price == btc.at[t.exit_time, "close"]
        assert t.exit_fee == pytest.approx(FEE * t.size * t.exit_price, rel=1e-12)
    # every window ends in cash: its equity at the last bar is its cash plus the net pnl of its trades
    equity = anchored.equity
    for n, row in w.iterrows():
        days = equity.loc[row["test_start"] : row["test_end"]]
        before = equity.loc[: row["test_start"] - pd.Timedelta(days=1)]
        start_eq = before.iloc[-1] if len(before) else anchored.initial_cash
        scale = start_eq / anchored.initial_cash
        pnl = trades.loc[trades["window"] == n, "pnl"].sum()
        assert days.iloc[-1] == pytest.approx(start_eq + pnl * scale, rel=1e-9)


def test_window_ignores_later_data_and_engines_agree(folder, anchored):
    """A test window traded on bars built from data cut at its last day equals the full-history cut; so does
    backtrader against the fast engine (both sell an open position at the window's last close)."""
    raw = tomllib.loads(write(folder).read_text())
    base = {k: v for k, v in raw.items() if k not in ("sweep", "walkforward")}
    for w in anchored.windows.to_dict("records"):
        cfg = parse(apply(base, w["params"]))
        _, bars, assets = prepared(base, w["params"])
        a, b = bars.index.get_loc(w["test_start"]), bars.index.get_loc(w["test_end"])
        fast = trade_window(bars, assets, a, b, strategy_params(cfg), "fast")
        slow = trade_window(bars, assets, a, b, strategy_params(cfg), "backtrader")
        np.testing.assert_allclose(slow.equity.to_numpy(), fast.equity.to_numpy(), rtol=1e-9, atol=0)
        assert list(slow.trades["exit_reason"]) == list(fast.trades["exit_reason"])
        if w["window"] in (1, 5):  # two windows: the same, built only from data up to the window's last day
            _, cut_bars, cut_assets, _ = prepare(
                parse(apply(base, {**w["params"], "data.end": f"{w['test_end']:%Y-%m-%d}"}))
            )
            cut = trade_window(cut_bars, cut_assets, a, b, strategy_params(cfg), "fast")
            assert cut.equity.equals(fast.equity) and cut.trades.equals(fast.trades)


def test_fees_equal_rate_times_turnover(anchored):
    fills = anchored.fills
    turnover = float((fills["price"] * fills["size"]).sum())
    assert fills["fee"].sum() == pytest.approx(FEE * turnover, rel=1e-12)
    assert anchored.summary.at["fees", "out_of_sample"] == pytest.approx(FEE * turnover, rel=1e-12)
    assert anchored.windows["oos_fees"].sum() == pytest.approx(FEE * turnover, rel=1e-12)
    assert set(fills["side"]) == {"buy", "sell"}
    assert (fills["side"] == "buy").sum() == (fills["side"] == "sell").sum()  # every buy sold in its window


BAD = [
    ("mode = 'anchored'\ntrain_days = 365\ntest_days = 90\nsize = 3", "[walkforward] has no parameter 'size'"),
    ("train_days = '365'\ntest_days = 90", "[walkforward].train_days must be int"),
    ("test_days = 90", "[walkforward].train_days must be set"),
    ("train_days = 365\ntest_days = 90\nmode = 'expanding'", "[walkforward].mode must be one of"),
    ("train_days = 365\ntest_days = 90\nstep_days = 30", "step_days = 30 is shorter than test_days = 90"),
    ("train_days = 365\ntest_days = 90\nstart = '2020/01/01'", "[walkforward] start = '2020/01/01' is not a date"),
    ("train_days = 365\ntest_days = 90\nstart = '2020-02-30'", "[walkforward] start = '2020-02-30' is not a valid"),
    ("train_days = 1\ntest_days = 90", "[walkforward].train_days must be >= 2"),
]


@pytest.mark.parametrize(("table", "message"), BAD)
def test_config_errors_name_the_key(table, message, tmp_path):
    raw = tomllib.loads(write(tmp_path, table).read_text())
    with pytest.raises(ConfigError) as e:
        parse_walkforward(raw, "x.toml")
    assert str(e.value).startswith("x.toml: ") and message in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("sweep", "method", "random"), "[walkforward] needs [sweep] method = 'grid'"),
        (("sweep", "objective", "trades"), "[sweep] objective = 'trades', which daily returns alone do not give"),
        (("walkforward", None, 3), "[walkforward] must be a table"),
        (("walkforward", None, None), "no [walkforward] table"),
    ],
)
def test_config_errors_sweep_side(change, message, tmp_path):
    raw = tomllib.loads(write(tmp_path).read_text())
    section, key, value = change
    if key is not None:
        raw[section][key] = value
    elif value is None:
        del raw[section]
    else:
        raw[section] = value
    with pytest.raises(ConfigError) as e:
        parse_walkforward(copy.deepcopy(raw), "x.toml")
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("train_days = 2600\ntest_days = 600", "train_days = 2600 days from 2015-01-01 and at least 2 test days "
         "need data to 2022-02-14, but it ends 2021-12-31"),
        ("train_days = 365\ntest_days = 90\nstart = '2014-01-01'", "start = 2014-01-01 is outside the data "
         "(2015-01-01 .. 2021-12-31)"),
    ],
)  # fmt: skip
def test_windows_that_do_not_fit_fail_before_anything_runs(table, message, tmp_path):
    db = tmp_path / "never.duckdb"
    with pytest.raises(ConfigError) as e:
        walk_forward(write(tmp_path, table), db=db)
    assert message in str(e.value)
    assert not db.exists()  # nothing ran, nothing stored


def test_config_accepts_the_walkforward_table(tmp_path):
    from riskon.config import load

    assert load(write(tmp_path)).name == "wf"
    in_memory = parse(tomllib.loads(write(tmp_path).read_text()))  # no file behind it: the sweep needs one
    with pytest.raises(ConfigError, match="walk_forward needs a config file"):
        walk_forward(in_memory, db=tmp_path / "never.duckdb")


def test_cli_prints_and_writes_an_escaped_page(folder, anchored):
    hostile = "<script>alert(1)</script> & co"
    cfg = write(folder, name="wf_cli", description=hostile)
    reports = folder / "reports"
    env = {**os.environ, "RISKON_REPORTS": str(reports)}
    out = reports / "wf_cli"
    proc = subprocess.run(
        [*riskon_cmd(), "walkforward", str(cfg), "--db", str(folder / "wf.duckdb"), "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "11 anchored windows" in text and "in-sample against out-of-sample" in text
    first = anchored.windows.iloc[0]
    assert f"{first['test_start']:%Y-%m-%d} .. {first['test_end']:%Y-%m-%d}" in text
    stitched = anchored.summary.at["total_return", "out_of_sample"]
    assert f"{stitched:.2%}" in text  # the same numbers as the Python result (same store, same runs)
    page = (out / "walkforward.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert page.count("data:image/png;base64,") == 2
    assert "Out-of-sample trades" in page and f"{first['test_start']:%Y-%m-%d}" in page
    windows = pd.read_csv(out / "walkforward_windows.csv")
    assert list(windows["confirm_days"]) == list(anchored.windows["confirm_days"])
    equity = pd.read_csv(out / "walkforward_equity.csv")
    assert equity["equity"].iloc[-1] == pytest.approx(anchored.equity.iloc[-1], rel=1e-9)
    assert "wf_cli/walkforward.html" in (reports / "index.html").read_text()
