"""The signal chart: the index with its all-time-high line and signals, the asset with trades.

Drawn on a plain Agg canvas (no pyplot, no display), so it works anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from riskon.pages.files import write_atomic
from riskon.pages.html import literal_text


def signal_chart(result, path: str | Path) -> Path:
    """Write a two-panel PNG: index close + ATH + confirmed signals; asset close + entries/exits."""
    figure = literal_text(signal_figure(result))
    return write_atomic(path, lambda f: figure.savefig(f, format="png"))


def signal_figure(result) -> Figure:
    """The signal chart as a figure on an Agg canvas (for files, HTML pages and notebooks)."""
    bars = result.bars
    start, end = bars.index[0].tz_convert(None), bars.index[-1].tz_convert(None)
    sess = result.sessions
    sess = sess[(sess.index >= start - pd.Timedelta(days=30)) & (sess.index <= end)]
    fig = Figure(figsize=(13, 8), dpi=110)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.2]})
    cfg = result.config
    ax1.plot(sess.index, sess["idx_close"], lw=0.8, color="#1f4e79", label=f"{cfg.data['index']} close")
    ax1.plot(sess.index, sess["idx_ath"], lw=0.8, color="#999999", ls="--", label="all-time high")
    sig = sess[sess["signal"]] if "signal" in sess else sess.iloc[:0]
    ax1.scatter(sig.index, sig["idx_close"], s=10, color="#d62728", zorder=3, label="entry-rule signal")
    ax1.set_yscale("log")
    ax1.legend(loc="upper left", fontsize=8)
    ax1.set_title(f"{cfg.name}: {cfg.data['index']} signal → {cfg.data['asset']}", fontsize=11)
    naive = bars.index.tz_convert(None)
    ax2.plot(naive, bars["close"], lw=0.8, color="#333333", label=f"{cfg.data['asset']} close")
    tr = result.trades
    if len(tr):
        ax2.scatter(tr["entry_time"].dt.tz_convert(None), tr["entry_price"], marker="^", s=36, color="#2ca02c",
                    zorder=3, label="entry fill")  # fmt: skip
        closed = tr[~tr["open"]]
        ax2.scatter(closed["exit_time"].dt.tz_convert(None), closed["exit_price"], marker="v", s=36,
                    color="#d62728", zorder=3, label="exit fill")  # fmt: skip
        for t in tr.itertuples():
            ax2.axvspan(t.entry_time.tz_convert(None), t.exit_time.tz_convert(None), color="#2ca02c", alpha=0.08)
    ax2.set_yscale("log")
    ax2.legend(loc="upper left", fontsize=8)
    ax2.set_xlim(start, end)
    fig.tight_layout()
    return fig
