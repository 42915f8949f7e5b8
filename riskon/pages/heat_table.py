"""Heatmaps as HTML tables: every cell's value on its colour, the best run's cell framed.

The sweep report shows the objective over each pair of swept parameters twice (the rest at the best run's
values, and the median over the rest). As matplotlib figures those were ~0.5 s of CPU apiece, mostly
drawing the cells' numbers (ten pairs for a five-parameter grid: ~6 s of a report); as tables they cost
milliseconds, show the same numbers and colours (matplotlib's colour map, one scale for both panels), and
their numbers can be read and copied.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskon.pages.html import esc

#: A heat table's own style (the page's ``table`` rules give borders and font size).
STYLE = "display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start"
CELL = "text-align:center;padding:2px 5px;min-width:2.6em"


def _colours(values: np.ndarray, cmap: str, lo: float, hi: float) -> list[str]:
    """CSS background (white text on a dark one) of ``values`` on ``cmap`` from ``lo`` to ``hi`` (white: missing)."""
    # matplotlib loads only when a report is drawn
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    span = hi - lo if hi > lo else 1e-9
    scaled = np.clip((values - lo) / span, 0.0, 1.0)
    rgba = colormaps[cmap](np.where(np.isfinite(scaled), scaled, 0.0))
    dark = rgba[:, :3] @ np.array([0.299, 0.587, 0.114]) < 0.45  # white numbers on the deep ends of the scale
    return [
        (f"{to_hex(c)};color:#fff" if d else to_hex(c)) if np.isfinite(v) else "#ffffff"
        for c, d, v in zip(rgba, dark, values, strict=True)
    ]


def heat_table(grid: pd.DataFrame, title: str, x: str, y: str, best: tuple, cmap: str, lo: float, hi: float,
               fmt=str) -> str:  # fmt: skip
    """One heatmap as an HTML table: ``grid`` rows (``y`` values) by columns (``x`` values), ``best`` = (y, x).

    Each cell holds its value to two decimals ("-" when missing) on its colour; the best run's cell is
    framed. ``fmt`` writes the parameter values of the headers.
    """
    vals = grid.to_numpy(dtype="float64")
    colours = np.array(_colours(vals.ravel(), cmap, lo, hi)).reshape(vals.shape) if vals.size else vals
    head = "".join(f'<th style="text-align:center">{esc(fmt(c))}</th>' for c in grid.columns)
    rows = []
    for i, yv in enumerate(grid.index):
        cells = []
        for j, xv in enumerate(grid.columns):
            v = vals[i, j]
            frame = ";outline:3px solid #000;outline-offset:-3px" if (yv, xv) == best else ""
            text = f"{v:.2f}" if np.isfinite(v) else "-"
            cells.append(f'<td style="{CELL};background:{colours[i, j]}{frame}">{text}</td>')
        rows.append(f"<tr><th>{esc(fmt(yv))}</th>{''.join(cells)}</tr>")
    corner = f"{esc(y)} \\ {esc(x)}"
    return (
        f'<div><p class="sub" style="margin:.2em 0">{esc(title)}</p><table class="heat">'
        f"<tr><th>{corner}</th>{head}</tr>{''.join(rows)}</table></div>"
    )


def heat_pair(grids: list[tuple[str, pd.DataFrame]], x: str, y: str, best: tuple, label: str, direction: str,
              fmt=str) -> str:  # fmt: skip
    """Two heatmaps of one pair side by side on one colour scale (red low, green high; reversed to minimise)."""
    both = np.concatenate([g.to_numpy(dtype="float64").ravel() for _, g in grids])
    both = both[np.isfinite(both)]
    lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
    cmap = "RdYlGn_r" if direction == "minimize" else "RdYlGn"
    scale = f"colour scale {lo:.2f} (red) to {hi:.2f} (green)" if direction != "minimize" else (
        f"colour scale {lo:.2f} (green) to {hi:.2f} (red)")  # fmt: skip
    tables = "".join(heat_table(g, t, x, y, best, cmap, lo, hi, fmt) for t, g in grids)
    return (
        f'<div class="heatpair"><p><b>{esc(label)} over {esc(x)} (columns) and {esc(y)} (rows)</b>; '
        f'framed: the best run; {esc(scale)}</p><div style="{STYLE}">{tables}</div></div>'
    )


__all__ = ["heat_pair", "heat_table"]
