"""The Python API against the CLI: same results from a path, a dict or a RunConfig; the CLI is a thin layer.

The configs are the shipped seed configs cut to 2020-06-01..2021-06-30 (two trades) for speed. The
CLI runs start together in one module fixture, since interpreter start-up dominates their time.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

import riskon
from riskon.analysis.trade_stats import TRADE_STATS
from riskon.cli import app
from riskon.config import ConfigError
from riskon.metrics import METRICS, format_metric
from riskon.sweeps.store import Store

ROOT = Path(__file__).resolve().parents[2]
DATES = 'timeframe = "1d"\nstart = "2020-06-01"\nend = "2021-06-30"'
SWEEP_GRID = '"strategy.params.confirm_days" = [2, 3]\n"exits.trailing_stop" = [0.2, 0.3]\n'


def seed_text() -> str:
    text = (ROOT / "runs" / "seed.toml").read_text(encoding="utf-8")
    assert text.count('timeframe = "1d"') == 1
    return text.replace('timeframe = "1d"', DATES)


def sweep_text() -> str:
    text = (ROOT / "runs" / "seed_sweep.toml").read_text(encoding="utf-8")
    text = text.replace('asset = "BTC-USD"', 'asset = "BTC-USD"\n' + DATES.split("\n", 1)[1])
    head, _, _ = text.partition("[sweep.params]")
    return head + "[sweep.params]\n" + SWEEP_GRID


@pytest.fixture(scope="module")
def files(tmp_path_factory, data_dir) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("api")
    seed = folder / "seed_short.toml"
    seed.write_text(seed_text(), encoding="utf-8")
    sweep = folder / "sweep_short.toml"
    sweep.write_text(sweep_text(), encoding="utf-8")
    return {"seed": seed, "sweep": sweep, "folder": folder}


@pytest.fixture(scope="module")
def cli(files, result) -> dict[str, Result]:
    """``riskon run`` and ``riskon sweep`` on the short configs, invoked in this process (no start-up cost)."""
    folder = files["folder"]
    runner = CliRunner()
    jobs = {
        "run": ["run", str(files["seed"]), "--no-report", "--out", str(folder / "out")],
        "sweep": ["sweep", str(files["sweep"]), "--db", str(folder / "cli.duckdb"), "--workers", "1"],
    }
    done = {}
    for name, args in jobs.items():
        done[name] = runner.invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert done[name].exit_code == 0, done[name].output
    return done


@pytest.fixture(scope="module")
def result(files):
    return riskon.run(files["seed"])


def test_import_riskon_loads_no_backtrader_numba_or_duckdb():
    code = (
        "import sys, riskon\n"
        "heavy = [m for m in ('backtrader', 'numba', 'duckdb', 'matplotlib', 'strategies') if m in sys.modules]\n"
        "print(heavy, riskon.__version__)\n"
        "import riskon.runner, riskon.sweeps.driver, riskon.analysis.signal_state  # the wings the API calls\n"
        "from riskon.api import Result\n"
        "print(riskon.run.__module__, riskon.sweep.__module__, riskon.status.__module__, riskon.Result is Result)\n"
        "print(issubclass(riskon.Result, riskon.runner.Result), type(riskon).__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[] 0.1.0", "riskon.api riskon.api riskon.api True", "True module"]


def test_config_from_path_dict_and_object_give_identical_results(files, result):
    raw = tomllib.loads(files["seed"].read_text(encoding="utf-8"))
    for other in (riskon.run(raw), riskon.run(riskon.read_config(files["seed"]))):
        pd.testing.assert_frame_equal(other.metrics, result.metrics, check_exact=True)
        pd.testing.assert_frame_equal(other.trades, result.trades, check_exact=True)
        pd.testing.assert_series_equal(other.equity, result.equity, check_exact=True)
    assert len(result.trades) == 2  # the 2020-11 and 2021-01 entries of the seed strategy


def test_cli_run_writes_what_the_api_returns(cli, files, result):
    out = files["folder"] / "out"
    metrics = pd.read_csv(out / "metrics.csv", index_col="metric")
    # repr floats round-trip exactly
    np.testing.assert_array_equal(metrics.loc[result.metrics.index].to_numpy(), result.metrics.to_numpy())
    assert list(metrics.index) == [*result.metrics.index, *TRADE_STATS]
    with (out / "trades.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(result.trades)
    for row, t in zip(rows, result.trades.itertuples(), strict=True):
        assert pd.Timestamp(row["entry_time"]) == t.entry_time and pd.Timestamp(row["exit_time"]) == t.exit_time
        assert (float(row["entry_price"]), float(row["size"]), float(row["pnl"])) == (t.entry_price, t.size, t.pnl)
    for name in ("cagr", "sharpe", "max_drawdown"):  # the printed table shows the API's numbers
        assert format_metric(name, result.metrics.at[name, "strategy"]) in cli["run"].stdout


def _message(err: Exception) -> str:
    return str(err).split(": ", 1)[1]


@pytest.mark.parametrize(
    "patch, fragment",
    [
        ({"dta": {"index": "^RUT"}}, "unknown key 'dta'"),
        ({"strategy": {"rule": "ath_confirmed", "params": {"confirm_dayz": 3}}}, "did you mean 'confirm_days'?"),
        ({"exits": {"trailing_stop": "25%"}}, "trailing_stop must be float"),
    ],
    ids=["top_key", "rule_param", "wrong_type"],
)
def test_bad_dict_keys_give_the_same_config_error_as_a_file(patch, fragment, tmp_path):
    raw = {"name": "bad", **patch}
    lines = [f"name = {raw['name']!r}"]
    for section, body in patch.items():
        params = body.get("params")
        lines.append(f"[{section}]")
        lines += [f"{k} = {v!r}" for k, v in body.items() if k != "params"]
        if params:
            lines.append(f"[{section}.params]")
            lines += [f"{k} = {v!r}" for k, v in params.items()]
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as from_file:
        riskon.run(path)
    with pytest.raises(ConfigError) as from_dict:
        riskon.run(raw)
    assert str(from_file.value).startswith(f"{path}: ")
    assert str(from_dict.value).startswith("config (dict): ")
    assert _message(from_dict.value) == _message(from_file.value)
    assert fragment in str(from_dict.value) and "\n" not in str(from_dict.value)


def test_repr_html_shows_the_metrics_and_escapes_a_hostile_description(files):
    raw = tomllib.loads(files["seed"].read_text(encoding="utf-8"))
    raw["description"] = "<script>alert('x')</script> & <b>bold</b>"
    res = riskon.run(raw, engine="fast")
    html = res._repr_html_()
    assert "<script>" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    for name, label in (("sharpe", "Sharpe (365)"), ("cagr", "CAGR"), ("max_drawdown", "Max drawdown")):
        row = re.search(rf"<th>{re.escape(label)}</th>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>", html)
        assert row, label
        assert row.groups() == tuple(format_metric(name, res.metrics.at[name, c]) for c in ("strategy", "buy_and_hold"))
    assert html.count("data:image/png;base64,") == 1
    first = res.trades.iloc[0]
    assert f"<td>{first['entry_time']:%Y-%m-%d}</td>" in html


def test_sweep_cli_and_api_store_the_same_runs(cli, files):
    raw = tomllib.loads(files["sweep"].read_text(encoding="utf-8"))
    db = files["folder"] / "api.duckdb"
    sw = riskon.sweep(raw, db=db)
    store = Store(files["folder"] / "cli.duckdb")
    cli_info = store.find_sweep(None)
    assert sw.sweep_id == cli_info["sweep_id"] and sw.total == 4 and sw.ran == 4
    keep = ["run_id", "confirm_days", "trailing_stop", "status", *METRICS]
    ours = sw.runs[keep].sort_values("run_id").reset_index(drop=True)
    theirs = store.runs(cli_info["sweep_id"])[keep].sort_values("run_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    again = riskon.results(db=files["folder"] / "cli.duckdb")  # `riskon results`: read back, nothing re-run
    assert (again.sweep_id, again.objective, again.direction) == (sw.sweep_id, "sharpe", "maximize")
    pd.testing.assert_frame_equal(again.runs[keep].sort_values("run_id").reset_index(drop=True), theirs)
    shown = CliRunner().invoke(app, ["results", "--db", str(files["folder"] / "cli.duckdb")],
                               env={"COLUMNS": "250", "NO_COLOR": "1"})  # fmt: skip
    assert shown.exit_code == 0, shown.output
    from riskon.analysis.robustness import summary_lines

    for line in summary_lines(again.robustness()):  # PSR, DSR and PBO as `riskon results` prints them
        assert " ".join(line.split()) in " ".join(shown.stdout.split()), line
    best = sw.best(2)
    assert list(best["sharpe"]) == sorted(ours["sharpe"], reverse=True)[:2]
    rets = sw.returns()
    assert sorted(rets.columns) == sorted(ours["run_id"])
    for rid in ours["run_id"]:
        stored = store.run(rid)["returns"]
        np.testing.assert_array_equal(rets[rid].to_numpy(), stored.to_numpy())
    # the best run's returns are the same as one run of that config
    top = best.iloc[0]
    one = {**raw, "strategy": {**raw["strategy"], "params": {"confirm_days": int(top["confirm_days"])}},
           "exits": {**raw["exits"], "trailing_stop": float(top["trailing_stop"])}}  # fmt: skip
    one.pop("sweep")
    single = riskon.run(one, engine="fast").returns
    np.testing.assert_allclose(rets[top["run_id"]].to_numpy(), single.to_numpy(), rtol=0, atol=1e-15)
    assert "best by sharpe" in sw._repr_html_()


def test_load_one_symbol_or_several(data_dir):
    btc = riskon.load("BTC-USD")
    with (data_dir / "BTC-USD.csv").open(newline="") as f:
        raw = {r["Date"]: float(r["Close"]) for r in csv.DictReader(f)}
    assert len(btc) == len(raw)
    assert btc.loc[pd.Timestamp("2021-01-07", tz="UTC"), "close"] == raw["2021-01-07"]
    both = riskon.load(["BTC-USD", "^RUT"])
    assert list(both) == ["BTC-USD", "^RUT"]
    pd.testing.assert_frame_equal(both["BTC-USD"], btc)


# -- the analyses: each CLI command's output equals the API's object shown the same way ---------------------
_STAMP = re.compile(r'<p class="sub">written by riskon [^<]*</p>')


def _page(path: Path) -> str:
    """A report page without its 'written at' stamp."""
    return _STAMP.sub("", path.read_text(encoding="utf-8"))


def test_cli_events_page_equals_the_api_study(files):
    from riskon.pages.events_page import write_events_page

    folder = files["folder"]
    args = ["events", str(files["seed"]), "--bootstrap", "200", "--out", str(folder / "events_cli.html")]
    proc = CliRunner().invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert proc.exit_code == 0, proc.output
    study = riskon.events(files["seed"], bootstrap=200)
    write_events_page(study, folder / "events_api.html", study_description(files["seed"]))
    assert _page(folder / "events_cli.html") == _page(folder / "events_api.html")
    assert f"{len(study.signals)} signals" in proc.stdout


def study_description(path: Path) -> str:
    return riskon.read_config(path).description


def test_cli_compare_page_equals_the_api_comparison(files, result):
    folder = files["folder"]
    args = ["compare", str(files["seed"]), "--null", "20", "--out", str(folder / "compare_cli.html")]
    proc = CliRunner().invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert proc.exit_code == 0, proc.output
    table = riskon.compare([files["seed"]], null_n=20, out=folder / "compare_api.html")
    assert _page(folder / "compare_cli.html") == _page(folder / "compare_api.html")
    # the API's table is the run's own metrics (a Result compares the same as its config)
    assert table[table.columns[0]]["sharpe"] == result.metrics.at["sharpe", "strategy"]
    null = riskon.null(result, n=20, seed=0)  # the random-entry null the comparison shows
    for m in ("sharpe", "cagr"):
        assert table.at[f"null_median_{m}", table.columns[0]] == pytest.approx(null.at[m, "null_median"], rel=1e-9)
    again = riskon.compare([result], null_n=0)
    assert again[again.columns[0]]["cagr"] == result.metrics.at["cagr", "strategy"]


def test_cli_walkforward_equals_the_api(files):
    from riskon.pages.walkforward_page import write_report

    folder = files["folder"]
    text = (ROOT / "runs" / "seed_walkforward.toml").read_text(encoding="utf-8")
    head, _, tail = text.partition("[sweep.params]")
    wf = head + "[sweep.params]\n" + SWEEP_GRID + "[walkforward]" + tail.partition("[walkforward]")[2]
    wf = wf.replace("train_days = 1095", "train_days = 730").replace('asset = "BTC-USD"',
                    'asset = "BTC-USD"\nstart = "2016-01-01"\nend = "2021-12-31"')  # fmt: skip
    path = folder / "wf_short.toml"
    path.write_text(wf, encoding="utf-8")
    args = ["walkforward", str(path), "--db", str(folder / "wf.duckdb"), "--out", str(folder / "wf_cli")]
    proc = CliRunner().invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert proc.exit_code == 0, proc.output
    res = riskon.walkforward(tomllib.loads(wf), db=folder / "wf.duckdb")  # a dict: the same sweep, read back
    paths = write_report(res, folder / "wf_api")
    for kind, p in paths.items():
        cli_file = folder / "wf_cli" / p.name
        if p.suffix == ".csv":
            assert cli_file.read_bytes() == p.read_bytes(), kind
        else:
            assert _page(cli_file) == _page(p), kind


def test_a_dict_config_keeps_its_events_table(files):
    """A dict's [events] table is read like a file's (it was once dropped with the TOML text)."""
    raw = tomllib.loads(files["seed"].read_text(encoding="utf-8"))
    raw["events"] = {"drought": 120, "horizons": [7, 30]}
    cfg = riskon.read_config(raw)
    from riskon.analysis.episodes import settings_from

    settings = settings_from(cfg)
    assert settings.drought == 120 and tuple(settings.horizons) == (7, 30)
