"""The interactive run chart (``riskon.pages.run_chart``) drawn from a real seed run, checked without a browser.

Every entry and exit marker is a fill of the trades table (time and price); the trailing-stop level is
recomputed here by hand from the closes (peak close since the entry fill bar times 1 - trail) and is the
exact trigger: the only bar of each trail-exited position whose close is below it is the exit decision bar.
A basket's value is checked against the engine's own equity minus cash, and the confirmation windows
against the index sessions (``confirm_days = 3``: the break session is two sessions before the signal).
"""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskon.config import load
from riskon.runner import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seed(data_dir):
    return run(load(ROOT / "runs" / "seed.toml"), engine="fast")


def values(array) -> np.ndarray:
    """A Plotly JSON array (a list, or ``{"dtype", "bdata"}`` base64) as numbers."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).astype("float64")
    return np.array([np.nan if v is None else v for v in array], dtype="float64")


def ms(times) -> np.ndarray:
    return np.array([pd.Timestamp(t).timestamp() * 1000.0 for t in times])


def traces(fig) -> dict[str, dict]:
    from riskon.pages.run_chart import figure_json

    return {t["name"]: t for t in figure_json(fig)["data"]}


def line_x(trace: dict, n: int) -> np.ndarray:
    if "x0" in trace:
        return trace["x0"] + trace["dx"] * np.arange(n)
    return values(trace["x"])


def test_markers_are_the_fills_of_the_trades_table(seed):
    from riskon.pages.run_chart import run_figure

    tr = seed.trades
    got = traces(run_figure(seed))
    closed = tr[~tr["open"]]
    assert len(tr) == 19 and len(closed) == 18  # the seed history: 18 closed trades and the open one
    entries, exits = got["entry fills"], got["exit fills"]
    assert list(values(entries["x"])) == list(ms(tr["entry_time"]))
    assert list(values(entries["y"])) == list(tr["entry_price"])
    assert list(values(exits["x"])) == list(ms(closed["exit_time"]))
    assert list(values(exits["y"])) == list(closed["exit_price"])
    assert len(entries["hovertext"]) == 19 and len(exits["hovertext"]) == 18
    first = entries["hovertext"][0]
    assert "signal session 2014-12-30" in first and "entry fill 2014-12-31 open @ 311.07" in first
    assert "exit fill 2015-01-14 open @ 223.78" in first and "exit reason trail" in first
    assert "PnL -28,204.16" in first
    assert "still open: marked at the last close" in entries["hovertext"][-1]


def test_trailing_level_is_the_exact_exit_trigger(seed):
    from riskon.pages.run_chart import run_figure

    bars, tr = seed.bars, seed.trades
    trace = traces(run_figure(seed))["trailing stop (25% below the peak close since entry)"]
    level = values(trace["y"])
    x = line_x(trace, len(level))
    assert list(x) == list(ms(bars.index))
    want = np.full(len(bars), np.nan)
    close = bars["close"].to_numpy()
    for leg in tr.itertuples():
        a = bars.index.get_loc(leg.entry_time)
        b = len(bars) - 1 if leg.open else bars.index.get_loc(leg.exit_decision_time)
        peak = -np.inf
        for i in range(a, b + 1):  # by hand: the highest close since the entry fill bar, that bar included
            peak = max(peak, close[i])
            want[i] = peak * 0.75
        if leg.exit_reason == "trail":
            below = [bars.index[i] for i in range(a, b + 1) if close[i] < want[i]]
            assert below == [leg.exit_decision_time], leg.position
    np.testing.assert_allclose(level, want, rtol=1e-12, equal_nan=True)
    assert np.isnan(level).sum() == len(bars) - sum(
        (len(bars) - 1 if t.open else bars.index.get_loc(t.exit_decision_time)) - bars.index.get_loc(t.entry_time) + 1
        for t in tr.itertuples()
    )


def test_index_panel_breaks_and_confirmation_windows(seed):
    from riskon.analysis.run_marks import confirmation_windows
    from riskon.pages.run_chart import figure_json, run_figure

    bars, sessions = seed.bars, seed.sessions
    fig = figure_json(run_figure(seed))
    got = {t["name"]: t for t in fig["data"]}
    events = bars[bars["event"]]
    win = confirmation_windows(seed)
    assert len(win) == len(events) == 96
    days = list(sessions.index)
    for w, (t, ev) in zip(win.itertuples(), events.iterrows(), strict=True):
        k = days.index(ev["event_session"])
        assert w.bar == t and w.signal_session == ev["event_session"] and w.level == ev["event_level"]
        assert w.break_session == days[k - 2]  # confirm_days = 3, break day included
        assert sessions["idx_close"].iloc[k - 3] <= w.level < sessions["idx_close"].iloc[k - 2 : k + 1].min()
    assert int(win["entered"].sum()) == len(seed.trades)  # every position took one signal
    assert set(win.loc[win["entered"], "signal_session"]) == set(seed.trades["signal_session"])
    levels = values(got["break levels"]["y"])
    assert list(levels[2::3][:0]) == [] and list(levels[0::3]) == list(events["event_level"])
    shapes = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]
    assert len(shapes) == 96
    end = ms(events.index + pd.Timedelta(days=1))  # to the close of the bar that saw the signal
    assert [s["x1"] for s in shapes] == list(end)
    assert [s["x0"] for s in shapes] == list(ms(pd.DatetimeIndex(win["break_session"]).tz_localize("UTC")))
    assert values(got["index close"]["y"]).tolist() == bars["idx_close"].tolist()
    assert values(got["all-time high"]["y"]).tolist() == bars["idx_ath"].tolist()


def test_panels_share_one_time_axis(seed):
    from riskon.pages.run_chart import figure_json, run_figure

    layout = figure_json(run_figure(seed))["layout"]
    axes = sorted(k for k in layout if k.startswith("xaxis"))
    assert axes == ["xaxis", "xaxis2", "xaxis3", "xaxis4"]  # asset, index, equity, drawdown
    bottom = "x4"
    assert all(layout[a].get("matches") == bottom for a in axes if a != "xaxis4")
    assert [layout[f"yaxis{n}"].get("type") for n in ("", "2", "3", "4")] == ["log", "log", "log", None]


def test_basket_value_and_trail_match_the_engine(data_dir):
    from riskon.analysis.run_marks import position_levels

    res = run(load(ROOT / "runs" / "alt_basket.toml"), engine="fast")
    lv = position_levels(res)
    tr = res.trades
    ended = set(tr.loc[tr["exit_reason"] == "data_end", "position"])
    eq = res.equity
    checked = 0
    for pos, seg in lv.groupby("position"):
        legs = tr[tr["position"] == pos]
        assert seg.index[0] == legs["entry_time"].min()
        if pos not in ended:  # no data-ended proceeds: the value is the engine's equity less the cash left
            before = eq.iloc[eq.index.get_loc(seg.index[0]) - 1]  # all cash at the close before the fills
            cash = before - (legs["size"] * legs["entry_price"] + legs["entry_fee"]).sum()
            np.testing.assert_allclose(seg["value"], eq.reindex(seg.index) - cash, rtol=1e-9)
            checked += 1
        peak = np.maximum.accumulate(seg["value"].to_numpy())
        hit = seg.index[seg["value"].to_numpy() < peak * 0.7]
        if legs["exit_reason"].eq("trail").all():
            assert list(hit) == [legs["exit_decision_time"].iloc[0]]
        else:
            assert list(hit) == []
    assert checked >= 5 and lv["trail_price"].isna().all()  # a basket's level is in value, not a coin's price


def test_no_report_config_and_an_empty_run(seed, tmp_path):
    from riskon.pages.run_chart import run_figure
    from riskon.pages.run_page import write_outputs

    cfg = dataclasses.replace(seed.config, report={**seed.config.report, "tearsheet": False, "chart": False})
    paths = write_outputs(dataclasses.replace(seed, config=cfg), tmp_path / "quiet")
    assert "run_page" not in paths and not (tmp_path / "quiet" / "run.html").exists()
    cfg = dataclasses.replace(seed.config, report={**seed.config.report, "tearsheet": False})
    paths = write_outputs(dataclasses.replace(seed, config=cfg), tmp_path / "loud")
    page = paths["run_page"].read_text(encoding="utf-8")
    assert paths["run_page"] == tmp_path / "loud" / "run.html"
    assert (tmp_path / "loud" / "plotly.min.js").stat().st_size > 3_000_000
    assert '<script src="plotly.min.js" charset="utf-8"></script>' in page
    assert '<a href="signals.png">signals.png</a>' in page and '<a href="trades.csv">trades.csv</a>' in page
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page, re.I)
    assert sorted(set(refs)) == ["equity.csv", "metrics.csv", "plotly.min.js", "signals.png", "trades.csv"]
    assert "https://" not in page and "http://" not in page
    empty = dataclasses.replace(seed, backtest=dataclasses.replace(seed.backtest, trades=seed.trades.iloc[:0]))
    names = {t["name"] for t in traces(run_figure(empty)).values()}
    assert "entry fills" not in names and "index close" in names


def test_names_from_the_config_are_escaped(seed):
    from riskon.pages.run_chart import run_page_html

    xss = "<script>alert(1)</script>"
    page = run_page_html(dataclasses.replace(seed, config=dataclasses.replace(seed.config, name=xss, description=xss)))
    assert xss not in page and "&lt;script&gt;alert(1)&lt;/script&gt;: run" in page
    assert page.count("<script") == 3  # plotly.min.js, the figure's newPlot and the zoom buttons
