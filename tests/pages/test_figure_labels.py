"""Labels inside the pages' figures never overlap: tick labels, window and episode labels, and signal markers.

``riskon.pages.charts.overlapping_labels`` measures every drawn tick label and free text with the renderer
(``get_window_extent``) on the figure as it will be saved, and each free text against its axes' scatter
markers. It is checked here by hand-made figures, then run on the figures the page functions build: the
parameter slices of a 10,000-run sweep (``runs/big_sweep.toml``'s grid: 5 x 10 x 5 x 5 x 8), and the
event-study charts of ^RUT/BTC-USD and of the Binance basket from the real snapshot.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskon.pages.charts import overlapping_labels, thin_ticks
from riskon.pages.html import new_figure

ROOT = Path(__file__).resolve().parents[2]


# -- the helper itself -------------------------------------------------------------------------------------
def test_two_texts_on_one_spot_overlap_and_apart_they_do_not():
    fig = new_figure(6, 3)
    ax = fig.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(1, 0.5, "first label")
    ax.text(1.2, 0.5, "second label")
    ax.text(7, 0.5, "far away")
    assert overlapping_labels(fig) == [("label 'first label' (axes 1)", "label 'second label' (axes 1)")]


def test_a_text_over_a_marker_overlaps():
    fig = new_figure(6, 3)
    ax = fig.add_subplot(title="t")
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.scatter([2, 8], [5, 5], s=40, label="signal")
    ax.text(1.9, 4.9, "#18")
    got = overlapping_labels(fig)
    assert got == [("label '#18' (t)", "marker signal #0 (t)")]


def test_crowded_tick_labels_overlap_until_thinned():
    fig = new_figure(3, 2)
    ax = fig.add_subplot(title="t")
    values = [f"{v:g}" for v in np.arange(0.05, 0.51, 0.05)]
    ax.plot(range(10), range(10))
    ax.set_xticks(range(10), values, fontsize=10)
    fig.tight_layout()
    assert any("x tick" in a and "x tick" in b for a, b in overlapping_labels(fig))
    k = thin_ticks(ax, "x", keep=3)
    assert k > 1
    assert overlapping_labels(fig) == []
    shown = [lb.get_text() for lb in ax.get_xticklabels() if lb.get_visible()]
    assert "0.2" in shown and "0.05" in shown  # the kept value (position 3) and the first


# -- the sweep report's slices of a 10,000-run sweep ----------------------------------------------------------
BIG = {
    "confirm_days": [1, 2, 3, 5, 8],
    "trailing_stop": list(np.arange(0.05, 0.50001, 0.05)),  # 0.15000000000000002 and the like, as the grid makes
    "stop": [False, 0.05, 0.10, 0.15, 0.20],
    "take_profit": [False, 0.25, 0.50, 1.00, 2.00],
    "cooldown_days": [0, 3, 7, 14, 30, 60, 90, 180],
}


def big_sweep():
    """A SweepData like big_sweep's: every combination once, a Sharpe ratio from a fixed random stream."""
    from riskon.pages.sweep_page import SweepData

    rows = [dict(zip(BIG, combo, strict=True)) for combo in itertools.product(*BIG.values())]
    runs = pd.DataFrame(rows).astype(object)
    runs["sharpe"] = np.random.default_rng(0).normal(0.5, 0.3, len(runs))
    runs = runs.sort_values("sharpe", ascending=False, kind="stable").reset_index(drop=True)
    runs["run_id"] = [f"{i:012x}" for i in range(len(runs))]
    spec = {"values": {f"p.{k}": v for k, v in BIG.items()}, "objective": "sharpe"}
    return SweepData(None, {"name": "big"}, spec, runs, "sharpe", "maximize", list(BIG), dict(BIG), runs.iloc[0])


def test_slices_of_a_10000_run_sweep_have_apart_tick_labels():
    from riskon.pages.sweep_page import slice_figure

    data = big_sweep()
    assert len(data.runs) == 10_000
    fig = slice_figure(data)
    assert overlapping_labels(fig) == []
    ax = next(a for a in fig.axes if a.get_xlabel() == "trailing_stop")
    shown = [lb.get_text() for lb in ax.get_xticklabels() if lb.get_visible()]
    best = f"{data.best['trailing_stop']:g}"
    assert best in shown and len(shown) >= 4  # the best run's value is labelled, and the axis still reads
    for a in fig.axes:
        if a.get_visible():
            assert a.get_position().width > 0.2  # three slices a row at most: none is squeezed


# -- the event study of ^RUT/BTC-USD and of the basket -------------------------------------------------------
@pytest.mark.parametrize("config", ["seed.toml", "alt_basket.toml"])
def test_event_charts_labels_apart_from_each_other_and_the_signals(config, data_dir):
    from riskon import config as config_mod
    from riskon.analysis.episodes import event_study, settings_from
    from riskon.pages.events_page import returns_chart, timeline_chart

    cfg = config_mod.load(ROOT / "runs" / config)
    study = event_study(cfg, settings_from(cfg, bootstrap=100))
    timeline = timeline_chart(study)
    labels = [t.get_text() for t in timeline.axes[0].texts]
    assert len(labels) >= 5 and all(t.startswith("#") for t in labels)  # the episodes since the coins' data
    assert overlapping_labels(timeline) == []
    assert overlapping_labels(returns_chart(study)) == []
