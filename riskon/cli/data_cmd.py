"""``riskon data``: fetch, import, list and show cached series."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from feeds.cache import Cache
from feeds.deadline import DEFAULT_DEADLINE
from feeds.errors import DataError
from feeds.loader import csv_files, data_dir, fetch, fill_from_data_dir, import_files
from feeds.symbols import canonical_symbol, canonical_timeframe, filename_for
from feeds.yields import UNITS, YieldCache, import_yields
from riskon.cli.console import console, styled

app = typer.Typer(help="Fill, inspect and list the local price cache.", no_args_is_help=True, rich_markup_mode=None)
out = console(width=200)
err = console(stderr=True, width=200)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # a log or a pipe gets the result lines only, no blank line left behind
    )


def _print_warnings(warnings, quiet: bool = False) -> None:
    for w in warnings:
        err.print(styled(("warning:", "yellow"), f" {w}"), highlight=False, soft_wrap=True)


@app.command("fetch")
def fetch_cmd(
    symbols: list[str] = typer.Argument(
        ..., help="Yahoo symbols (^RUT, IWM, BTC-USD) or exchange pairs (binance:BTC/USDT)."
    ),
    start: str = typer.Option(None, help="First date (YYYY-MM-DD); default: all history, or the cached tail."),
    end: str = typer.Option(None, help="End date (exclusive)."),
    timeframe: str = typer.Option("1d", "--timeframe", "-t", help="Bar length: 1d, 4h, 1h, ..."),
    deadline: float = typer.Option(DEFAULT_DEADLINE, help="Seconds before a fetch is cut off."),
) -> None:
    """Download series from Yahoo or an exchange into the cache (only the missing tail if cached)."""
    cache = Cache()
    with _progress() as prog:
        task = prog.add_task("fetching", total=len(symbols))

        def say(line: str) -> None:  # the attempt, on the live status line (a log gets the result line only)
            prog.update(task, description=escape(line), refresh=True)

        for sym in symbols:
            prog.update(task, description=escape(f"fetching {sym}"))
            filled = fetch(sym, timeframe, start, end, cache=cache, deadline=deadline, announce=say)
            prog.advance(task)
            _print_warnings(filled.warnings)
            out.print(
                (
                    f"{sym}: +{filled.added} rows from {filled.origin}, {filled.meta['rows']} cached "
                    f"({filled.meta['first'][:10]} .. {filled.meta['last'][:10]})"
                ),
                highlight=False,
            )


@app.command("import")
def import_cmd(
    paths: list[Path] = typer.Argument(..., help="CSV files or folders of CSV files."),
    symbol: str = typer.Option(None, help="Symbol to store a single file under (overrides the file name)."),
    timeframe: str = typer.Option(None, "--timeframe", "-t", help="Bar length when the file name has none (1d)."),
    replace: bool = typer.Option(
        False, "--replace", help="Replace a cached series even when the file drops or rewrites its bars."
    ),
    allow_jumps: bool = typer.Option(
        False, "--allow-jumps", help="Accept a close-to-close move of 1,000x or more (refused as a likely error)."
    ),
    kind: str = typer.Option(
        "price", "--kind", help="price (OHLC bars) or yield (a date and one annual rate per row, e.g. FRED's DGS3MO)."
    ),
    unit: str = typer.Option(None, "--unit", help=f"A yield file's unit: {' or '.join(UNITS)} (annual)."),
) -> None:
    """Validate CSV files and store them in the cache, all or nothing: one bad file and nothing changes."""
    files = csv_files(paths)
    if symbol and len(files) != 1:
        raise typer.BadParameter("--symbol needs exactly one file")
    if kind not in ("price", "yield"):
        raise DataError(f"unknown kind {kind!r}; use --kind price (OHLC bars) or --kind yield (annual rates)")
    if kind == "yield":
        _import_yields(files, symbol, unit, replace)
        return
    if unit is not None:
        raise DataError(f"--unit {unit} applies to yield series only; add --kind yield or drop --unit")
    with _progress() as prog:
        task = prog.add_task("importing", total=len(files))

        def step(path: Path) -> None:
            prog.update(task, description=escape(f"validating {path.name}"))
            prog.advance(task)

        done = import_files(files, symbol=symbol, cache=Cache(), replace=replace, timeframe=timeframe,
                            allow_jumps=allow_jumps, progress=step)  # fmt: skip
    for f, filled in zip(files, done, strict=True):
        _print_warnings(filled.warnings)
        m = filled.meta
        out.print(
            (f"{m['symbol']} ({m['timeframe']}): {m['rows']} rows {m['first'][:10]} .. {m['last'][:10]} ")
            + (f"from {f.name}"),
            highlight=False,
        )


def _import_yields(files: list[Path], symbol: str | None, unit: str | None, replace: bool) -> None:
    """``riskon data import --kind yield``: every file checked, then all stored in the cache's yield folder."""
    for f, done in zip(files, import_yields(files, unit, symbol, Cache(), replace=replace), strict=True):
        for note in done.notes:
            err.print(note, highlight=False, soft_wrap=True)
        m = done.meta
        out.print(
            f"{m['symbol']} (yield, {unit} -> annual fraction): {m['rows']} values {m['first'][:10]} .. "
            f"{m['last'][:10]} from {f.name}",
            highlight=False,
        )


@app.command("list")
def list_cmd() -> None:
    """List every cached series: symbol, source, timeframe, first, last, rows, fingerprint; then the yields."""
    cache = Cache()
    df = cache.list()
    yields = YieldCache(cache).list()
    if df.empty and yields.empty:
        out.print(
            (f"the cache {cache.root} is empty; run `riskon data import FOLDER` or `riskon data fetch SYMBOL`"),
            highlight=False,
        )
        return
    if not df.empty:
        table = Table(title=(f"cache: {cache.root}"))
        for col in ("symbol", "source", "timeframe", "first", "last", "rows", "fingerprint"):
            table.add_column(col, justify="right" if col == "rows" else "left")
        for r in df.itertuples():
            cells = (r.symbol, r.source, r.timeframe, r.first[:10], r.last[:10], str(r.rows), r.fingerprint)
            table.add_row(*cells)
        out.print(table)
    if not yields.empty:
        table = Table(title=f"yield series (annual rates): {YieldCache(cache).root}")
        for col in ("symbol", "source", "first", "last", "values", "fingerprint"):
            table.add_column(col, justify="right" if col == "values" else "left")
        for r in yields.itertuples():
            table.add_row(r.symbol, r.source, r.first[:10], r.last[:10], str(r.rows), r.fingerprint)
        out.print(table)


def _show_yield(store: YieldCache, symbol: str, rows: int) -> None:
    """``riskon data show`` of a yield series: its metadata, then dated values in percent a year."""
    meta = store.info(symbol, "1d")
    frame = store.read(symbol, "1d")
    meta = {**meta, "first": meta["first"][:10], "last": meta["last"][:10], "kind": "yield"}
    for k in ("symbol", "kind", "unit", "source", "first", "last", "rows", "fingerprint", "fetched_at"):
        out.print(f"{k:>11}: {meta.get(k, '')}", highlight=False)
    out.print(f"{'known at':>11}: each date's NYSE close (16:00 New York when closed) + the run's publication lag",
              highlight=False)  # fmt: skip
    dates = frame.index.tz_convert(meta["tz"]).strftime("%Y-%m-%d")
    local = pd.DataFrame({"percent a year": frame["value"].to_numpy() * 100.0}, index=pd.Index(dates, name="date"))
    out.print(local.head(rows).to_string(), highlight=False)
    out.print("...")
    out.print(local.tail(rows).to_string(), highlight=False)


@app.command("show")
def show_cmd(
    symbol: str = typer.Argument(..., help="A cached symbol (a price series, or a yield series)."),
    timeframe: str = typer.Option("1d", "--timeframe", "-t"),
    rows: int = typer.Option(5, help="Rows to show from each end."),
) -> None:
    """Show a cached series' metadata and its first and last rows (filled from RISKON_DATA first, as run does)."""
    cache = Cache()
    yields = YieldCache(cache)
    if not cache.has(symbol, timeframe) and yields.has(symbol, "1d"):
        _show_yield(yields, symbol, rows)
        return
    if not cache.has(symbol, timeframe):
        # as `riskon run` does: a series missing from the cache is imported from RISKON_DATA, announced
        filled = fill_from_data_dir(symbol, timeframe, cache, announce=lambda m: err.print(m, highlight=False))
        folder = data_dir()
        if filled is None and folder is not None:
            sym, tf = canonical_symbol(symbol), canonical_timeframe(timeframe)
            raise DataError(
                f"{sym} ({tf}) is not in the cache {cache.root} and RISKON_DATA={folder} has no file for it "
                f"(expected {filename_for(sym, tf)}); run `riskon data fetch {sym}` or `riskon data import FILE`"
            )
    meta = cache.info(symbol, timeframe)  # rows, first and last bar recomputed from the data, not the sidecar
    frame = cache.read(symbol, timeframe)
    for k in ("symbol", "source", "timeframe", "tz", "first", "last", "rows", "fingerprint", "fetched_at"):
        out.print((f"{k:>11}: {meta[k]}"), highlight=False)
    local = frame.copy()
    local.index = local.index.tz_convert(meta["tz"])
    out.print((local.head(rows).to_string()), highlight=False)
    out.print("...")
    out.print((local.tail(rows).to_string()), highlight=False)
