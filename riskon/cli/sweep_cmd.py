"""``riskon sweep``, ``riskon results`` and ``riskon report``: run, query and revisit sweeps."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from riskon.cli.console import console, styled
from riskon.metrics import METRICS, format_metric
from riskon.pages.paths import inside, safe_name
from riskon.sweeps import query
from riskon.sweeps.dask_security import tls_files
from riskon.sweeps.spec import MAX_COMBINATIONS
from riskon.sweeps.store import DEFAULT_DB, FIELD_COLS, Store, rank_runs

if TYPE_CHECKING:
    from riskon.analysis.walk_forward import WalkForwardResult


def runs_table(df: pd.DataFrame, title: str, metrics: list[str]) -> Table:
    """Runs with their parameters and chosen metrics."""
    table = Table(title=title)
    skip = {"sweep_id", "params", "status", "error", "seconds", "finished", "worker", "returns_start", "engine",
            "bench_id", *METRICS, *FIELD_COLS}  # fmt: skip
    params = [c for c in df.columns if c not in skip and c != "run_id"]
    for col in ["run_id", *params, *metrics]:
        table.add_column(col, justify="left" if col == "run_id" else "right")
    for r in df.to_dict("records"):
        cells = [str(r["run_id"])[:12]] + [str(r[p]) for p in params]
        cells += [format_metric(m, r[m]) if r.get("status", "ok") == "ok" else "error" for m in metrics]
        table.add_row(*cells)
    return table


def sweep_cmd(
    config: Path = typer.Argument(..., help="A config with a [sweep] section."),
    workers: int = typer.Option(2, "--workers", "-w", help="Local worker processes (1 = in this process)."),
    scheduler: str = typer.Option(None, help="Dask: 'local' starts a LocalCluster; tcp://host:port joins one."),
    db: Path = typer.Option(DEFAULT_DB, help="DuckDB results store."),
    top: int = typer.Option(10, help="Best runs shown at the end."),
    engine: str = typer.Option("auto", help="fast (vectorised), backtrader, or auto (fast when it can)."),
    verify: int = typer.Option(0, help="Re-run this many random runs plus the top 3 in backtrader and compare."),
    max_combinations: int = typer.Option(
        MAX_COMBINATIONS, "--max-combinations", min=1, help="Refuse a larger sweep (counted before anything runs)."
    ),
    allow_lookahead: bool = typer.Option(
        False, "--allow-lookahead", help="Run even if a rule fails the lookahead check (the sweep is marked)."
    ),
    tls_ca: Path = typer.Option(None, "--tls-ca", help="A tls:// scheduler: the CA certificate (PEM)."),
    tls_cert: Path = typer.Option(None, "--tls-cert", help="A tls:// scheduler: this client's certificate (PEM)."),
    tls_key: Path = typer.Option(None, "--tls-key", help="A tls:// scheduler: this client's private key (PEM)."),
) -> None:
    """Run a parameter sweep (or resume it): every combination once, committed in batches."""
    # the API loads on first use (keeps `import riskon` light)
    from riskon import api

    out, err = console(), console(stderr=True)
    progress = Progress(
        TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err, disable=not err.is_terminal,
    )  # fmt: skip
    task = progress.add_task("sweep", total=None, rate="")
    state = {"last": 0, "shown": 0.0}

    def tick(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - state["shown"] < 0.1:  # a fast sweep reports thousands of runs a second
            return
        state["shown"] = now
        t = progress.tasks[0]
        rate = f"{t.speed:.2f} runs/s" if t.speed else ""
        progress.update(task, completed=done, total=total, rate=rate)
        if not err.is_terminal and done - state["last"] >= max(total // 10, 1):
            err.print(f"sweep: {done}/{total}", highlight=False)
            state["last"] = done

    try:
        with progress, tls_files(tls_ca, tls_cert, tls_key):
            res = api.sweep(config, db=db, workers=workers, scheduler=scheduler, progress=tick, engine=engine,
                            announce=lambda m: err.print(m, highlight=False, markup=False),
                            max_combinations=max_combinations, allow_lookahead=allow_lookahead)  # fmt: skip
    except KeyboardInterrupt:
        err.print(f"interrupted: finished batches are stored in {db}; run the same command again to resume")
        raise typer.Exit(130) from None
    best = res.best(top)  # ranked in the store: nothing reads every run of a large sweep
    out.print(
        styled(
            (res.name, "bold"),
            f" ({res.sweep_id}): {res.total} combinations, {res.already_done} already stored, "
            f"{res.ran} run now ({res.failed} failed) in {res.seconds:.1f} s on {res.executor}"
            + (f"; {res.skipped} skipped by rule constraints" if res.skipped else ""),
        ),
        highlight=False,
    )
    flagged = Store(db).lookahead(res.sweep_id) if allow_lookahead else None  # marked by riskon.lookahead_gate
    if flagged:
        out.print(f"warning: lookahead check FAILED, run allowed by --allow-lookahead: {flagged}", highlight=False,
                  markup=False, soft_wrap=True)  # fmt: skip
    metrics = list(dict.fromkeys([res.objective, "cagr", "sharpe", "max_drawdown", "trades"]))
    out.print(runs_table(best, f"best {len(best)} by {res.objective}", metrics))
    stored, failed = res.counts()
    for run_id, error in res.failures(5) if failed else []:
        err.print(f"failed {run_id[:12]}: {error}", highlight=False, markup=False)
    if verify:
        # the sweep machinery (DuckDB, pools) loads only for a sweep
        from riskon.sweeps.verify import verify_runs

        ok = res.runs[res.runs["status"] == "ok"]
        picked = verify_runs(config, ok, res.objective, res.direction, verify, store=Store(db))
        bad = [v for v in picked if v["differences"]]
        for v in picked:
            mark = ("DIFF", "red") if v["differences"] else ("same", "green")
            what = "; ".join(v["differences"][:3]) or "metrics equal"
            out.print(
                styled("verify ", mark, f" {v['run_id'][:12]} ({v['engine']} vs backtrader): {what}"), highlight=False
            )
        if bad:
            err.print(f"verify: {len(bad)} of {len(picked)} runs differ from backtrader")
            raise typer.Exit(1)
        out.print(f"verify: {len(picked)} runs re-run in backtrader, zero differences", highlight=False)
    if failed:
        err.print(
            f"sweep: {failed} of {stored} runs failed, {stored - failed} ok (the first errors are above); "
            "fix the cause and run the same command again: failed runs are retried, finished ones kept",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(1)


#: Where ``riskon results --export`` writes by default (git-ignored, like everything under runs/).
EXPORTS_DIR = Path("runs") / "exports"


def results_cmd(
    sweep: str = typer.Argument(None, help="Sweep name or id (default: the newest)."),
    top: int = typer.Option(20, help="Rows shown."),
    sort: str = typer.Option("sharpe", help=f"Metric to sort by: {', '.join(METRICS)}."),
    ascending: bool = typer.Option(False, "--ascending", help="Smallest first."),
    where: str = typer.Option(
        None,
        help='Filter: metrics and parameters, numbers, < <= > >= == !=, and/or/not, e.g. "sharpe > 0.8 and '
        'confirm_days >= 2".',
    ),
    export: str = typer.Option(None, help="Write every matching run: csv or parquet."),
    out_path: Path = typer.Option(None, "--out", help="Export file (default: runs/exports/<sweep>.<format>)."),
    db: Path = typer.Option(DEFAULT_DB, help="DuckDB results store."),
    splits: int = typer.Option(16, "--splits", help="CSCV blocks for the probability of backtest overfitting."),
) -> None:
    """Query a sweep's stored runs: best by a metric, filtered, exported with run ids and parameters.

    After the table comes the sweep's robustness (over all its ok runs, whatever --where keeps):
    trials of the strategy in the store, the best run's Sharpe, PSR, DSR and PBO (see the docs' walk-forward
    and overfitting guide); then, when the sweep's config has a [walkforward] table, its walk-forward from
    the stored runs.
    """
    if sort not in METRICS:
        raise typer.BadParameter(f"unknown metric {sort!r}; valid: {', '.join(METRICS)}", param_hint="--sort")
    if export and export not in ("csv", "parquet"):
        raise typer.BadParameter("csv or parquet", param_hint="--export")
    if where is not None:
        query.parse(where)  # refused before the store is opened; names are checked against the runs below
    if splits < 2 or splits > 20 or splits % 2:
        raise typer.BadParameter(f"an even number from 2 to 20, got {splits}", param_hint="--splits")
    store = Store(db)
    with store.session():  # every read below shares one connection (opening the file costs ~0.1 s a time)
        _answer(store, sweep, top, sort, ascending, where, export, out_path, splits)


def _answer(store: Store, sweep: str | None, top: int, sort: str, ascending: bool, where: str | None,
            export: str | None, out_path: Path | None, splits: int) -> None:  # fmt: skip
    """``riskon results`` once its options are checked: the table, the robustness and the walk-forward."""
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.analysis.overfitting import RobustnessError
    from riskon.analysis.robustness import summary_lines, sweep_robustness

    try:
        info = store.find_sweep(sweep)
    except (KeyError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e).strip("'\""), param_hint="SWEEP") from None
    if where is None and not export:  # a top-N query: ranked in the database, only those rows read
        df = store.top(info["sweep_id"], sort, ascending=ascending, n=top)
    else:
        df = store.runs(info["sweep_id"])  # stored fields only: no run's returns
        if where is not None:
            df = query.filter_runs(df, where)  # parsed into a tree and evaluated on the table: never SQL
        df = rank_runs(df, sort, "minimize" if ascending else "maximize")
    out = console()
    # a stored sweep name is sanitised and kept inside runs/exports (riskon.pages.paths)
    path = (out_path or inside(EXPORTS_DIR, safe_name(info["name"], suffix=f".{export}"))) if export else None
    robust, skipped = None, ""
    if info["ok"] < 2:
        skipped = f"the sweep has {info['ok']} ok run(s); PSR, DSR and PBO need at least 2"
    else:
        try:
            robust = sweep_robustness(store, info["sweep_id"], n_splits=splits, per_run=bool(path))
        except RobustnessError as e:
            skipped = str(e)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        plain = df.drop(columns=["params"])
        if robust is not None:  # each run's own PSR(0) and DSR (the sweep's trials), and the sweep's PBO
            plain = plain.merge(robust.per_run, on="run_id", how="left")
            plain["pbo"] = robust.pbo
        plain.to_csv(path, index=False) if export == "csv" else plain.to_parquet(path, index=False)
        out.print(f"wrote {len(plain)} runs to {path}", highlight=False)
    status = f"{info['status']}, {info['ok']}/{info['n_total']} ok"
    title = f"{info['name']} ({info['sweep_id']}, {status}): top {min(top, len(df))} by {sort}"
    shown = [sort, *[m for m in ("cagr", "sharpe", "max_drawdown", "trades") if m != sort]]
    out.print(runs_table(df.head(top), title, shown))
    for line in summary_lines(robust) if robust is not None else [f"robustness: skipped: {skipped}"]:
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    for line in _walkforward_block(store, info["sweep_id"]):
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def _walkforward_block(store: Store, sweep_id: str) -> list[str]:
    """The walk-forward lines of ``riskon results``: none without a ``[walkforward]`` table, one when it fails."""
    try:  # most sweeps have no [walkforward] table: answered without loading the walk-forward's stack
        if "walkforward" not in tomllib.loads(store.sweep_row(sweep_id)["config_text"] or ""):
            return []
    except tomllib.TOMLDecodeError:
        return []
    # the API loads on first use (keeps `import riskon` light)
    from feeds.errors import DataError
    from riskon.analysis.walk_forward import stored_walkforward
    from riskon.config import ConfigError

    try:
        res = stored_walkforward(store, sweep_id)
    except (ConfigError, DataError, OSError, ValueError, RuntimeError) as e:
        return [f"walk-forward: skipped: {str(e).splitlines()[0] if str(e) else type(e).__name__}"]
    return [] if res is None else walkforward_lines(res)


def walkforward_lines(res: WalkForwardResult) -> list[str]:
    """A walk-forward in three lines, as ``riskon results`` prints it.

    The windows; then the stitched out-of-sample Sharpe ratio and CAGR against the in-sample mean
    over windows and buy-and-hold over the same test windows (``res.summary``).
    """
    # the API loads on first use (keeps `import riskon` light)
    from riskon.metrics import LABELS

    spec, w, s = res.spec, res.windows, res.summary
    grows = " and growing" if spec.mode == "anchored" else ""
    lines = [
        f"walk-forward of {res.name}: {len(w)} {spec.mode} windows (train {spec.train_days} days{grows}, test "
        f"{spec.test_days} days, chosen by in-sample {spec.objective}); out of sample "
        f"{w['test_start'].iloc[0]:%Y-%m-%d}..{w['test_end'].iloc[-1]:%Y-%m-%d} ({len(res.returns)} days)"
    ]
    for m in ("sharpe", "cagr"):
        lines.append(
            f"  {LABELS[m]}: out of sample (stitched) {format_metric(m, s.at[m, 'out_of_sample'])}, in-sample mean "
            f"{format_metric(m, s.at[m, 'in_sample_mean'])}, buy-and-hold {format_metric(m, s.at[m, 'buy_and_hold'])}"
        )
    return lines


def report_cmd(
    run_id: str = typer.Argument(None, help="A stored run id (or a unique prefix): its tear sheet."),
    sweep: str = typer.Option(None, "--sweep", "-s", help="A sweep (name or id): its sweep report instead."),
    x: str = typer.Option(None, "--x", help="Sweep report: one heatmap with this parameter across..."),
    y: str = typer.Option(None, "--y", help="...and this one down (default: every pair of swept parameters)."),
    top: int = typer.Option(10, help="Sweep report: best runs listed."),
    null: int = typer.Option(500, "--null", help="Sweep report: random-entry null draws (0: leave it out)."),
    seed: int = typer.Option(0, help="Sweep report: seed of the random-entry null."),
    db: Path = typer.Option(DEFAULT_DB, help="DuckDB results store."),
    out: Path = typer.Option(
        None, help="Output file (default reports/<sweep>/<run_id>/tearsheet.html or reports/<sweep>/sweep.html)."
    ),
) -> None:
    """A stored run's quantstats tear sheet (RUN_ID), or a sweep's report (--sweep), from the store."""
    # pages load matplotlib: only when a page is wanted
    from riskon.pages.html import report_path

    if (run_id is None) == (sweep is None):
        raise typer.BadParameter(
            "give a RUN_ID (tear sheet) or --sweep NAME (sweep report)" + (", not both" if run_id else ""),
            param_hint="RUN_ID",
        )
    if sweep is not None:
        # pages load matplotlib: only when a page is wanted
        from riskon.pages.sweep_page import sweep_report

        if top < 1 or null < 0:
            raise typer.BadParameter("--top must be >= 1 and --null >= 0", param_hint="--top/--null")
        path = sweep_report(sweep, db=db, out=out, x=x, y=y, top=top, null_n=null, seed=seed)
        console().print(f"sweep report: {path}", highlight=False)
        return
    # pages load matplotlib: only when a page is wanted
    from riskon.pages.tearsheet import write_returns_tearsheet

    try:
        row = Store(db).run(run_id)
    except (KeyError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e).strip("'\""), param_hint="RUN_ID") from None
    if row["status"] != "ok":
        raise typer.BadParameter(f"run {row['run_id']} failed: {row['error']}", param_hint="RUN_ID")
    # the sweep name and run id come from the store: sanitised, and kept inside the reports folder
    path = out or report_path(*[n for n in (row["sweep_name"], row["run_id"]) if n], "tearsheet.html")
    params = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in json.loads(row["params"]).items())
    write_returns_tearsheet(
        row["returns"], row["bench"], path, f"riskon: {row['sweep_name']} {row['run_id'][:12]} ({params})"
    )
    console().print(f"tearsheet: {path}", highlight=False)
