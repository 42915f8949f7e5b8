"""The robustness block of the sweep report: PSR, DSR and PBO as a table, and the chart of the CSCV logits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from riskon.analysis.comparison import one_line
from riskon.analysis.overfitting import PBOResult, RobustnessError
from riskon.analysis.robustness import SweepRobustness, sweep_robustness
from riskon.pages.html import esc, figure, new_figure, table
from riskon.sweeps.store import Store


def logit_figure(result: PBOResult | SweepRobustness) -> Figure:
    """A histogram of the CSCV logits with the PBO region (logit <= 0) shaded and the PBO in the title.

    ``result``: a ``PBOResult`` or a ``SweepRobustness`` with CSCV. Returns a matplotlib Figure on an Agg
    canvas (``riskon.pages.html.new_figure``), for the sweep report.
    """
    cscv = result.cscv if isinstance(result, SweepRobustness) else result
    if cscv is None:
        raise RobustnessError(f"no CSCV result to draw: {getattr(result, 'pbo_note', '')}")
    fig = new_figure(8, 4)
    ax = fig.add_subplot(1, 1, 1)
    logits = cscv.logits
    lo, hi = float(logits.min()), float(logits.max())
    span = max(hi - lo, 1e-6)
    bins = np.linspace(lo - 0.05 * span, hi + 0.05 * span, min(40, max(10, len(np.unique(logits)))) + 1)
    ax.hist(logits[logits <= 0], bins=bins, color="#c0392b", alpha=0.8, label="logit <= 0 (overfit)")
    ax.hist(logits[logits > 0], bins=bins, color="#2e86c1", alpha=0.8, label="logit > 0")
    ax.axvline(0.0, color="black", lw=1)
    ax.set_xlabel("logit of the in-sample best's out-of-sample relative rank")
    ax.set_ylabel("CSCV combinations")
    ax.set_title(f"PBO = {cscv.pbo:.1%} ({cscv.n_combinations} combinations, {cscv.n_strategies} strategies)")
    ax.legend(loc="upper left", frameon=False)
    fig.subplots_adjust(left=0.9 / 8, right=1 - 0.2 / 8, bottom=0.6 / 4, top=1 - 0.4 / 4)  # fixed: no layout pass
    return fig


def robustness_section(store: Store, sweep_id: str) -> list[str]:
    """PSR, DSR and PBO of the sweep (``riskon.analysis.robustness``), with the chart of the CSCV logits."""
    try:
        res = sweep_robustness(store, sweep_id)
    except ValueError as e:  # RobustnessError: too few runs or no returns
        return [f'<p class="note">Robustness not computed: {esc(one_line(e))}</p>']
    annual = math.sqrt(365)
    rows = [
        ("trials: distinct runs of this strategy in the store (all sweeps)", res.trials_text),
        ("ok runs in this sweep", f"{res.n_ok}"),
        ("best run", f"{res.best_run_id[:12]}"),
        ("best run's Sharpe (365)", _fmt_num(res.sharpe_annual, "{:.2f}")),
        ("expected best Sharpe of that many luck-only trials", _fmt_num(res.sr_star * annual, "{:.2f}")),
        ("probabilistic Sharpe ratio PSR(0)", _fmt_num(res.psr, "{:.1%}")),
        ("deflated Sharpe ratio DSR", _fmt_num(res.dsr, "{:.1%}")),
        (f"probability of backtest overfitting PBO (CSCV, by {res.pbo_objective})", _fmt_num(res.pbo, "{:.1%}")),
    ]
    frame = pd.DataFrame({"value": [v for _, v in rows]}, index=[k for k, _ in rows])
    out = [f'<div id="robustness">{table(frame)}</div>']
    if res.cscv is not None:
        out.append(figure(logit_figure(res), "CSCV logits of the in-sample best run's out-of-sample rank"))
    else:
        out.append(f'<p class="note">PBO not computed: {esc(res.pbo_note)}</p>')
    out.append(
        '<p class="note">PSR(0): the chance that the best run\'s true Sharpe ratio is above zero, given its length, '
        "skew and kurtosis. DSR: the same against the best Sharpe ratio expected from that many trials of pure "
        "luck. PBO: the share of in-sample/out-of-sample splits of the dates where the in-sample best run ranks "
        "below the out-of-sample median (logit &le; 0).</p>"
    )
    return out


def _fmt_num(v, fmt: str = "{:.3f}") -> str:
    return "-" if v is None or v != v else fmt.format(v)
