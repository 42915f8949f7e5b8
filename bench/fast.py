"""The fast engine at sweep scale: a cold 10,000-combination sweep, warm rates, and ratios measured in one run.

* **cold**: ``riskon sweep runs/big_sweep.toml --workers 2`` (10,000 combinations over BTC-USD's full daily
  history), the installed command in a new process with an empty numba cache (``NUMBA_CACHE_DIR`` set to a new
  folder), to a new DuckDB file: imports, validation of every combination, data, compilation, simulation,
  metrics, the stored returns and the printed table — the wall time a user waits from a cold start. Run
  ``--repeat`` times (the median is the figure; the spread shows the machine's noise). The data cache is
  filled first (a CSV import is a one-off, not part of a sweep); one more row times the very first sweep,
  with an empty data cache too.
* **warm**: the same sweep again, in this process (compiled code cached); and the compute alone (bars,
  kernel, all twelve metrics and the returns arrays, no store) on one core and on the worker pool.
* **backtrader**: a subset (confirmation 3 days, no cooldown: trailing stop x stop x take profit) run by
  riskon's backtrader engine and by backtrader's own ``optstrategy`` (``stdstats=False``, 2 processes).
* **vectorbt** (``--vectorbt-python``, an interpreter with ``vectorbt`` installed, kept out of riskon's
  environment): ``Portfolio.from_signals`` on the same 10,000-combination grid, cold (fresh interpreter and
  numba cache, import included) and warm (second call), plus per-column total return, Sharpe, max drawdown
  and trade count. Its model approximates riskon's: entries are the rule's signal shifted one bar and filled
  at the open (``price=open``); the index-drawdown exit likewise; trailing stop, fixed stop (through
  ``adjust_sl_func_nb``: the higher of the two stop levels) and take profit are vectorbt's stops, checked on
  the close and filled at the stop level within the bar (riskon: decided on the close, filled at the next
  open); the cooldown is a ``signal_func_nb`` that ignores entries within N bars of the last exit;
  fees 10 bps and slippage 5 bps per fill, all cash in. The time is the point, not the values.

Run: ``RISKON_DATA=../shared/data python bench/fast.py [--workers 2] [--vectorbt-python /tmp/vbtenv/bin/python]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIG = ROOT / "runs" / "big_sweep.toml"

COLD_COMPUTE = """
import os, sys, time, tomllib
t0 = time.perf_counter()
from pathlib import Path
from feeds.loader import load
from riskon.sweeps import chunks as fastsweep
from riskon.sweeps.keys import series_needed
from riskon.sweeps.spec import combinations, parse_sweep
if __name__ == "__main__":
    path, workers = Path(sys.argv[1]), int(sys.argv[2])
    pool = fastsweep.start_pool(workers) if workers > 1 else None  # workers compile while the driver validates
    raw = tomllib.loads(path.read_text())
    combos, _ = combinations(raw, parse_sweep(raw, str(path)), str(path))
    frames = {key: load(*key) for key in series_needed([c for _, c in combos])}
    tasks = [(ov, cfg, f"r{i}") for i, (ov, cfg) in enumerate(combos)]
    chunks = fastsweep.plan(tasks, frames, "bench", fastsweep.chunk_size(len(tasks), workers))
    n = sum(1 for row in fastsweep.evaluate_local(chunks, workers, pool) if row["status"] == "ok")
    print(n, time.perf_counter() - t0)
"""


def cold_compute(workers: int) -> tuple[int, float]:
    """(combinations, wall seconds) of everything but the store, from a cold start."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba"), "PYTHONPATH": str(ROOT)}
        script = Path(tmp) / "cold_compute.py"
        script.write_text(COLD_COMPUTE)
        t = time.perf_counter()
        out = subprocess.run([sys.executable, str(script), str(BIG), str(workers)], env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
        wall = time.perf_counter() - t
    n, _ = out.stdout.split()
    return int(n), wall


def riskon_command() -> list[str]:
    """The installed ``riskon`` script beside this interpreter (what users run), else the same entry point."""
    script = Path(sys.executable).with_name("riskon")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from riskon.cli import main; sys.argv[0] = 'riskon'; main()"]


def cold_sweep(workers: int, data_cache: str | None = None, root: Path = ROOT) -> tuple[int, float]:
    """(combinations, wall seconds) of ``riskon sweep`` in a new process with an empty numba cache.

    ``root`` is the checkout whose code runs (first on ``PYTHONPATH``, so neither another editable
    install nor the installed version is measured by mistake); every combination must end ok.
    """
    import duckdb

    config = root / "runs" / "big_sweep.toml"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba"), "PYTHONPATH": str(root)}
        if data_cache is not None:
            env["RISKON_CACHE"] = data_cache
        db = Path(tmp) / "cold.duckdb"
        cmd = [*riskon_command(), "sweep", str(config), "--db", str(db), "--workers", str(workers)]
        t = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - t
        if out.returncode != 0:
            raise SystemExit(f"cold sweep failed:\n{out.stderr[-3000:]}")
        con = duckdb.connect(str(db), read_only=True)
        try:
            ok, total = con.execute("SELECT count(*) FILTER (WHERE status = 'ok'), count(*) FROM runs").fetchone()
        finally:
            con.close()
    if ok != total or total != 10_000:
        raise SystemExit(f"cold sweep stored {ok} ok runs of {total}, expected 10,000 ok")
    return ok, wall


def baseline_checkout(ref: str, folder: Path) -> Path:
    """A detached git worktree of commit ``ref`` in ``folder``: the code the cold sweep is compared with."""
    path = folder / "baseline"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), ref], check=True,
                   capture_output=True)  # fmt: skip
    return path


def summary(runs: list[tuple]) -> tuple[int, float, float, float]:
    """(combinations, median, min, max seconds) of timed runs ``(combinations, seconds, ...)``."""
    import statistics

    secs = [s for _, s, *_ in runs]
    return runs[0][0], statistics.median(secs), min(secs), max(secs)


def repeated(fn, repeat: int) -> tuple[int, float, float, float]:
    """``summary`` of ``repeat`` calls of ``fn``."""
    return summary([fn() for _ in range(repeat)])


def warm_sweep(path: Path, workers: int, engine: str = "fast") -> tuple[int, float]:
    """(combinations, seconds) of ``run_sweep`` in this process, to a new store."""
    from riskon.sweeps.driver import run_sweep

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = run_sweep(path, db=Path(tmp) / "warm.duckdb", workers=workers, engine=engine)
        wall = time.perf_counter() - t
    assert res.ran == res.total and res.failed == 0, res
    return res.ran, wall


def compute_only(workers: int) -> tuple[int, float]:
    """(combinations, seconds) of the compute alone: bars, kernel, metrics and returns, no validation or store."""
    from feeds.loader import load
    from riskon.sweeps import chunks as fastsweep
    from riskon.sweeps.keys import series_needed
    from riskon.sweeps.spec import combinations, parse_sweep

    raw = tomllib.loads(BIG.read_text())
    combos, _ = combinations(raw, parse_sweep(raw, str(BIG)), str(BIG))
    frames = {key: load(*key) for key in series_needed([c for _, c in combos])}
    tasks = [(ov, cfg, f"r{i}") for i, (ov, cfg) in enumerate(combos)]
    pool = fastsweep.start_pool(workers) if workers > 1 else None
    if pool is not None:
        [f.result() for f in [pool.submit(os.getpid) for _ in range(workers * 4)]]  # started and compiled
    t = time.perf_counter()
    chunks = fastsweep.plan(tasks, frames, "bench", fastsweep.chunk_size(len(tasks), workers))
    n = sum(1 for row in fastsweep.evaluate_local(chunks, workers, pool) if row["status"] == "ok")
    return n, time.perf_counter() - t


SUBSET = {"exits.trailing_stop": [0.10, 0.20, 0.30, 0.40], "exits.stop": [False, 0.10, 0.20],
          "exits.take_profit": [False, 0.50, 1.00]}  # fmt: skip


def subset_config(folder: Path) -> Path:
    """The big grid cut to confirmation 3 days and no cooldown: 36 combinations ``optstrategy`` can run too."""
    text = BIG.read_text().split("[sweep.params]")[0].replace('name = "big_sweep"', 'name = "bench_subset"')
    lines = [f'"{k}" = {json.dumps(v)}' for k, v in SUBSET.items()]
    path = folder / "subset.toml"
    path.write_text(text + "[sweep.params]\n" + "\n".join(lines) + "\n")
    return path


def optstrategy(workers: int) -> tuple[int, float]:
    """(combinations, seconds) of backtrader's ``optstrategy`` over the subset, the same RiskOn strategy."""
    from feeds.btcompat import bt
    from feeds.btfeed import make_feed
    from riskon.config import load as load_config
    from riskon.runner import prepare, strategy_params
    from strategies.backtest import spans
    from strategies.strategy import RiskOn, RiskOnBroker

    cfg = load_config(BIG)
    _, bars, assets, _ = prepare(cfg)
    base = strategy_params(cfg)
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, runonce=True, preload=True, maxcpus=workers,
                         optreturn=True, optdatas=True)  # fmt: skip
    cerebro.broker = RiskOnBroker()
    for name, frame in assets.items():
        cerebro.adddata(make_feed(frame, bars, name=name))
    cerebro.broker.setcash(base.cash)
    cerebro.broker.set_coo(True)
    cerebro.broker.addcommissioninfo(bt.CommissionInfo(commission=base.fee, percabs=True))
    cerebro.broker.set_slippage_perc(base.slippage, slip_open=True, slip_limit=True, slip_match=True, slip_out=True)
    off = [None if v is False else v for v in SUBSET["exits.stop"]]
    tp = [None if v is False else v for v in SUBSET["exits.take_profit"]]
    cerebro.optstrategy(
        RiskOn, trail=SUBSET["exits.trailing_stop"], stop=off, take_profit=tp, index_exit_dd=[base.index_exit_dd],
        fee=[base.fee], slippage=[base.slippage], spans=[spans(assets)],
    )  # fmt: skip
    t = time.perf_counter()
    results = cerebro.run()
    return len(results), time.perf_counter() - t


# -- vectorbt, run by another interpreter ---------------------------------------------------
def vectorbt_inputs(folder: Path) -> Path:
    """The grid and the market as arrays (one signal per confirmation length), saved for the vectorbt process."""
    import numpy as np

    from riskon.config import parse
    from riskon.runner import prepare
    from riskon.sweeps.spec import parse_sweep

    raw = tomllib.loads(BIG.read_text())
    grid = parse_sweep(raw, str(BIG)).values
    paths = ["strategy.params.confirm_days", "exits.trailing_stop", "exits.stop", "exits.take_profit",
             "strategy.cooldown_days"]  # fmt: skip
    assert list(grid) == paths, "bench/fast.py maps big_sweep.toml's grid for vectorbt"
    base = {k: v for k, v in raw.items() if k != "sweep"}
    confirms = grid["strategy.params.confirm_days"]
    events = {}
    for c in confirms:
        cfg = parse({**base, "strategy": {**base["strategy"], "params": {**base["strategy"]["params"],
                                                                          "confirm_days": c}}})  # fmt: skip
        _, bars, assets, _ = prepare(cfg)
        events[c] = bars["event"].to_numpy(dtype=bool)
    frame = next(iter(assets.values()))
    dd = base["exits"]["index_drawdown"]
    idx_exit = (bars["idx_close"] < bars["idx_ath"] * (1.0 - dd)).to_numpy(dtype=bool)
    combos = list(itertools.product(*grid.values()))  # riskon's order: the grid's paths, last varying fastest
    path = folder / "vbt_inputs.npz"
    np.savez(
        path, open=frame["open"].to_numpy(), close=frame["close"].to_numpy(), idx_exit=idx_exit,
        events=np.vstack([events[c] for c in confirms]), confirm=np.array([confirms.index(c[0]) for c in combos]),
        trail=np.array([c[1] for c in combos], dtype=float),
        stop=np.array([np.nan if c[2] is False else c[2] for c in combos], dtype=float),
        take_profit=np.array([np.nan if c[3] is False else c[3] for c in combos], dtype=float),
        cooldown=np.array([c[4] for c in combos], dtype=float),
        fee=base["costs"]["fee_bps"] / 1e4, slippage=base["costs"]["slippage_bps"] / 1e4,
    )  # fmt: skip
    return path


def vectorbt_part(inputs: str) -> None:
    """Run in the vectorbt interpreter: time the import, a cold call and a warm call; print JSON."""
    t0 = time.perf_counter()
    import numpy as np
    import vectorbt as vbt
    from numba import njit

    imported = time.perf_counter() - t0

    @njit
    def cooldown_signals(c, entries, exits, cooldown, last_exit, was_in):
        if c.position_now > 0:
            was_in[c.col] = True
        elif was_in[c.col]:
            was_in[c.col] = False
            last_exit[c.col] = c.i
        entry = entries[c.i, c.col]
        if entry and last_exit[c.col] >= 0 and c.i - last_exit[c.col] <= cooldown[c.col]:
            entry = False
        return entry, exits[c.i], False, False

    @njit
    def fixed_and_trailing(c, trail, stop):
        level = c.curr_price * (1.0 - trail[c.col])
        if stop[c.col] == stop[c.col]:
            level = max(level, c.init_price * (1.0 - stop[c.col]))
        return 1.0 - level / c.curr_price, True

    d = np.load(inputs)
    n, m = len(d["close"]), len(d["trail"])
    shifted = np.zeros((len(d["events"]), n), dtype=bool)
    shifted[:, 1:] = d["events"][:, :-1]
    entries = np.ascontiguousarray(shifted[d["confirm"]].T)  # (bars, combinations): fill the bar after the signal
    exits = np.zeros(n, dtype=bool)
    exits[1:] = d["idx_exit"][:-1]

    def run() -> dict:
        pf = vbt.Portfolio.from_signals(
            d["close"][:, None], signal_func_nb=cooldown_signals,
            signal_args=(entries, exits, d["cooldown"], np.full(m, -1), np.zeros(m, dtype=bool)),
            price=d["open"][:, None], sl_stop=d["trail"][None, :], sl_trail=True, tp_stop=d["take_profit"][None, :],
            adjust_sl_func_nb=fixed_and_trailing, adjust_sl_args=(d["trail"], d["stop"]),
            fees=float(d["fee"]), slippage=float(d["slippage"]), init_cash=100_000.0, freq="1D",
        )  # fmt: skip
        return {"total_return": pf.total_return().to_numpy(), "sharpe": pf.sharpe_ratio().to_numpy(),
                "max_drawdown": pf.max_drawdown().to_numpy(), "trades": pf.trades.count().to_numpy()}  # fmt: skip

    t = time.perf_counter()
    first = run()
    cold = time.perf_counter() - t
    t = time.perf_counter()
    run()
    warm = time.perf_counter() - t
    print(json.dumps({"combinations": m, "import": imported, "cold": cold, "warm": warm,
                      "median_trades": float(np.median(first["trades"])),
                      "version": vbt.__version__}))  # fmt: skip


def vectorbt(python: str, folder: Path) -> dict:
    inputs = vectorbt_inputs(folder)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder / "vbt_numba"), "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    out = subprocess.run([python, __file__, "--vectorbt-part", str(inputs)], env=env, capture_output=True,
                         text=True)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"vectorbt part failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process"] = time.perf_counter() - t
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--vectorbt-python", help="an interpreter with vectorbt installed (else that part is skipped)")
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per cold row (the median is reported)")
    ap.add_argument("--against", metavar="COMMIT", help="also time cold sweeps of this commit, alternately")
    ap.add_argument("--vectorbt-part", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.vectorbt_part:
        vectorbt_part(args.vectorbt_part)
        return
    os.environ.setdefault("RISKON_CACHE", tempfile.mkdtemp())
    w, k = args.workers, args.repeat
    rows: dict[str, tuple[str, int, float]] = {}  # key -> (label, combinations, seconds)
    with tempfile.TemporaryDirectory() as empty:
        n, s = cold_sweep(w, data_cache=empty)
        rows["first"] = (f"`riskon sweep`, very first run: empty numba and data caches (CSV import), {w} workers", n, s)
    from feeds.loader import load

    for key in (("^RUT", "1d"), ("BTC-USD", "1d")):
        load(*key)  # the data cache the cold rows read
    if args.against:  # the baseline's cold sweeps alternate with this checkout's, so both see the same machine
        with tempfile.TemporaryDirectory() as folder:
            base = baseline_checkout(args.against, Path(folder))
            try:
                pairs = [(cold_sweep(w), cold_sweep(w, root=base)) for _ in range(k)]
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                               capture_output=True)  # fmt: skip
        n, med, lo, hi = summary([p[0] for p in pairs])
        bn, bmed, blo, bhi = summary([p[1] for p in pairs])
        rows["baseline"] = (f"`riskon sweep` at {args.against} (baseline, run alternately with the next row), "
                            f"cold, {w} workers, median of {k} (range {blo:.2f}-{bhi:.2f} s)", bn, bmed)  # fmt: skip
    else:
        n, med, lo, hi = repeated(lambda: cold_sweep(w), k)
    rows["cold"] = (f"`riskon sweep`, cold start (new process, empty numba cache), {w} workers, median of {k} "
                    f"(range {lo:.2f}-{hi:.2f} s)", n, med)  # fmt: skip
    n, med, lo, hi = repeated(lambda: cold_compute(w), k)
    rows["cold_compute"] = (f"fast compute, cold start (imports, compile, validation, bars, kernel, metrics; no "
                            f"store), {w} workers, median of {k} (range {lo:.2f}-{hi:.2f} s)", n, med)  # fmt: skip
    from riskon.sweeps.chunks import warm_up

    warm_up()
    n, s = warm_sweep(BIG, w)
    rows["warm"] = (f"`run_sweep`, warm, {w} workers (validation + compute + DuckDB store)", n, s)
    n, s = compute_only(1)
    rows["compute1"] = ("fast compute only, warm, 1 core (bars, kernel, 12 metrics, returns arrays)", n, s)
    n, s = compute_only(w)
    rows["compute_w"] = (f"fast compute only, warm, {w} workers", n, s)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sub = subset_config(folder)
        n, s = warm_sweep(sub, w, "fast")
        rows["sub_fast"] = (f"subset ({n}): riskon sweep, fast engine, {w} workers", n, s)
        n, s = warm_sweep(sub, w, "backtrader")
        rows["sub_bt"] = (f"subset ({n}): riskon sweep, backtrader engine, {w} workers", n, s)
        n, s = optstrategy(w)
        rows["sub_opt"] = (f"subset ({n}): backtrader optstrategy, {w} processes", n, s)
        vbt = None
        if args.vectorbt_python:
            vbt = vectorbt(args.vectorbt_python, folder)
            m = vbt["combinations"]
            rows["vbt_cold"] = (f"vectorbt {vbt['version']} from_signals + 4 metrics, cold (import + compile), 1 core",
                                m, vbt["import"] + vbt["cold"])  # fmt: skip
            rows["vbt_warm"] = (f"vectorbt {vbt['version']} from_signals + 4 metrics, warm, 1 core", m, vbt["warm"])
    print(f"{os.cpu_count()} cores; load average before the run is not controlled: compare rows, not machines")
    print("| path | combinations | seconds | combinations/s |")
    print("|---|---:|---:|---:|")
    for name, n, s in rows.values():
        print(f"| {name} | {n:,} | {s:.2f} | {n / s:,.0f} |")

    def rate(key: str) -> float:
        return rows[key][1] / rows[key][2]

    print()
    print(f"cold 10,000-combination sweep: {rows['cold'][2]:.2f} s (target: under 10 s on 2 cores)")
    if "baseline" in rows:
        print(f"cold sweep vs {args.against}: {rows['baseline'][2] / rows['cold'][2]:.2f}x faster (medians)")
    print(f"fast engine vs backtrader engine (same subset, end to end): {rate('sub_fast') / rate('sub_bt'):.1f}x")
    print(f"fast engine vs optstrategy (same subset): {rate('sub_fast') / rate('sub_opt'):.1f}x")
    print(f"fast engine at scale (warm, 10,000) vs optstrategy: {rate('warm') / rate('sub_opt'):.0f}x")
    if vbt is not None:
        v = rate("vbt_warm")
        one, many = rate("compute1") / v, rate("compute_w") / v
        print(f"vs vectorbt warm: sweep end to end {rate('warm') / v:.1f}x; compute, 1 core {one:.1f}x; "
              f"compute, {w} workers {many:.1f}x")  # fmt: skip
        print(f"vs vectorbt cold: {rows['cold'][2]:.1f} s vs {rows['vbt_cold'][2]:.1f} s for the same grid")
    else:
        print("vectorbt: skipped (pass --vectorbt-python PATH, an interpreter with vectorbt installed)")


if __name__ == "__main__":
    main()
