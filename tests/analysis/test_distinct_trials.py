"""The deflated Sharpe ratio counts distinct trials: runs with identical daily returns count once.

Two sweeps of one strategy share runs whose returns are identical under different run ids (what a code
edit that changes no number leaves behind). The trial count, the variance of the trials' Sharpe ratios
and the DSR are checked against values computed here by hand from the distinct series, before and after
the second sweep adds a trial of its own.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from riskon.analysis.robustness import deflated_sharpe, summary_lines, sweep_robustness
from riskon.pages.robustness_page import robustness_section
from riskon.sweeps.store import Store

CONFIG = """name = "{name}"
[data]
index = "^RUT"
asset = "BTC-USD"
[strategy]
rule = "ath_confirmed"
[sweep.params]
"exits.trailing_stop" = [0.1, 0.2]
"""


def series(seed: int, n: int = 240) -> list[float]:
    return list(np.random.default_rng(seed).normal(0.001, 0.01, n))


A, B, C, F = series(1), series(2), series(3), series(4)


def write_sweep(store: Store, sweep_id: str, runs: dict[str, list[float]], start: str = "2020-01-01") -> None:
    """A sweep of strategy key "k" written straight into the store: run id -> daily returns."""
    store.put_sweep({"sweep_id": sweep_id, "name": sweep_id, "config_text": CONFIG.format(name=sweep_id),
                     "spec": '{"objective": "sharpe"}', "fingerprints": {}, "code_version": "t", "status": "done",
                     "n_total": len(runs), "strategy_key": "k"})  # fmt: skip
    rows = []
    for i, (rid, r) in enumerate(runs.items()):
        sr = np.mean(r) / np.std(r, ddof=1) * math.sqrt(365)
        rows.append({"run_id": rid, "sweep_id": sweep_id, "params": json.dumps({"x": i}), "error": None,
                     "status": "ok", "sharpe": sr, "returns_start": pd.Timestamp(start), "returns": r,
                     "bench": [0.0] * len(r)})  # fmt: skip
    store.write_batch(rows)


def per_day_sharpe(r: list[float]) -> float:
    return float(np.mean(r) / np.std(r, ddof=1))


def test_identical_returns_count_once_and_a_new_trial_updates_the_dsr(tmp_path):
    store = Store(tmp_path / "t.duckdb")
    write_sweep(store, "s1", {"a": A, "b": B, "c": C})
    first = sweep_robustness(store, "s1", n_splits=4)
    assert (first.n_trials, first.n_trial_runs) == (3, 3)

    # s2 repeats a and b under new run ids (same returns) and adds one new series
    write_sweep(store, "s2", {"a2": A, "b2": list(B), "f": F})
    assert store.count_trials("k") == 4
    trials = store.trials("k")
    assert list(trials["run_id"]) == ["a", "b", "c", "f"] and list(trials["runs"]) == [2, 2, 1, 1]

    for sweep in ("s1", "s2"):
        res = sweep_robustness(store, sweep, n_splits=4)
        assert (res.n_trials, res.n_trial_runs, res.n_ok) == (4, 6, 3)
        var = float(np.var([per_day_sharpe(x) for x in (A, B, C, F)], ddof=1))
        assert res.sr_variance == pytest.approx(var, rel=1e-12)
        best = max((A, B, C) if sweep == "s1" else (A, B, F), key=per_day_sharpe)  # the sweep's own best run
        assert res.dsr == pytest.approx(deflated_sharpe(np.array(best), 4, var), abs=1e-12)
        assert res.strategy == "ath_confirmed on ^RUT -> BTC-USD"
    again = sweep_robustness(store, "s1", n_splits=4)
    assert again.trials_key != first.trials_key  # a new distinct trial: the DSR was computed anew
    assert again.dsr < first.dsr  # more trials, higher bar

    # a third sweep of copies only: the same set of distinct trials, the same key and DSR
    write_sweep(store, "s3", {"c3": C, "f3": F})
    third = sweep_robustness(store, "s1", n_splits=4)
    assert third.trials_key == again.trials_key and third.dsr == again.dsr
    assert (third.n_trials, third.n_trial_runs) == (4, 8)
    lines = summary_lines(third)
    assert lines[1] == (
        "  trials: 4 distinct runs of ath_confirmed on ^RUT -> BTC-USD in the store (ok runs with identical daily "
        f"returns count once; 8 ok runs in all); 3 ok runs in this sweep; variance of their daily Sharpe "
        f"{third.sr_variance:.3g}"
    )


def test_the_same_values_on_other_dates_are_another_trial(tmp_path):
    store = Store(tmp_path / "d.duckdb")
    write_sweep(store, "s1", {"a": A, "b": B})
    write_sweep(store, "s2", {"a_later": A}, start="2020-01-02")
    assert store.count_trials("k") == 3
    assert store.count_trials("unknown") == 0


def test_the_sweep_page_names_the_count_and_the_rule(tmp_path):
    store = Store(tmp_path / "p.duckdb")
    write_sweep(store, "s1", {"a": A, "b": B, "c": C})
    write_sweep(store, "s2", {"a2": A, "f": F})
    html = "".join(robustness_section(store, "s1"))
    assert "<th>trials: distinct runs of this strategy in the store (all sweeps)</th>" in html
    assert (
        "<td>4 distinct runs of ath_confirmed on ^RUT -&gt; BTC-USD in the store (ok runs with identical daily "
        "returns count once; 5 ok runs in all)</td>"
    ) in html
