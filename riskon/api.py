"""The Python API: everything the ``riskon`` command does, as functions returning pandas objects.

Re-exported (lazily) from ``riskon``: ``riskon.load``, ``riskon.run``,
``riskon.sweep``, ``riskon.status`` and friends. The CLI is a thin layer over
these functions, so a notebook and the terminal compute the same numbers.

A *config* is a TOML path, a dict of the same shape as the TOML file (as
``tomllib`` would read it), or a ``RunConfig``; dicts are validated exactly as
files are and fail with the same ``ConfigError`` line.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import tempfile
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

import riskon.config as config_mod
from feeds.cache import Cache
from riskon import runner
from riskon.analysis import signal_state
from riskon.config import ConfigError, RunConfig
from riskon.metrics import METRICS
from riskon.pages.html import esc, table

if TYPE_CHECKING:  # imported on use: the analyses pull in their own dependencies
    from riskon.analysis.episodes import EventStudy
    from riskon.analysis.robustness import SweepRobustness
    from riskon.analysis.walk_forward import WalkForwardResult

#: What the API accepts as a config.
ConfigLike = str | os.PathLike | Mapping[str, Any] | RunConfig


class Result(runner.Result):
    """One run's numbers (``riskon.runner.Result``: returns, equity, trades, metrics) with its files and views."""

    @classmethod
    def of(cls, base: runner.Result) -> Result:
        """The API's ``Result`` holding the same objects as ``base`` (nothing is copied or recomputed)."""
        if isinstance(base, cls):
            return base
        return cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write trades.csv, equity.csv, metrics.csv and (per config) the tear sheet and chart; returns the paths."""
        from riskon.pages.run_page import write_outputs  # pages load matplotlib: only when a page is wanted

        return write_outputs(self, out_dir)

    def tearsheet(self, path: str | Path) -> Path:
        """Write the quantstats tear sheet against buy-and-hold (365 periods a year) to ``path``."""
        from riskon.pages.tearsheet import write_tearsheet  # quantstats loads only for a tear sheet

        return write_tearsheet(self, path)

    def _repr_html_(self) -> str:
        """Notebook display: metrics beside buy-and-hold, the first trades and the signal chart."""
        from riskon.pages.run_page import result_html  # pages load matplotlib: only when a page is wanted

        return result_html(self)


class Status(signal_state.Status):
    """The signal's state as of one bar (``riskon.analysis.signal_state.Status``), with a notebook view."""

    @classmethod
    def of(cls, base: signal_state.Status) -> Status:
        """The API's ``Status`` holding the same values as ``base``."""
        return cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})

    def _repr_html_(self) -> str:
        """Notebook display: the state's rows as a small table."""
        from riskon.pages.run_page import status_html  # pages load matplotlib: only when a page is wanted

        return status_html(self)


#: Where a dict config is said to come from in error messages.
DICT_SOURCE = "config (dict)"


# -- configs and data -------------------------------------------------------------------------
def read_config(config: ConfigLike) -> RunConfig:
    """A validated ``RunConfig`` from a TOML path, a dict of the TOML's shape, or a ``RunConfig`` (as is)."""
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, Mapping):  # keep the TOML text: [events] and [walkforward] are read from it
        raw = copy.deepcopy(dict(config))
        return dataclasses.replace(config_mod.parse(raw, DICT_SOURCE), text=to_toml(raw))
    if isinstance(config, (str, os.PathLike)):
        return config_mod.load(config)
    raise ConfigError(f"a config is a TOML path, a dict or a RunConfig, not {type(config).__name__}")


def load(
    symbols: str | Sequence[str], timeframe: str = "1d", cache: Cache | None = None
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Cached OHLCV bars of one symbol (a DataFrame) or several (a dict symbol -> DataFrame).

    On first use a series is filled from ``RISKON_DATA`` (a folder of CSV files)
    or downloaded, exactly as ``riskon run`` does. Frames are indexed by bar open
    time (UTC); ``attrs`` hold the symbol, timeframe and content fingerprint.
    """
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from feeds.loader import load as load_series

    if isinstance(symbols, str):
        return load_series(symbols, timeframe, cache=cache)
    cache = cache or Cache()
    return {s: load_series(s, timeframe, cache=cache) for s in symbols}


# -- one run ----------------------------------------------------------------------------------
def run(
    config: ConfigLike,
    engine: str = "backtrader",
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
    index: pd.DataFrame | None = None,
    asset: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    signal: pd.Series | None = None,
    allow_lookahead: bool = False,
) -> Result:
    """Run one backtest (``riskon run``) and return its ``Result``: returns, equity, trades, metrics.

    ``engine`` is ``"backtrader"`` (the default, as the CLI) or ``"fast"`` (the
    vectorised twin, equal to 1e-9). Nothing is written: call ``result.write(dir)``
    or ``result.tearsheet(path)``; a notebook displays the result as HTML.

    Bring your own data: ``index`` (daily bars of the config's ``data.index``) and ``asset`` (the
    target's bars, or a dict of frames by target symbol) replace the cached series; they are validated
    exactly as a CSV import of those symbols is. ``signal``, a boolean Series on index sessions, replaces
    the config's entry rule; riskon cannot check it for lookahead, and the run says "signal supplied,
    not checked" wherever its rule is shown.

    Each rule the run uses is first checked for lookahead (cached; see ``riskon.lookahead_gate``): one that
    peeks raises ``LookaheadError``, unless ``allow_lookahead=True``, which runs it and marks the result.
    """
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.given import given_frames
    from riskon.runner import run as run_config

    cfg = read_config(config)
    given = given_frames(cfg, index=index, asset=asset, announce=announce)
    res = run_config(cfg, cache=cache, announce=announce, engine=engine, given=given or None, signal=signal,
                     allow_lookahead=allow_lookahead)  # fmt: skip
    return Result.of(res)


# -- sweeps -----------------------------------------------------------------------------------
@dataclass
class Sweep:
    """A sweep as stored: every run's parameters and metrics, the best runs and the stored daily returns."""

    sweep_id: str
    name: str
    objective: str
    direction: str
    db: Path
    total: int = 0
    already_done: int = 0
    ran: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    executor: str = ""
    _runs: pd.DataFrame | None = field(repr=False, default=None)

    @property
    def runs(self) -> pd.DataFrame:
        """Every stored run: parameters, metrics, status (read from the store on first use, then kept)."""
        if self._runs is None:
            # DuckDB loads only when the store is used
            from riskon.sweeps.store import Store

            self._runs = Store(self.db).runs(self.sweep_id)
        return self._runs

    def best(self, n: int = 10, metric: str | None = None, ascending: bool | None = None) -> pd.DataFrame:
        """The ``n`` best successful runs by ``metric`` (default: the sweep's objective and direction); ranked in
        the store when the runs have not been read (a sweep of 10^6 runs reads only the top rows)."""
        metric = metric or self.objective
        if metric not in METRICS:
            raise ConfigError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
        if ascending is None:
            ascending = metric == self.objective and self.direction == "minimize"
        # DuckDB loads only when the store is used
        from riskon.sweeps.store import Store, rank_runs

        if self._runs is None:
            return Store(self.db).top(self.sweep_id, metric, ascending=ascending, n=n, ok_only=True)
        ok = self.runs[self.runs["status"] == "ok"]
        return rank_runs(ok, metric, "minimize" if ascending else "maximize").head(n)

    def counts(self) -> tuple[int, int]:
        """How many runs of the sweep are stored, and how many of them failed (counted in the store)."""
        # DuckDB loads only when the store is used
        from riskon.sweeps.store import Store
        from riskon.sweeps.sweep_reads import runs_from

        with Store(self.db).connect(read_only=True) as con:
            n, failed = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE r.status != 'ok') {runs_from(con, self.sweep_id)}",
                [self.sweep_id],
            ).fetchone()
        return int(n), int(failed)

    def failures(self, n: int = 5) -> list[tuple[str, str]]:
        """The first ``n`` failed runs (by run id) and their one-line errors."""
        # DuckDB loads only when the store is used
        from riskon.sweeps.store import Store
        from riskon.sweeps.sweep_reads import runs_from

        with Store(self.db).connect(read_only=True) as con:
            rows = con.execute(
                f"SELECT r.run_id, r.error {runs_from(con, self.sweep_id)} AND r.status != 'ok' "
                "ORDER BY r.run_id LIMIT ?",
                [self.sweep_id, int(n)],
            ).fetchall()
        return [(str(r), str(e)) for r, e in rows]

    def returns(self, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Stored daily returns, one column per run id (all runs, or ``run_ids``), indexed by date."""
        # DuckDB loads only when the store is used
        from riskon.sweeps.store import Store

        df = Store(self.db).runs(self.sweep_id, with_returns=True)
        if run_ids is not None:
            df = df[df["run_id"].isin(list(run_ids))]
        cols = {}
        for r in df[df["status"] == "ok"].itertuples():
            idx = pd.date_range(r.returns_start, periods=len(r.returns), freq="D", name="date")
            cols[r.run_id] = pd.Series(list(r.returns), index=idx)
        return pd.DataFrame(cols)

    def robustness(self, n_splits: int = 16) -> SweepRobustness:
        """PSR and DSR of the best run and the PBO of the sweep (``riskon results``), from the stored returns.

        Returns ``riskon.analysis.robustness.SweepRobustness``; the number of trials counts every stored run of
        the same strategy, across sweeps.
        """
        # a backtest's stack (pandas, numba, backtrader) loads only when one runs
        from riskon.analysis.robustness import sweep_robustness
        from riskon.sweeps.store import Store

        return sweep_robustness(Store(self.db), self.sweep_id, n_splits=n_splits)

    def walkforward(self) -> WalkForwardResult | None:
        """The walk-forward of the sweep's ``[walkforward]`` table from its stored runs (None without one).

        Nothing is swept: a combination missing from the store raises ``riskon.analysis.walk_forward.MissingRuns``.
        """
        # pages load matplotlib: only when a page is wanted
        from riskon.pages.sweep_page import stored_walkforward
        from riskon.sweeps.store import Store

        return stored_walkforward(Store(self.db), self.sweep_id)

    def _repr_html_(self) -> str:
        best = self.best(10)
        params = [c for c in best.columns if c not in {"sweep_id", "params", "status", "error", "seconds", "finished",
                  "worker", "returns_start", "engine", "bench_id", *METRICS}]  # fmt: skip
        shown = best[params + [m for m in dict.fromkeys([self.objective, "cagr", "sharpe", "max_drawdown", "trades"])]]
        stored, failed = self.counts()
        return (
            f"<div><h3>sweep {esc(self.name)} ({esc(self.sweep_id)})</h3>"
            f"<p>{stored} runs stored ({stored - failed} ok) in {esc(self.db)}; best by {esc(self.objective)} "
            f"({esc(self.direction)})</p>{table(shown, dict(METRICS), index=False)}</div>"
        )


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k))} = {_toml_value(v, f'{where}.{k}')}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise ConfigError(f"{DICT_SOURCE}: {where} = {value!r}: TOML has no {type(value).__name__} (use a number, text, "
                      "true/false, a list or a table)")  # fmt: skip


def to_toml(raw: Mapping[str, Any]) -> str:
    """A config dict as TOML text (one ``key = value`` line per top-level key, tables inline)."""
    text = "".join(f"{json.dumps(str(k))} = {_toml_value(v, str(k))}\n" for k, v in raw.items())
    if tomllib.loads(text) != json.loads(json.dumps(raw)):  # pragma: no cover - a guard for odd value types
        raise ConfigError(f"{DICT_SOURCE}: cannot be written as TOML without changing it")
    return text


def _sweep_text(config: ConfigLike) -> tuple[str, str]:
    """The TOML text ``run_sweep`` reads (with its [sweep] section) and its file name."""
    if isinstance(config, RunConfig):
        if config.text:
            return config.text, Path(config.source or f"{config.name}.toml").name
        raise ConfigError(f"{config.source}: a sweep needs the config's [sweep] section; pass its path or a dict")
    if isinstance(config, Mapping):
        raw = copy.deepcopy(dict(config))
        cfg = read_config(raw)
        return to_toml(raw), f"{cfg.name}.toml"
    raise ConfigError(f"a config is a TOML path, a dict or a RunConfig, not {type(config).__name__}")


def sweep(
    config: ConfigLike,
    db: str | Path | None = None,
    workers: int = 1,
    engine: str = "auto",
    scheduler: str | None = None,
    cache: Cache | None = None,
    progress: Callable[[int, int], None] | None = None,
    announce: Callable[[str], None] | None = None,
    max_combinations: int | None = 2_000_000,
    allow_lookahead: bool = False,
) -> Sweep:
    """Run (or resume) a config's ``[sweep]`` (``riskon sweep``) and return the stored ``Sweep``.

    ``db`` is the DuckDB store (default ``runs/riskon.duckdb``); ``workers`` local
    processes (1: this process) or a Dask ``scheduler`` (``"local"`` or ``tcp://...``);
    ``engine`` ``"auto"`` (fast when it can), ``"fast"`` or ``"backtrader"``. A sweep of more than
    ``max_combinations`` is refused before anything is expanded (None: no limit). Every rule setting is
    checked for lookahead before any run (``riskon.lookahead_gate``); ``allow_lookahead=True`` runs a
    failing one anyway and marks the sweep in the store.
    """
    # the sweep machinery (DuckDB, pools) loads only for a sweep
    from riskon.sweeps.driver import run_sweep
    from riskon.sweeps.spec import parse_sweep
    from riskon.sweeps.store import DEFAULT_DB

    db = Path(db) if db is not None else DEFAULT_DB
    if isinstance(config, (str, os.PathLike)):
        spec = parse_sweep(tomllib.loads(config_mod.load(config).text), str(config), max_combinations)
        res = run_sweep(config, db=db, workers=workers, scheduler=scheduler, cache=cache, progress=progress,
                        announce=announce, engine=engine, max_combinations=max_combinations,
                        allow_lookahead=allow_lookahead)  # fmt: skip
    else:  # run_sweep reads a file (its text is stored with the sweep): hand it the TOML in a private folder
        text, name = _sweep_text(config)
        spec = parse_sweep(tomllib.loads(text), DICT_SOURCE if isinstance(config, Mapping) else name, max_combinations)
        with tempfile.TemporaryDirectory(prefix="riskon-sweep-") as folder:
            path = Path(folder) / name
            path.write_text(text, encoding="utf-8")
            res = run_sweep(path, db=db, workers=workers, scheduler=scheduler, cache=cache, progress=progress,
                            announce=announce, engine=engine, max_combinations=max_combinations,
                        allow_lookahead=allow_lookahead)  # fmt: skip
    return Sweep(res.sweep_id, res.name, spec.objective, spec.direction, db, res.total, res.already_done, res.ran,
                 res.failed, res.skipped, res.seconds, res.executor)  # fmt: skip


def results(name_or_id: str | None = None, db: str | Path | None = None) -> Sweep:
    """A stored sweep by name or id (default: the newest), without running anything (``riskon results``)."""
    # the sweep machinery (DuckDB, pools) loads only for a sweep
    from riskon.sweeps.spec import sweep_options
    from riskon.sweeps.store import DEFAULT_DB, Store

    db = Path(db) if db is not None else DEFAULT_DB
    store = Store(db)
    try:
        info = store.find_sweep(name_or_id)
    except (KeyError, FileNotFoundError) as e:
        raise ConfigError(str(e).strip("'\"")) from None
    with store.connect(read_only=True) as con:
        text = con.execute("SELECT config_text FROM sweeps WHERE sweep_id = ?", [info["sweep_id"]]).fetchone()[0]
    try:
        opts = sweep_options(tomllib.loads(text), info["name"])  # its objective only: nothing expanded
        objective, direction = opts["objective"], opts["direction"]
    except (tomllib.TOMLDecodeError, ConfigError, ValueError):
        objective, direction = "sharpe", "maximize"
    return Sweep(info["sweep_id"], info["name"], objective, direction, db, int(info["n_total"]))


# -- the signal today -------------------------------------------------------------------------
def status(
    config: ConfigLike,
    asof: str | pd.Timestamp | None = None,
    refresh: bool = False,
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
    deadline: float | None = None,
) -> Status:
    """The signal's state on the latest cached data, or at the close of the bar of ``asof`` (``riskon status``).

    ``refresh`` first fetches the missing tail of every series the config uses
    (offline, that fails with the same one-line ``NetworkError`` as ``riskon data
    fetch``). See ``riskon.analysis.signal_state.Status`` for the fields.
    """
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.analysis.signal_state import refresh as refresh_cache
    from riskon.analysis.signal_state import status as signal_status

    cfg = read_config(config)
    if refresh:
        for line in refresh_cache(cfg, cache=cache, deadline=deadline, announce=announce):
            if announce:
                announce(line)
    return Status.of(signal_status(cfg, asof=asof, cache=cache, announce=announce))


# -- analyses (delegating to their modules) -------------------------------------------------------
def events(
    config: ConfigLike,
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
    **settings: Any,
) -> EventStudy:
    """The event study of a config (``riskon events``): episodes, forward returns, bootstrap intervals.

    ``settings`` override the config's ``[events]`` table (e.g. ``drought=60``,
    ``horizons=(7, 30, 90)``); returns ``riskon.analysis.episodes.EventStudy``.
    """
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.analysis.episodes import event_study, settings_from

    cfg = read_config(config)
    return event_study(cfg, settings_from(cfg, **settings), cache=cache, announce=announce)


def compare(
    items: Sequence[Any],
    db: str | Path | None = None,
    null_n: int = 500,
    seed: int = 0,
    out: str | Path | None = None,
    cache: Cache | None = None,
    title: str | None = None,
) -> pd.DataFrame:
    """Compare runs side by side (``riskon compare``) and return the metrics table (runs, then buy-and-hold).

    ``items`` are stored run ids (in ``db``), config paths, or ``Result`` objects; a dict or
    ``RunConfig`` is run first. Each run gets its seeded random-entry null (``null_n`` draws, 0 = none).
    Rows are the metrics plus ``null_median_<m>`` and ``null_percentile_<m>``; with ``out`` the
    self-contained HTML page is written there too.
    """
    # a comparison re-runs stored runs (backtrader, DuckDB) and draws pages (matplotlib): loaded on use
    from riskon.analysis.comparison import build
    from riskon.pages.comparison_page import write_comparison

    wanted = [run(x, cache=cache) if isinstance(x, Mapping | RunConfig) else x for x in items]
    comp = build(wanted, db=db, null_n=null_n, seed=seed, cache=cache, title=title)
    if out is not None:
        write_comparison(comp, out)
    return comp.metrics


def null(result: Result | ConfigLike, n: int = 500, seed: int = 0) -> pd.DataFrame:
    """Where a run falls in its random-entry null: its trades at ``n`` seeded random dates.

    ``result`` is a ``Result`` or a config (run first). Per metric: the strategy's value, the
    null's 5/50/95 % quantiles and the share of draws below it (``riskon.analysis.random_null.null_summary``);
    the draws themselves are in ``attrs["draws"]`` (one row per draw, the run's metrics as columns).
    """
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.analysis.random_null import null_summary, random_entry_null

    res = result if isinstance(result, runner.Result) else run(result)
    draws = random_entry_null(res, n=n, seed=seed)
    summary = null_summary(res, draws)
    summary.attrs["draws"] = draws
    return summary


def walkforward(
    config: ConfigLike,
    db: str | Path | None = None,
    workers: int = 1,
    engine: str = "auto",
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
) -> WalkForwardResult:
    """Walk the config's ``[sweep]`` grid forward as its ``[walkforward]`` table says (``riskon walkforward``).

    Returns ``riskon.analysis.walk_forward.WalkForwardResult`` (windows, the stitched out-of-sample curve,
    in- against out-of-sample metrics). Runs the sweep first when the store lacks combinations.
    """
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.analysis.walk_forward import walk_forward

    if isinstance(config, str | os.PathLike):
        return walk_forward(config, db=db, cache=cache, engine=engine, announce=announce, workers=workers)
    text, name = _sweep_text(config)
    with tempfile.TemporaryDirectory(prefix="riskon-walkforward-") as folder:
        path = Path(folder) / name
        path.write_text(text, encoding="utf-8")
        return walk_forward(path, db=db, cache=cache, engine=engine, announce=announce, workers=workers)
