"""The backtrader shim: on Python 3.11 backtrader works only after ``feeds.btcompat`` is imported.

Each check runs in a fresh interpreter, so nothing this test process imported
earlier (backtrader, collections patches, a matplotlib backend) can hide a
missing patch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCENARIO = textwrap.dedent(
    """
    import json, sys
    if sys.argv[1] == "shim":
        from feeds.btcompat import bt
    else:
        import backtrader as bt
    import pandas as pd

    closes = [10.0, 11.0, 12.0, 11.0, 13.0, 14.0, 12.0, 15.0, 16.0, 14.5]
    idx = pd.date_range("2021-01-01", periods=len(closes), freq="D")
    highs, lows = [c + 1 for c in closes], [c - 1 for c in closes]
    df = pd.DataFrame({"open": closes, "high": highs, "low": lows, "close": closes, "volume": 1.0}, index=idx)

    class Bound(bt.Indicator):
        # lines bound from sub-indicators: LineIterator.bindlines -> collections.Iterable
        lines = ("avg", "hi")
        params = (("period", 3),)

        def __init__(self):
            bt.ind.SMA(self.data.close, period=self.p.period).bindlines(owner="avg")
            bt.ind.Highest(self.data.high, period=self.p.period).bind2line(1)

    class Record(bt.Strategy):
        params = (("period", 3),)

        def __init__(self):
            self.ind = Bound(self.data, period=self.p.period)
            self.seen = []

        def next(self):
            self.seen.append([self.data.datetime.date(0).isoformat(), self.ind.avg[0], self.ind.hi[0]])

    class LastAvg(bt.Analyzer):
        def stop(self):
            self.rets["period"] = self.strategy.p.period
            self.rets["last_avg"] = self.strategy.ind.avg[0]
            self.rets["bars"] = len(self.strategy.seen)

    out = {}
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(Record)
    out["seen"] = cerebro.run()[0].seen

    cerebro = bt.Cerebro(stdstats=False, maxcpus=1)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.optstrategy(Record, period=[2, 3, 4])
    cerebro.addanalyzer(LastAvg, _name="last")
    runs = cerebro.run()
    out["opt"] = [[r[0].p.period, r[0].analyzers.last.get_analysis()] for r in runs]

    import matplotlib
    out["backend"] = matplotlib.get_backend()
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot(closes)
    fig.savefig(sys.argv[2])
    print(json.dumps(out))
    """
)


def run_scenario(mode: str, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run(
        [sys.executable, "-c", SCENARIO, mode, str(tmp_path / "chart.png")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def shimmed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bt")
    proc = run_scenario("shim", tmp)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), tmp


def test_without_the_shim_bindlines_crashes_on_collections_iterable(tmp_path):
    proc = run_scenario("raw", tmp_path)
    assert proc.returncode != 0
    assert "AttributeError: module 'collections' has no attribute 'Iterable'" in proc.stderr
    assert "bindlines" in proc.stderr


def test_bound_lines_compute_correct_values(shimmed):
    out, _ = shimmed
    closes = [10.0, 11.0, 12.0, 11.0, 13.0, 14.0, 12.0, 15.0, 16.0, 14.5]
    highs = [c + 1 for c in closes]
    expected = [
        [f"2021-01-{i + 1:02d}", sum(closes[i - 2 : i + 1]) / 3, max(highs[i - 2 : i + 1])]
        for i in range(2, len(closes))
    ]
    assert len(out["seen"]) == 8
    for got, want in zip(out["seen"], expected, strict=True):
        assert got[0] == want[0]
        assert got[1] == pytest.approx(want[1], rel=1e-12)
        assert got[2] == want[2]


def test_optstrategy_runs_every_parameter_value(shimmed):
    out, _ = shimmed
    closes = [10.0, 11.0, 12.0, 11.0, 13.0, 14.0, 12.0, 15.0, 16.0, 14.5]
    assert [p for p, _ in out["opt"]] == [2, 3, 4]
    for period, rets in out["opt"]:
        assert rets["period"] == period
        assert rets["last_avg"] == pytest.approx(sum(closes[-period:]) / period, rel=1e-12)
        assert rets["bars"] == len(closes) - period + 1
    assert len({rets["last_avg"] for _, rets in out["opt"]}) == 3  # 15.25, 15.1666..., 14.375


def test_no_tk_backend_and_no_display_needed(shimmed):
    out, tmp = shimmed
    assert out["backend"].lower() != "tkagg"
    assert (tmp / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_shim_restores_the_removed_names_from_collections_abc(tmp_path):
    code = (
        "import collections, collections.abc, feeds.btcompat; "
        "print(collections.Iterable is collections.abc.Iterable, collections.Mapping is collections.abc.Mapping)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]
