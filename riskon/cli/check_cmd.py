"""``riskon check lookahead``: prove that rules do not peek at the future."""

from __future__ import annotations

import pandas as pd
import typer

from feeds.loader import load
from riskon.cli.console import console, styled
from strategies import rules

app = typer.Typer(help="Checks of rules and data.", no_args_is_help=True, rich_markup_mode=None)


@app.command("lookahead")
def lookahead_cmd(
    names: list[str] = typer.Argument(None, help="Rules to check (default: every registered rule)."),
    index: str = typer.Option("^RUT", help="Index the rules read."),
    asset: str = typer.Option("BTC-USD", help="Asset whose bars the rules are aligned to."),
    start: str = typer.Option("2014-01-01", help="First asset bar used."),
    lag: float = typer.Option(0.0, help="Publication lag in hours."),
    signals: int = typer.Option(40, help="Signals sampled; the data is cut just before, at and after each."),
    random_cuts: int = typer.Option(20, "--random", help="Cuts at random instants."),
    backtests: int = typer.Option(4, help="Cuts at which the strategy's decisions are compared too."),
    seed: int = typer.Option(0, help="Seed of the sampled and random cuts."),
) -> None:
    """Cut the raw sources at many UTC instants, re-align, recompute; fail if an earlier signal changes."""
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from strategies.lookahead import check

    out = console(width=160)
    idx = load(index, "1d")
    ast_full = load(asset, "1d")
    ast = ast_full[ast_full.index >= pd.Timestamp(start, tz="UTC")]
    ast.attrs = dict(ast_full.attrs)
    failed = []
    for name in names or rules.available():
        diffs = check(
            rules.make(name), idx, ast, lag=lag, n_signal=signals, n_random=random_cuts, n_backtest=backtests,
            seed=seed, start=start,
        )  # fmt: skip
        if diffs:
            failed.append(name)
            out.print(
                styled(("FAIL", "red"), f" {name}: {len(diffs)} difference(s); first: {diffs[0]}"), highlight=False
            )
        else:
            out.print(styled(("ok", "green"), f"   {name}"), highlight=False)
    if failed:
        raise typer.Exit(1)
