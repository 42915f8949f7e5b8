"""One run end to end: metrics recomputed independently, accounting, the CLI's files and the tear sheet.

The seed config is shortened to 2020-01-01..2021-12-31 for speed. Every metric is recomputed here
from the equity curve, the trade list and the raw fills (DESIGN.md §6), never through riskon.metrics.
The tear sheet (the slow part, ~10 s) is generated once, by the CLI run in a module fixture.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskon.analysis.trade_stats import TRADE_ANALYTICS, TRADE_STATS
from riskon.config import parse
from riskon.metrics import LABELS, METRICS, format_metric
from riskon.runner import run
from support.clitools import riskon_cmd

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "runs" / "seed.toml"
START, END = "2020-01-01", "2021-12-31"
END_OPEN = "2021-11-20"  # the third trade (entry 2021-11-05) is still open on this last bar
TOL = 1e-12


def seed_raw(start: str, end: str) -> dict:
    raw = tomllib.loads(SEED.read_text(encoding="utf-8"))
    raw["data"]["start"], raw["data"]["end"] = start, end
    return raw


def close(a: float, b: float, rel: float = TOL) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=rel, abs_tol=rel)


_RUNS: dict[str, object] = {}


def short_run(end: str):
    """``riskon.runner.run`` on the seed config cut to START..end (each window run once per module)."""
    if end not in _RUNS:
        _RUNS[end] = run(parse(seed_raw(START, end), "seed-short"))
    return _RUNS[end]


@pytest.fixture(scope="module", params=[END, END_OPEN], ids=["closed", "open_at_end"])
def result(request, data_dir):
    return short_run(request.param)


@pytest.fixture(scope="module")
def closed_result(data_dir):
    return short_run(END)


# ------------------------------------------------------------------------------------------ independent numbers
def held_at_close(result) -> np.ndarray:
    """Units held at each bar's close, from the raw fills alone."""
    fills = result.backtest.fills
    delta = np.zeros(len(result.bars))
    for f in fills.itertuples():
        delta[f.bar] += f.size if f.side == "buy" else -f.size
    return np.cumsum(delta)


def independent_returns(equity: np.ndarray, cash: float) -> np.ndarray:
    return equity / np.concatenate([[cash], equity[:-1]]) - 1.0


def independent_metrics(equity: np.ndarray, cash: float) -> dict[str, float]:
    r = independent_returns(equity, cash)
    n = len(r)
    cagr = (equity[-1] / cash) ** (365.0 / n) - 1.0
    sharpe = r.mean() / r.std(ddof=1) * math.sqrt(365.0)
    sortino = r.mean() / math.sqrt(float(np.sum(np.minimum(r, 0.0) ** 2)) / n) * math.sqrt(365.0)
    path = np.concatenate([[cash], equity])
    mdd = float(np.min(path / np.maximum.accumulate(path) - 1.0))
    return {
        "total_return": equity[-1] / cash - 1.0,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": mdd,
        "calmar": cagr / abs(mdd),
    }


def trade_pnls_from_fills(result) -> list[float]:
    """Net PnL per trade from the fills (an open trade marked at the last close, no exit fee)."""
    fills = result.backtest.fills
    buys, sells = fills[fills["side"] == "buy"], fills[fills["side"] == "sell"]
    last_close = float(result.bars["close"].iloc[-1])
    pnls = []
    for k, b in enumerate(buys.itertuples()):
        cost = b.price * b.size + b.fee
        if k < len(sells):
            s = sells.iloc[k]
            pnls.append(s["price"] * s["size"] - s["fee"] - cost)
        else:
            pnls.append(b.size * last_close - cost)
    return pnls


def test_metrics_table_shape(result):
    m = result.metrics
    assert isinstance(m, pd.DataFrame)
    assert list(m.index) == list(METRICS)
    assert list(m.columns) == ["strategy", "buy_and_hold"]
    for name in ("trades", "win_rate", "profit_factor", "avg_hold_days"):
        assert math.isnan(m.at[name, "buy_and_hold"])
    assert m.at["exposure", "buy_and_hold"] == 1.0


def test_returns_and_equity_share_one_calendar(result):
    idx = result.bars.index
    assert result.equity.index.equals(idx) and result.returns.index.equals(idx)
    assert idx[0] == pd.Timestamp(START, tz="UTC")
    assert (np.diff(idx.asi8) == 86_400_000_000).all()  # every calendar day, by open time
    r = independent_returns(result.equity.to_numpy(), result.backtest.initial_cash)
    np.testing.assert_allclose(result.returns.to_numpy(), r, rtol=0, atol=1e-15)


def test_strategy_return_metrics_recomputed(result):
    want = independent_metrics(result.equity.to_numpy(), result.backtest.initial_cash)
    for name, value in want.items():
        assert close(result.metrics.at[name, "strategy"], value), (name, result.metrics.at[name, "strategy"], value)


def test_strategy_trade_metrics_recomputed(result):
    m = result.metrics["strategy"]
    trades = result.trades
    pnls = trade_pnls_from_fills(result)
    assert len(pnls) == len(trades) == m["trades"] > 0
    np.testing.assert_allclose(trades["pnl"].to_numpy(), pnls, rtol=1e-12)
    pnl = np.array(pnls)
    assert close(m["win_rate"], float((pnl > 0).mean()))
    assert close(m["profit_factor"], pnl[pnl > 0].sum() / -pnl[pnl < 0].sum())
    days = [(t.exit_time - t.entry_time) / pd.Timedelta(days=1) for t in trades.itertuples()]
    assert close(m["avg_hold_days"], float(np.mean(days)))
    held = held_at_close(result) > 0
    assert close(m["exposure"], float(held.mean()))
    assert close(m["fees"], float(result.backtest.fills["fee"].sum()))
    # the whole gain is the trades' net PnL (cash earns nothing by default)
    assert close(result.equity.iloc[-1] - result.backtest.initial_cash, float(pnl.sum()), rel=1e-9)


def test_open_trade_is_marked_at_last_close(result):
    trades = result.trades
    assert trades["open"].sum() == (1 if result.bars.index[-1] == pd.Timestamp(END_OPEN, tz="UTC") else 0)
    for t in trades[trades["open"]].itertuples():
        assert t.exit_time == result.bars.index[-1] and t.exit_reason == "open"
        assert t.exit_price == result.bars["close"].iloc[-1] and t.exit_fee == 0.0
        assert pd.isna(t.exit_decision_time)


def test_buy_and_hold_by_hand(result):
    cfg = result.config
    fee, slip, cash = cfg.costs["fee_bps"] / 1e4, cfg.costs["slippage_bps"] / 1e4, cfg.portfolio["cash"]
    bars = result.bars
    price = bars["open"].iloc[0] * (1 + slip)
    units = cash / (price * (1 + fee)) * (1 - 1e-9)
    left = cash - units * price - units * price * fee
    assert left >= 0
    want = left + units * bars["close"].to_numpy()
    np.testing.assert_allclose(result.benchmark.to_numpy(), want, rtol=1e-12)
    assert result.benchmark.index.equals(bars.index)
    got = result.metrics["buy_and_hold"]
    for name, value in independent_metrics(want, cash).items():
        assert close(got[name], value), (name, got[name], value)
    # the benchmark's one fee, where the table reports it
    assert math.isnan(got["fees"]) or close(got["fees"], units * price * fee)
    np.testing.assert_allclose(result.benchmark_returns.to_numpy(), independent_returns(want, cash), atol=1e-15)


def test_accounting(result):
    bt_ = result.backtest
    fills = bt_.fills
    fee = result.config.costs["fee_bps"] / 1e4
    slip = result.config.costs["slippage_bps"] / 1e4
    assert (bt_.cash >= 0).all()
    turnover = float((fills["price"] * fills["size"]).sum())
    assert math.isclose(bt_.fees, fee * turnover, rel_tol=1e-9)
    np.testing.assert_allclose(fills["fee"], fee * fills["price"] * fills["size"], rtol=1e-9)
    opens = result.bars["open"].to_numpy()[fills["bar"].to_numpy()]
    want = np.where(fills["side"] == "buy", opens * (1 + slip), opens * (1 - slip))
    np.testing.assert_allclose(fills["price"], want, rtol=1e-12)
    # equity = cash + units x close on every bar
    units = held_at_close(result)
    assert (units >= -1e-12).all()
    np.testing.assert_allclose(bt_.equity, bt_.cash + units * result.bars["close"].to_numpy(), rtol=1e-9)
    # sizing: fraction x equity at the decision bar's close / (fill price x (1 + fee)), less the haircut
    eq = bt_.equity
    for t in result.trades.itertuples():
        size = result.config.portfolio["fraction"] * eq[t.decision_time] / (t.entry_price * (1 + fee)) * (1 - 1e-9)
        assert math.isclose(t.size, size, rel_tol=1e-12)
        assert result.bars.index.get_loc(t.entry_time) == result.bars.index.get_loc(t.decision_time) + 1


# ------------------------------------------------------------------------------------------ the CLI, end to end


@pytest.fixture(scope="module")
def cli(tmp_path_factory, data_dir):
    """``riskon run`` on the shortened seed config, once per module: (process, output folder)."""
    tmp = tmp_path_factory.mktemp("cli-run")
    text = SEED.read_text(encoding="utf-8").replace("[data]\n", f'[data]\nstart = "{START}"\nend = "{END}"\n', 1)
    cfg = tmp / "short.toml"
    cfg.write_text(text, encoding="utf-8")
    out = tmp / "out"
    proc = subprocess.run(
        [*riskon_cmd(), "run", str(cfg), "--out", str(out)],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    return proc, out


def test_cli_exits_cleanly(cli):
    proc, _ = cli
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "findfont" not in proc.stderr
    assert "Warning" not in proc.stderr  # also catches FutureWarning, DeprecationWarning, ...


def test_cli_prints_metrics_and_trades(cli, closed_result):
    proc, _ = cli
    out = proc.stdout
    assert "metrics (daily returns, 365 days a year)" in out and "trades" in out
    lines = out.splitlines()
    m = closed_result.metrics
    for name in METRICS:
        row = next(line for line in lines if re.search(rf"│ {re.escape(LABELS[name])}\s+│", line))
        cells = [c.strip() for c in row.strip().strip("│").split("│")]
        assert cells == [LABELS[name], format_metric(name, m.at[name, "strategy"]),
                         format_metric(name, m.at[name, "buy_and_hold"])], row  # fmt: skip
    for t in closed_result.trades.itertuples():
        row = next(line for line in lines if f"│ {t.entry_time:%Y-%m-%d} │" in line)
        assert f"{t.signal_session:%Y-%m-%d}" in row and f"{t.entry_price:,.2f}" in row
        assert f"{t.exit_time:%Y-%m-%d}" in row and f"{t.exit_price:,.2f}" in row and t.exit_reason in row


def test_cli_writes_every_file(cli):
    _, out = cli
    for name in ("trades.csv", "equity.csv", "metrics.csv", "tearsheet.html", "signals.png"):
        assert (out / name).is_file(), name
    png = (out / "signals.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width >= 800 and height >= 500
    assert len(png) > 30_000  # a drawn chart, not an empty canvas


def test_trades_csv_equals_result(cli, closed_result):
    _, out = cli
    got = pd.read_csv(out / "trades.csv")
    want = closed_result.trades
    assert len(got) == len(want) > 0
    assert (got["asset"] == "BTC-USD").all()
    assert list(got.columns) == [*want.columns, *TRADE_ANALYTICS]
    for col in ("decision_time", "entry_time", "exit_decision_time", "exit_time"):
        parsed = pd.to_datetime(got[col], utc=True)
        assert (parsed.to_numpy() == want[col].to_numpy()).all(), col
    assert (pd.to_datetime(got["signal_session"]).to_numpy() == want["signal_session"].to_numpy()).all()
    for col in ("entry_price", "size", "entry_fee", "exit_price", "exit_fee", "pnl"):
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-9, err_msg=col)
    assert got["exit_reason"].tolist() == want["exit_reason"].tolist()
    assert got["open"].tolist() == want["open"].tolist()


def test_equity_and_metrics_csv_equal_result(cli, closed_result):
    _, out = cli
    eq = pd.read_csv(out / "equity.csv", index_col="date", parse_dates=["date"])
    want_dates = closed_result.equity.index.tz_convert("UTC").tz_localize(None)
    assert (eq.index.to_numpy() == want_dates.to_numpy()).all()
    np.testing.assert_allclose(eq["equity"].to_numpy(), closed_result.equity.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(eq["cash"].to_numpy(), closed_result.backtest.cash.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(eq["buy_and_hold"].to_numpy(), closed_result.benchmark.to_numpy(), rtol=1e-12)
    metrics = pd.read_csv(out / "metrics.csv", index_col="metric")
    assert list(metrics.index) == [*closed_result.metrics.index, *TRADE_STATS]
    np.testing.assert_allclose(
        metrics.loc[closed_result.metrics.index].to_numpy(), closed_result.metrics.to_numpy(), rtol=1e-12
    )


# ------------------------------------------------------------------------------------------ the tear sheet
@pytest.fixture(scope="module")
def sheet(cli) -> tuple[str, dict[str, dict[str, str]]]:
    """The tear sheet's HTML and its metrics table as {row label: {column header: shown text}}."""
    _, out = cli
    html = (out / "tearsheet.html").read_text(encoding="utf-8")
    header = re.search(r"<tr><th>Metric</th>((?:<th>[^<]*</th>)+)</tr>", html)
    assert header, "quantstats' metrics table header not found"
    cols = [c.replace("&amp;", "&") for c in re.findall(r"<th>([^<]*)</th>", header.group(1))]
    rows = {}
    for label, cells in re.findall(r"<tr><td>([^<]*)</td>((?:<td>[^<]*</td>)+)</tr>", html):
        values = re.findall(r"<td>([^<]*)</td>", cells)
        if len(values) == len(cols):
            rows.setdefault(label, dict(zip(cols, values, strict=True)))
    return html, rows


def shown(sheet, label: str) -> float:
    _, rows = sheet
    text = rows[label]["Strategy"]
    return float(text.rstrip("%").replace(",", ""))


def printed(result, name: str) -> float:
    """The value as the printed metrics table shows it (percent metrics in percent)."""
    return float(format_metric(name, result.metrics.at[name, "strategy"]).rstrip("%").replace(",", ""))


def test_tearsheet_columns_and_periods(sheet):
    html, rows = sheet
    assert set(next(iter(rows.values()))) == {"Strategy", "buy & hold BTC-USD"}
    assert "Periods/Year: 365" in html
    assert "(matched dates)" not in html


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("CAGR%", "cagr"),
        ("Sharpe", "sharpe"),
        ("Max Drawdown", "max_drawdown"),
        ("Sortino", "sortino"),
        ("Calmar", "calmar"),
        ("Cumulative Return", "total_return"),
    ],
)
def test_tearsheet_shows_the_printed_numbers(sheet, closed_result, label, name):
    assert shown(sheet, label) == printed(closed_result, name)


def test_tearsheet_benchmark_column_is_buy_and_hold(sheet, closed_result):
    _, rows = sheet
    m = closed_result.metrics
    for label, name in (("CAGR%", "cagr"), ("Sharpe", "sharpe"), ("Max Drawdown", "max_drawdown")):
        text = format_metric(name, m.at[name, "buy_and_hold"]).rstrip("%")
        assert float(rows[label]["buy & hold BTC-USD"].rstrip("%").replace(",", "")) == float(text), label


def test_tearsheet_sharpe_is_365_day_not_252(sheet, closed_result):
    ours = closed_result.metrics.at["sharpe", "strategy"]
    at_252 = ours * math.sqrt(252 / 365)
    assert round(at_252, 2) != round(ours, 2)  # the check below can tell them apart
    assert shown(sheet, "Sharpe") == round(ours, 2)
    assert shown(sheet, "Sharpe") != round(at_252, 2)


def test_tearsheet_is_self_contained(sheet):
    html, _ = sheet
    assert not re.search(r"<link[^>]*rel=[\"'][^\"']*icon", html, re.I), "favicon link left in"
    assert not re.search(r"<link[^>]+href=[\"']?(?:https?:)?//", html, re.I), "remote <link>"
    assert not re.search(r"<script[^>]+src=[\"']?(?:https?:)?//", html, re.I), "remote <script src>"
    assert not re.search(r"<img[^>]+src=[\"']?(?:https?:)?//", html, re.I), "remote <img>"
    assert not re.search(r"url\([\"']?(?:https?:)?//", html, re.I), "remote CSS url()"
    assert not re.search(r"@import", html, re.I)
