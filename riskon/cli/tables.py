"""Tables the commands print (rich): metrics beside buy-and-hold, trade lists; shared by every command module."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table

from feeds.symbols import split_exchange_symbol
from riskon.analysis.trade_stats import format_trade_stat, trade_days, trade_returns, trade_stats
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

#: A trade-table column: header, justification, and the cell text of one trade row (a dict of shown values).
Column = tuple[str, str, Callable[[dict[str, str]], str]]


def _cell(*keys: str) -> Callable[[dict[str, str]], str]:
    return lambda row: "\n".join(row[k] for k in keys)


class TradesTable:
    """The trade list as the widest layout that fits the console, so that every value is shown whole.

    Where there is room (about 120 columns for one coin): one line per leg. Narrower (to 80 columns): each leg
    folds onto two lines (entry date over entry price, exit date over exit price, reason over days,
    pnl over return); a basket's asset goes over the signal session, without a shared exchange prefix
    (named in the title). Under the table: the run's per-position statistics (``trade_stats``).
    """

    def __init__(self, trades: pd.DataFrame, title: str = "trades") -> None:
        self.trades, self.title = trades, title
        self.rows = [self._shown(t, r, d) for t, r, d in zip(trades.itertuples(), trade_returns(trades),
                                                             trade_days(trades), strict=True)]  # fmt: skip
        self.multi = bool(len(trades)) and trades["asset"].nunique() > 1
        self.caption = self._caption()

    @staticmethod
    def _shown(t, ret: float, days: int) -> dict[str, str]:
        return {
            "#": str(t.position + 1),
            "asset": t.asset,
            "signal": "-" if pd.isna(t.signal_session) else t.signal_session.strftime("%Y-%m-%d"),
            "entry": t.entry_time.strftime("%Y-%m-%d"),
            "entry px": price_text(t.entry_price),
            "exit": t.exit_time.strftime("%Y-%m-%d"),
            "exit (open)": t.exit_time.strftime("%Y-%m-%d") + (" (open)" if t.open else ""),
            "exit px": price_text(t.exit_price),
            "reason": t.exit_reason,
            "days": f"{days}",
            "days d": f"{days} d",
            "pnl": f"{t.pnl:,.2f}",
            "return": f"{ret:+.2%}",
        }

    def layouts(self) -> Iterator[Table]:
        """Every layout, widest first; the last folds even a value that does not fit (never cuts it)."""
        asset = [("asset", "left", _cell("asset"))] if self.multi else []
        yield self._table(self.title, [("#", "right", _cell("#")), *asset, ("signal", "left", _cell("signal")),
            ("entry", "left", _cell("entry")), ("entry px", "right", _cell("entry px")),
            ("exit", "left", _cell("exit (open)")), ("exit px", "right", _cell("exit px")),
            ("reason", "left", _cell("reason")), ("days", "right", _cell("days")), ("pnl", "right", _cell("pnl")),
            ("return", "right", _cell("return"))], folded=False)  # fmt: skip
        tail: list[Column] = [("entry\nprice", "right", _cell("entry", "entry px")),
            ("exit\nprice", "right", _cell("exit", "exit px")), ("reason\ndays", "left", _cell("reason", "days d")),
            ("pnl\nreturn", "right", _cell("pnl", "return"))]  # fmt: skip
        yield self._table(self.title, [("#", "right", _cell("#")), *asset, ("signal", "left", _cell("signal")), *tail])
        if self.multi:
            columns = [("#", "right", _cell("#")), ("asset\nsignal", "left", _cell("asset", "signal")), *tail]
            yield self._table(self.title, columns)
            exchanges = {(split_exchange_symbol(r["asset"]) or ("", ""))[0] for r in self.rows}
            if len(exchanges) == 1 and "" not in exchanges:
                (exchange,) = exchanges
                rows = [{**r, "asset": r["asset"].removeprefix(f"{exchange}:")} for r in self.rows]
                yield self._table(f"{self.title} ({exchange})", columns, rows=rows)

    def _table(
        self, title: str, columns: list[Column], folded: bool = True, rows: list[dict[str, str]] | None = None
    ) -> Table:
        table = Table(title=title, caption=self.caption, caption_justify="left", show_lines=folded)
        for header, just, _ in columns:
            table.add_column(header, justify=just, overflow="fold")
        for t, row in zip(self.trades.itertuples(), rows or self.rows, strict=True):
            table.add_row(*(cell(row) for _, _, cell in columns), style="italic yellow" if t.open else None)
        return table

    def _caption(self) -> str | None:
        if self.trades.empty:
            return None
        s = {k: format_trade_stat(k, v) for k, v in trade_stats(self.trades).items()}
        return (
            f"per position: expectancy {s['expectancy']} ({s['expectancy_return']}); SQN {s['sqn']} (N capped at "
            f"100); longest losing streak {s['max_losing_streak']}; holding days min {s['hold_days_min']}, "
            f"median {s['hold_days_median']}, max {s['hold_days_max']}"
        )

    def choose(self, console: Console, options: ConsoleOptions) -> Table:
        """The widest layout whose natural width fits ``options.max_width`` (else the narrowest)."""
        table, unbounded = None, options.update(max_width=1 << 16)  # Measurement.get clamps to max_width
        for table in self.layouts():
            if Measurement.get(console, unbounded, table).maximum <= options.max_width:
                return table
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Render the chosen layout."""
        yield self.choose(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        """The chosen layout's measurement."""
        return Measurement.get(console, options, self.choose(console, options))


def trades_table(trades: pd.DataFrame, title: str = "trades") -> TradesTable:
    """The trade list (one row per coin leg), fill dates and prices, days and net return; an open trade is marked.

    ``days`` and ``return`` are ``riskon.analysis.trade_stats``'s (the same numbers as ``trades.csv``).
    """
    return TradesTable(trades, title)
