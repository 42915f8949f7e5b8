"""The DuckDB results store: sweeps, and runs (params, metrics, status, timings, what the statistics need).

Layout 3 keeps no run's daily returns: a run is deterministic, so its returns are rebuilt on demand
(``riskon.sweeps.rebuild``, checked against the data fingerprints, the code and the stored ``digest``),
and each run row holds what the statistics over many runs need instead (``riskon.sweeps.row_fields``):
the digest, the moments of its excess returns and per-block sums for CSCV. A row is ~0.5 KB, and a sweep's
rows are stored in row groups of ``ROW_GROUP_SIZE`` per committed batch, so every query reads only the
columns and row groups it needs and nothing loads a sweep as one table. Older layouts are converted by
``riskon store migrate`` (``riskon.sweeps.migrate``).

DuckDB lets one process open a file at a time, even read-only. The store
therefore never holds the database: every write opens it, commits one batch in
one transaction and closes it, and every open retries while another process
holds it. A sweep stays queryable while it runs, and a batch is either wholly
committed or not at all (a kill during the write loses only that batch).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from riskon.metrics import METRICS
from riskon.sweeps import locks
from riskon.sweeps.arrow_lists import _list_array
from riskon.sweeps.param_columns import expand_params, expanded_runs, short_name
from riskon.sweeps.row_fields import add_fields
from riskon.sweeps.store_errors import StoreBusy, StoreError
from riskon.sweeps.store_path import DEFAULT_DB
from riskon.sweeps.sweep_reads import runs_from, trials_summary, trials_table

#: Seconds to keep retrying while another process holds the database.
OPEN_TIMEOUT = 60.0

_METRIC_COLS = ", ".join(f"{m} DOUBLE" for m in METRICS)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id VARCHAR PRIMARY KEY, name VARCHAR, config_text VARCHAR, spec VARCHAR,
    fingerprints VARCHAR, code_version VARCHAR, created TIMESTAMP, status VARCHAR, n_total INTEGER,
    strategy_key VARCHAR
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR, sweep_id VARCHAR, params VARCHAR, status VARCHAR, error VARCHAR,
    {_METRIC_COLS},
    seconds DOUBLE, finished TIMESTAMP, worker VARCHAR, engine VARCHAR,
    returns_start TIMESTAMP, bench_id VARCHAR,
    n_days INTEGER, digest BIGINT, sr_day DOUBLE, skew DOUBLE, kurt DOUBLE, blocks BLOB
);
CREATE TABLE IF NOT EXISTS benchmarks (bench_id VARCHAR PRIMARY KEY, returns DOUBLE[]);
CREATE TABLE IF NOT EXISTS sweep_runs (sweep_id VARCHAR, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
ALTER TABLE sweeps ADD COLUMN IF NOT EXISTS lookahead VARCHAR;
ALTER TABLE sweeps ADD COLUMN IF NOT EXISTS rule_hashes VARCHAR;
CREATE TABLE IF NOT EXISTS robustness (
    sweep_id VARCHAR, n_splits INTEGER, trials_key VARCHAR, payload VARCHAR, arrays BLOB,
    PRIMARY KEY (sweep_id, n_splits)
);
"""
SCHEMA_VERSION = "3"
#: ``runs`` and ``sweep_runs`` carry no key index: DuckDB's indexes of the run ids cost ~290 bytes per run on
#: disk (10,000 runs of big_sweep: 971 -> 683 B), memory while writing and a rewrite at every checkpoint. Writes
#: keep them unique themselves (``write_batch``: a run id not yet stored, a link not yet made); stores made
#: with the indexes (the first layout-3 files) work as they are.
#: Links not made yet. The anti-joins scan the stored column once per batch; ``NOT IN`` built a hash table of every
#: stored run id each time (at 5 x 10^5 runs: 80 ms a batch of 2,048 against 30 ms).
_NEW_LINKS = "ANTI JOIN sweep_runs l ON l.sweep_id = b.sweep_id AND l.run_id = b.run_id"
#: The per-run columns ``row_fields`` computes from a run's returns (the rest come with the row).
FIELD_COLS = ["n_days", "digest", "sr_day", "skew", "kurt", "blocks"]
_SCALARS = ["run_id", "sweep_id", "params", "status", "error", *METRICS, "seconds", "finished", "worker", "engine",
            "returns_start", "bench_id", *FIELD_COLS]  # fmt: skip


#: Rows per row group of files this store writes. A sweep batch of a few thousand runs then fills whole row
#: groups, which DuckDB writes to the file once, instead of logging them and rewriting one ever-growing row
#: group at every commit (DuckDB's default is 122,880 rows; 10,000 fast runs' returns wrote ~2x slower).
ROW_GROUP_SIZE = 2048


def _open_for_writing(path: Path):
    con = duckdb.connect(config={"threads": 1})
    try:
        con.execute(f"ATTACH '{_sql_text(path)}' AS store (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        con.execute("USE store")
    except BaseException:
        con.close()
        raise
    return con


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")


def bench_id(returns) -> str:
    """Content hash of a buy-and-hold return series (many runs share one)."""
    return hashlib.sha256(np.asarray(returns, dtype="float64").tobytes()).hexdigest()[:20]


#: Open ``Store.session``s by (process id, path): [depth, ExitStack or None, connection, reads using it now].
_HELD: dict[tuple[int, str], list] = {}


class Store:
    """A DuckDB file of sweeps and runs, opened only for the duration of each operation (or of a ``session``)."""

    def __init__(self, path: str | Path | None = None, timeout: float = OPEN_TIMEOUT) -> None:
        self.path = Path(path) if path is not None else DEFAULT_DB
        self.timeout = timeout

    def _key(self) -> tuple[int, str]:
        return os.getpid(), str(self.path.resolve())

    @contextlib.contextmanager
    def session(self) -> Iterator[Store]:
        """Reads inside share one read-only connection, opened at the first read and closed at the end.

        Opening the file costs ~0.1 s; a command that reads a dozen times (``riskon results``, the sweep
        report) opens it once. A write inside (e.g. the robustness stored by the first query) closes the shared
        connection first, and so does a read that finds another process's writer waiting for the file
        (``locks.writer_waiting``); the next read opens it again. Use it in one thread, around reading work."""
        key = self._key()
        held = _HELD.setdefault(key, [0, None, None, 0])
        held[0] += 1
        try:
            yield self
        finally:
            held[0] -= 1
            if held[0] == 0:
                _HELD.pop(key, None)
                if held[1] is not None:
                    held[1].close()

    @contextlib.contextmanager
    def connect(self, read_only: bool = False, as_is: bool = False):
        """An open connection. A writer announces itself and new readers wait for it (``riskon.sweeps.locks``);
        either retries while another process still holds the file. A store of another layout is refused
        with the command that converts it, unless ``as_is`` (``riskon store migrate``: no check, no schema).
        Inside a ``session`` a read uses the session's connection."""
        held = _HELD.get(self._key()) if _HELD else None
        shared = held is not None and read_only and not as_is
        if held and held[1] and (not shared or (held[3] == 0 and locks.writer_waiting(self.path))):
            held[1].close()  # a write (ours or another process's) or a migration needs the file: let go of it
            held[1] = held[2] = None
        if not shared:
            with self._connection(read_only, as_is) as con:
                yield con
            return
        if held[1] is None:
            stack = contextlib.ExitStack()
            held[2], held[1] = stack.enter_context(self._connection(True, False)), stack
        held[3] += 1
        try:
            yield held[2]
        finally:
            held[3] -= 1

    @contextlib.contextmanager
    def _connection(self, read_only: bool, as_is: bool):
        """A connection of its own (``connect`` without sessions)."""
        if read_only and not self.path.exists():
            raise FileNotFoundError(f"no results database at {self.path}; run `riskon sweep CONFIG` first")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.path}: cannot create its folder: {e.strerror}; choose another --db") from None
        try:
            if read_only:
                locks.wait_for_writer(self.path, self.timeout)
                intent = contextlib.nullcontext()
            else:
                intent = locks.writing(self.path, self.timeout)
            with intent:
                con = self._open(read_only)
                try:
                    with contextlib.suppress(duckdb.Error):  # in Jupyter DuckDB refuses the setting without ipywidgets
                        con.execute("SET enable_progress_bar = false")  # DuckDB's bar would land inside a report
                    if not as_is:
                        self._check_schema(con)
                    if not read_only and not as_is:
                        con.execute(SCHEMA)
                        con.execute(
                            "INSERT INTO store_meta VALUES ('schema', ?) ON CONFLICT DO NOTHING", [SCHEMA_VERSION]
                        )
                    yield con
                finally:
                    con.close()
        except locks.LockTimeout as e:
            raise StoreBusy(str(e)) from None
        except OSError as e:  # the side lock files of a read-only or full folder
            raise StoreError(f"{self.path}: {e.strerror or e}; choose another --db") from None

    @contextlib.contextmanager
    def alone(self, key: str, announce=None):
        """Hold this store's lock for one sweep config (``locks.one_sweep``); a folder fault is a ``StoreError``."""
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(locks.one_sweep(self.path, key, announce))
            except OSError as e:
                raise StoreError(f"{self.path}: {e.strerror or e}; choose another --db") from None
            yield

    def _open(self, read_only: bool):
        """The DuckDB connection, retried while another process holds the file (up to ``timeout``)."""
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=True) if read_only else _open_for_writing(self.path)
            except duckdb.Error as e:
                if "lock" not in str(e).lower() or time.monotonic() > deadline:
                    if "lock" in str(e).lower():
                        raise StoreBusy(
                            f"{self.path} stayed locked by another process for {self.timeout:g} s"
                        ) from None
                    raise StoreError(f"{self.path} cannot be opened as a riskon results database: {e}") from None
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 1.5, 0.5)

    def _check_schema(self, con) -> None:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}  # ~30x cheaper
        if "runs" in tables and "store_meta" not in tables:
            raise StoreError(
                f"{self.path} was written by an older riskon with another layout; "
                "use a new file with --db (the old one is left as it is)"
            )
        if "store_meta" in tables:
            row = con.execute("SELECT value FROM store_meta WHERE key = 'schema'").fetchone()
            if row is not None and row[0] != SCHEMA_VERSION:
                raise StoreError(self.version_message(row[0]))

    def version_message(self, version: str) -> str:
        """The one line for a store of another layout: migrate it (older) or upgrade riskon (newer)."""
        if version.isdigit() and int(version) < int(SCHEMA_VERSION):
            return (
                f"{self.path} has store layout {version} (daily returns kept per run); this riskon reads layout "
                f"{SCHEMA_VERSION}: convert it once with `riskon store migrate --db {self.path}`"
            )
        return f"{self.path} has store layout {version}, newer than this riskon's {SCHEMA_VERSION}; upgrade riskon"

    def put_sweep(self, row: dict) -> None:
        """Insert a sweep, or update its status and size if it exists (resume)."""
        with self.connect() as con:
            con.execute(
                "INSERT INTO sweeps (sweep_id, name, config_text, spec, fingerprints, code_version, created, status, "
                "n_total, strategy_key, rule_hashes) VALUES (?, ?, ?, ?, ?, ?, now(), ?, ?, ?, ?) "
                "ON CONFLICT (sweep_id) DO UPDATE SET status = excluded.status, n_total = excluded.n_total",
                [row["sweep_id"], row["name"], row["config_text"], row["spec"], json.dumps(row["fingerprints"]),
                 row["code_version"], row["status"], row["n_total"], row["strategy_key"],
                 json.dumps(row["rule_hashes"]) if row.get("rule_hashes") is not None else None],
            )  # fmt: skip

    def set_lookahead(self, sweep_id: str, failures: str) -> None:
        """Mark a sweep run with ``--allow-lookahead`` although rules failed the lookahead check (``failures``)."""
        with self.connect() as con:
            con.execute("UPDATE sweeps SET lookahead = ? WHERE sweep_id = ?", [failures, sweep_id])

    def lookahead(self, sweep_id: str) -> str | None:
        """The lookahead failures a sweep was allowed to run with (None: its rules passed)."""
        with self.connect(read_only=True) as con:
            cols = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() "
                                               "WHERE table_name = 'sweeps'").fetchall()}  # fmt: skip
            if "lookahead" not in cols:  # a store no sweep has written to since the column was added
                return None
            row = con.execute("SELECT lookahead FROM sweeps WHERE sweep_id = ?", [sweep_id]).fetchone()
        return row[0] if row else None

    def set_status(self, sweep_id: str, status: str) -> None:
        """Mark a sweep running, done, interrupted or failed."""
        with self.connect() as con:
            con.execute("UPDATE sweeps SET status = ? WHERE sweep_id = ?", [status, sweep_id])

    def done_ids(self, sweep_id: str) -> set[str]:
        """Run ids a sweep has finished (status ok): a failed run is not done, so a resume retries it."""
        if not self.path.exists():
            return set()
        with self.connect() as con:
            rows = con.execute(
                "SELECT run_id FROM sweep_runs JOIN runs USING (run_id) "
                "WHERE sweep_runs.sweep_id = ? AND status = 'ok'",
                [sweep_id],
            ).fetchall()
        return {r[0] for r in rows}

    def link_existing(self, sweep_id: str, run_ids: list[str]) -> set[str]:
        """Attach finished runs another sweep already computed (same id = same result) to this sweep; return them."""
        if not run_ids or not self.path.exists():
            return set()
        with self.connect() as con:
            con.register("wanted", pd.DataFrame({"run_id": run_ids}))
            found = {
                r[0]
                for r in con.execute(
                    "SELECT run_id FROM runs JOIN wanted USING (run_id) WHERE status = 'ok'"
                ).fetchall()
            }
            if found:
                con.register("found", pd.DataFrame({"sweep_id": sweep_id, "run_id": sorted(found)}))
                con.execute(f"INSERT INTO sweep_runs SELECT sweep_id, run_id FROM found b {_NEW_LINKS}")
        return found

    def write_batch(self, rows: list[dict], fault: str | None = None) -> int:
        """Commit a batch of runs in one transaction; finished runs already stored are left as they are.

        Rows carry ``returns`` and ``bench`` as float arrays and ``rf`` (the risk-free returns per day, None
        for 0). The returns are not stored: ``row_fields`` turns them into the digest, moments and block
        sums (a row that already has them keeps them). Buy-and-hold series are stored once in
        ``benchmarks`` and referenced by ``bench_id``.
        """
        if not rows:
            return 0
        seen: set[str] = set()  # a run id twice in one batch must not cost the whole batch its commit
        rows = [dict(r) for r in rows if not (r["run_id"] in seen or seen.add(r["run_id"]))]
        benches = {}
        ids: dict[int, str] = {}  # many rows share one buy-and-hold array: hash each array object once
        for r in rows:
            b = r.pop("bench", None)
            if b is None:
                r["bench_id"] = None
            else:
                key = ids.get(id(b))
                if key is None:
                    key = ids[id(b)] = bench_id(b)
                    benches[key] = b
                r["bench_id"] = key
            r.setdefault("engine", None)
        add_fields(rows)
        scalars = pd.DataFrame(rows).reindex(columns=_SCALARS)
        for col in ("n_days", "digest"):  # NaN-free integers (a failed run's are NULL)
            scalars[col] = scalars[col].astype("Int64")
        table = pa.Table.from_pandas(scalars, preserve_index=False)
        btable = pa.table({"bench_id": list(benches), "returns": _list_array(list(benches.values()))})
        cols = ", ".join(_SCALARS)
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            con.register("batch", table)
            con.register("bbatch", btable)
            # a run that failed before is replaced by its retry; a finished run is never touched
            con.execute("DELETE FROM runs WHERE status != 'ok' AND run_id IN (SELECT run_id FROM batch)")
            con.execute(f"INSERT INTO runs ({cols}) SELECT {cols} FROM batch b ANTI JOIN runs r ON r.run_id = b.run_id")
            con.execute(f"INSERT INTO sweep_runs SELECT DISTINCT sweep_id, run_id FROM batch b {_NEW_LINKS}")
            con.execute("INSERT INTO benchmarks SELECT * FROM bbatch ON CONFLICT (bench_id) DO NOTHING")
            if fault == "in_batch":
                os.kill(os.getpid(), 9)  # fault injection for the crash tests: die inside the transaction
            con.execute("COMMIT")
            con.unregister("batch")
            con.unregister("bbatch")
        return len(rows)

    def sweeps(self) -> pd.DataFrame:
        """Every sweep with its run counts, newest first."""
        with self.connect(read_only=True) as con:
            return con.execute(
                "SELECT s.sweep_id, s.name, s.status, s.n_total, s.created, s.strategy_key, "
                "count(r.run_id) AS runs, count(r.run_id) FILTER (WHERE r.status = 'ok') AS ok "
                "FROM sweeps s LEFT JOIN sweep_runs l USING (sweep_id) LEFT JOIN runs r ON r.run_id = l.run_id "
                "GROUP BY ALL ORDER BY s.created DESC"
            ).df()

    def find_sweep(self, name_or_id: str | None) -> dict:
        """A sweep by id, id prefix or name (the newest of that name); None means the newest sweep.

        The row of ``sweeps`` with its run counts; only the runs of the sweep found are counted.
        """
        with self.connect(read_only=True) as con:
            table = con.execute(
                "SELECT sweep_id, name, status, n_total, created, strategy_key FROM sweeps ORDER BY created DESC"
            ).df()
            if table.empty:
                raise KeyError(f"no sweeps in {self.path}")
            hit = table if name_or_id is None else table[
                (table["sweep_id"].str.startswith(name_or_id)) | (table["name"] == name_or_id)]  # fmt: skip
            if hit.empty:
                raise KeyError(f"no sweep {name_or_id!r} in {self.path}; known: {', '.join(table['name'].unique())}")
            info = hit.iloc[0].to_dict()
            sql = runs_from(con, info["sweep_id"])
            runs, ok = con.execute(f"SELECT count(*), count(*) FILTER (WHERE r.status = 'ok') {sql}",
                                   [info["sweep_id"]]).fetchone()  # fmt: skip
        return {**info, "runs": runs, "ok": ok}

    def runs(self, sweep_id: str | None = None, with_returns: bool = False, columns: list[str] | None = None
             ) -> pd.DataFrame:  # fmt: skip
        """Runs (of one sweep, or all) with their parameters expanded into columns (no block sums).

        ``with_returns`` adds each ok run's daily returns, rebuilt (``riskon.sweeps.rebuild``): for a few
        runs; every query over a sweep's runs reads the stored fields instead. ``columns``: only these stored
        columns besides the parameters (a million runs' texts cost seconds and hundreds of MB to convert).
        """
        picked = dict.fromkeys(["run_id", "params", *(columns or [])])
        cols = "r.* EXCLUDE (blocks)" if columns is None else ", ".join(f"r.{c}" for c in picked)
        with self.connect(read_only=True) as con:
            sql, args = (f"SELECT {cols} {runs_from(con, sweep_id)}", [sweep_id]) if sweep_id else (
                f"SELECT {cols} FROM runs r", [])  # fmt: skip
            df = expanded_runs(con, sql, args, "run_id", short_name, keep_params=columns is None or "params" in columns)
        if sweep_id:
            df["sweep_id"] = sweep_id
        if with_returns:
            df["returns"] = self.rebuilt_returns(df.to_dict("records"))
        return df

    def top(self, sweep_id: str, metric: str, ascending: bool = False, n: int = 20, ok_only: bool = False
            ) -> pd.DataFrame:  # fmt: skip
        """The ``n`` best runs (``ok_only``: of those that finished) of a sweep by ``metric``, ranked in the database
        (as ``rank_runs``: ties by run id, missing and NaN values last); only those rows are read."""
        if metric not in METRICS:
            raise KeyError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
        order, only = ("ASC" if ascending else "DESC"), ("AND r.status = 'ok'" if ok_only else "")
        with self.connect(read_only=True) as con:
            sql = (
                f"SELECT r.* EXCLUDE (blocks) {runs_from(con, sweep_id)} {only} "
                f"ORDER BY (r.{metric} IS NULL OR isnan(r.{metric})), r.{metric} {order}, r.run_id LIMIT ?"
            )
            df = con.execute(sql, [sweep_id, int(n)]).df()
        df["sweep_id"] = sweep_id
        return expand_params(df)

    def rebuilt_returns(self, rows: list[dict], cache=None) -> list[np.ndarray | None]:
        """Each row's daily returns rebuilt from its parameters (None for a failed run); see ``riskon.sweeps.rebuild``.

        Refused with one line (``DataError`` or ``StoreError``) when the cache lacks a series as the run saw
        it, when the run's code changed, or when a rebuild does not match the stored digest.
        """
        # the backtest stack loads only when a run is rebuilt
        from riskon.sweeps.rebuild import rebuild_returns

        return rebuild_returns(self, rows, cache=cache)

    def run(self, run_id: str, cache=None, returns: bool = True) -> dict:
        """One run (by id or unique prefix) with its returns (rebuilt) and benchmark returns as Series.

        ``returns=False`` skips the rebuild (``returns`` is None): for a caller that re-runs the run anyway.
        """
        with self.connect(read_only=True) as con:
            df = con.execute(
                "SELECT r.* EXCLUDE (blocks), b.returns AS bench FROM runs r LEFT JOIN benchmarks b USING (bench_id) "
                "WHERE r.run_id LIKE ? || '%'",
                [run_id],
            ).df()
            if len(df) != 1:
                raise KeyError(f"{'no' if df.empty else 'ambiguous'} run id {run_id!r} in {self.path}")
            row = df.iloc[0].to_dict()
            sweep = con.execute("SELECT name FROM sweeps WHERE sweep_id = ?", [row["sweep_id"]]).fetchone()
        row["sweep_name"] = sweep[0] if sweep else ""
        row["returns"] = None
        if row["status"] == "ok" and returns:
            returns = self.rebuilt_returns([row], cache=cache)[0]
            idx = pd.date_range(row["returns_start"], periods=len(returns), freq="D")
            row["returns"] = pd.Series(returns, index=idx, name="returns")
            row["bench"] = pd.Series(list(row["bench"]), index=idx, name="buy_and_hold")
        return row

    def sweep_row(self, sweep_id: str) -> dict:
        """A sweep's stored row (config text, spec, fingerprints, code version, ...); KeyError when unknown."""
        with self.connect(read_only=True) as con:
            df = con.execute("SELECT * FROM sweeps WHERE sweep_id = ?", [sweep_id]).df()
        if df.empty:
            raise KeyError(f"no sweep {sweep_id!r} in {self.path}")
        return df.iloc[0].to_dict()

    def trials(self, strategy_key: str) -> pd.DataFrame:
        """The distinct trials of one strategy across every sweep in the store (for the deflated Sharpe ratio).

        A trial is an ok run linked to any sweep of ``strategy_key``; runs with identical daily returns (same
        start, same length, same digest) are one trial, however many sweeps or run ids share them. One row
        per trial, by run id: ``run_id`` (the smallest of its runs), its ``sharpe``, ``runs`` (how many runs
        share those returns) and ``fingerprint`` (a hash of start and digest, for ``trials_key``)."""
        with self.connect(read_only=True) as con:
            return trials_table(con, strategy_key)

    def trials_summary(self, strategy_key: str) -> tuple[int, int, float, str]:
        """Distinct trials of a strategy, the ok runs behind them, the sample variance of their per-day Sharpe
        ratios (finite ones) and their ``trials_key`` (SHA-256 of their sorted fingerprints), in one query
        over the stored Sharpe ratios: nothing per run reaches Python."""
        with self.connect(read_only=True) as con:
            return trials_summary(con, strategy_key)

    def count_trials(self, strategy_key: str) -> int:
        """How many distinct trials one strategy has in the store (``trials``: identical returns count once)."""
        return self.trials_summary(strategy_key)[0]


def rank_runs(runs: pd.DataFrame, objective: str, direction: str = "maximize") -> pd.DataFrame:
    """Runs best first by ``objective``; ties broken by run id, missing values last.

    Every view of a sweep (results, the report, compare, robustness, verify) ranks with this, so the
    "best run" is the same run everywhere even when fast sweeps produce exactly tied metrics.
    """
    return runs.sort_values(
        [objective, "run_id"], ascending=[direction == "minimize", True], kind="mergesort", na_position="last"
    )
