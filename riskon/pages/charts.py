"""The signal chart, and the label checks every page's figures share.

The signal chart: the index with its all-time-high line and signals, the asset with trades, drawn on a plain
Agg canvas (no pyplot, no display), so it works anywhere. ``overlapping_labels`` finds tick labels and
annotations whose boxes overlap (or that cover a marker) on a figure before it is saved, and ``thin_ticks``
hides tick labels until those left are apart: the pages call it, and the tests guard the pages with it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

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


#: Pixels two boxes may share before they count as overlapping (anti-aliasing, rounding).
TOUCH = 0.5


def _apart(a: Bbox, b: Bbox) -> bool:
    return a.x1 <= b.x0 + TOUCH or b.x1 <= a.x0 + TOUCH or a.y1 <= b.y0 + TOUCH or b.y1 <= a.y0 + TOUCH


def _shown_ticks(axis: Axis) -> list:
    """The tick labels of one axis that are drawn: visible, not empty, their tick inside the view limits."""
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) * 1e-9
    out = []
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        loc = tick.get_loc()
        for label in (tick.label1, tick.label2):
            if loc is not None and lo - span <= loc <= hi + span and label.get_visible() and label.get_text():
                out.append(label)
    return out


def _where(ax: Axes) -> str:
    return ax.get_title() or ax.get_xlabel() or ax.get_ylabel() or f"axes {ax.get_figure().axes.index(ax) + 1}"


def _labels(fig: Figure) -> list[tuple[str, Bbox, Axes | None, bool]]:
    """(name, box in pixels, its axes, whether it is a free text inside the axes) of every checked label."""
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            for label in _shown_ticks(axis):
                out.append((f"{name} tick {label.get_text()!r} ({_where(ax)})", label.get_window_extent(renderer),
                            ax, False))  # fmt: skip
        for text in ax.texts:
            if text.get_visible() and text.get_text().strip():
                out.append((f"label {text.get_text()!r} ({_where(ax)})", text.get_window_extent(renderer), ax, True))
    return out


def _markers(fig: Figure) -> list[tuple[str, Bbox, Axes]]:
    """(name, box in pixels, axes) of every scatter marker drawn inside the axes' view."""
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        view = ax.get_window_extent()
        for coll in ax.collections:
            if not isinstance(coll, PathCollection) or not coll.get_visible() or not len(coll.get_offsets()):
                continue
            sizes = coll.get_sizes()
            pts = coll.get_offset_transform().transform(coll.get_offsets())
            for k, (x, y) in enumerate(pts):
                side = (sizes[k % len(sizes)] if len(sizes) else 36.0) ** 0.5 * fig.dpi / 72.0  # s is points**2
                if view.x0 <= x <= view.x1 and view.y0 <= y <= view.y1:
                    box = Bbox.from_bounds(x - side / 2, y - side / 2, side, side)
                    out.append((f"marker {coll.get_label() or 'point'} #{k} ({_where(ax)})", box, ax))
    return out


def overlapping_labels(fig: Figure) -> list[tuple[str, str]]:
    """Every pair of labels whose drawn boxes overlap, as ``(name, name)``; empty when all are apart.

    Checked: the tick labels that are drawn (major and minor, both axes, every subplot: across subplots
    too) and the free texts and annotations of each axes; and each such free text against the scatter
    markers of its axes (a label must not hide a point). Boxes come from the renderer
    (``get_window_extent``) after a layout pass without rendering, on the figure as it will be saved.
    """
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    literal_text(fig)
    fig.draw_without_rendering()
    labels = _labels(fig)
    found = []
    for i, (na, a, _, _) in enumerate(labels):
        for nb, b, _, _ in labels[i + 1 :]:
            if not _apart(a, b):
                found.append((na, nb))
    free = [(n, box, ax) for n, box, ax, inside in labels if inside]
    for nm, m, ax_m in _markers(fig):
        for nt, t, ax_t in free:
            if ax_t is ax_m and not _apart(t, m):
                found.append((nt, nm))
    return found


def thin_ticks(ax: Axes, which: str = "x", keep: int | None = None, draw: bool = True) -> int:
    """Hide tick labels of one axis, keeping every k-th (k = 1, 2, 3, ...), until those shown are apart.

    Returns k. Labels ``0, k, 2k, ...`` stay, and the label at position ``keep`` (the best run's value)
    replaces a neighbour it would touch. Call it once the layout is final (after ``tight_layout``): a
    many-valued parameter keeps readable labels instead of a smear. ``draw=False``: the caller has laid
    the figure out already (``draw_without_rendering``, once for all its axes: hiding labels moves nothing).
    """
    fig = ax.get_figure()
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    axis = ax.xaxis if which == "x" else ax.yaxis
    if draw:
        fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    labels = _shown_ticks(axis)
    boxes = [lb.get_window_extent(renderer) for lb in labels]
    for k in range(1, max(len(labels), 1) + 1):
        shown = [j for j in range(len(labels)) if j % k == 0]
        if keep is not None and 0 <= keep < len(labels) and keep not in shown:
            shown = sorted([j for j in shown if _apart(boxes[j], boxes[keep])] + [keep])
        if all(_apart(boxes[a], boxes[b]) for a, b in zip(shown, shown[1:], strict=False)):
            break
    for j, label in enumerate(labels):
        label.set_visible(j in shown)
    return k
