"""Tables the commands print (rich): metrics beside buy-and-hold, trade lists; shared by every command module."""

from __future__ import annotations

import pandas as pd
from rich.table import Table

from riskon.metrics import LABELS, format_metric, price_text


def metrics_table(metrics: pd.DataFrame, title: str) -> Table:
    """The metrics side by side: strategy against buy-and-hold."""
    table = Table(title=title)
    table.add_column("metric")
    for col in metrics.columns:
        table.add_column(col.replace("_", " "), justify="right")
    for name in metrics.index:
        table.add_row(LABELS.get(name, name), *(format_metric(name, metrics.at[name, c]) for c in metrics.columns))
    return table


SURVIVORSHIP = (
    "survivorship bias: this coin list was chosen today, among coins that still trade; "
    "coins that died or were delisted earlier are missing, which flatters basket results"
)


def trades_table(trades: pd.DataFrame, title: str = "trades") -> Table:
    """The trade list (one row per coin leg), fill dates and prices; an open trade is marked."""
    table = Table(title=title)
    multi = trades["asset"].nunique() > 1 if len(trades) else False
    asset_col = (("asset", "left"),) if multi else ()
    for col, just in (("#", "right"), *asset_col, ("signal", "left"), ("entry", "left"), ("entry px", "right"),
                      ("exit", "left"), ("exit px", "right"), ("reason", "left"), ("days", "right"),
                      ("pnl", "right"), ("return", "right")):  # fmt: skip
        table.add_column(col, justify=just)
    for t in trades.itertuples():
        ret = t.pnl / (t.size * t.entry_price + t.entry_fee)
        table.add_row(
            str(t.position + 1),
            *((t.asset,) if multi else ()),
            "-" if pd.isna(t.signal_session) else t.signal_session.strftime("%Y-%m-%d"),
            t.entry_time.strftime("%Y-%m-%d"),
            price_text(t.entry_price),
            t.exit_time.strftime("%Y-%m-%d") + (" (open)" if t.open else ""),
            price_text(t.exit_price),
            t.exit_reason,
            f"{(t.exit_time - t.entry_time).days}",
            f"{t.pnl:,.2f}",
            f"{ret:+.2%}",
            style="italic yellow" if t.open else None,
        )
    return table
