"""``riskon check lookahead``: prove that rules do not peek at the future, at every session."""

from __future__ import annotations

import time

import typer

from riskon.cli.console import console, styled

app = typer.Typer(help="Checks of rules and data.", no_args_is_help=True, rich_markup_mode=None)


@app.command("lookahead")
def lookahead_cmd(
    names: list[str] = typer.Argument(None, help="Rules to check (default: every registered rule)."),
    index: str = typer.Option("^RUT", help="Index the rules read."),
    asset: str = typer.Option("BTC-USD", help="Asset whose bars the rules are aligned to."),
    start: str = typer.Option("2014-01-01", help="First asset bar used."),
    lag: float = typer.Option(0.0, help="Publication lag in hours."),
    sampled: bool = typer.Option(
        False, "--sampled", help="The older sampled check (cuts around sampled signals, strategy decisions too)."
    ),
    signals: int = typer.Option(40, help="With --sampled: signals sampled; cut just before, at and after each."),
    random_cuts: int = typer.Option(20, "--random", help="With --sampled: cuts at random instants."),
    backtests: int = typer.Option(4, help="With --sampled: cuts at which the strategy's decisions are compared."),
    seed: int = typer.Option(0, help="With --sampled: seed of the sampled and random cuts."),
) -> None:
    """At every index session (and asset bar), recompute each rule on the data known then; fail if its output changes.

    Exhaustive: a peek on a single date, and one that only suppresses signals, are caught.
    """
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs, not for every riskon command
    import pandas as pd

    from feeds.align import align, session_frame
    from feeds.loader import load
    from strategies import rules
    from strategies.lookahead import check, first_peek, rule_frame

    out = console(width=160)
    idx = load(index, "1d")
    ast_full = load(asset, "1d")
    ast = ast_full[ast_full.index >= pd.Timestamp(start, tz="UTC")]
    ast.attrs = dict(ast_full.attrs)
    sessions = session_frame(idx)
    bars = None
    failed = []
    for name in names or rules.available():
        rule = rules.make(name)
        t0 = time.perf_counter()
        if sampled:
            diffs = check(
                rule, idx, ast, lag=lag, n_signal=signals, n_random=random_cuts, n_backtest=backtests, seed=seed,
                start=start,
            )  # fmt: skip
            problem = f"{len(diffs)} difference(s); first: {diffs[0]}" if diffs else None
        else:
            if rule.on != "index" and bars is None:
                bars = align(ast, sessions, lag=lag)
            peek = first_peek(rule, rule_frame(rule, sessions, bars))
            problem = None if peek is None else str(peek)
        seconds = time.perf_counter() - t0
        if problem:
            failed.append(name)
            out.print(styled(("FAIL", "red"), f" {name}: {problem}"), highlight=False)
        else:
            out.print(styled(("ok", "green"), f"   {name} ({seconds:.1f} s)"), highlight=False)
    if failed:
        raise typer.Exit(1)
