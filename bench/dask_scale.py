"""Dask scale-out: a 10⁵-combination sweep on a LocalCluster of 1 and 2 worker processes, and on the local pool.

The config is ``runs/big_sweep.toml`` (10,000 combinations) widened by a sixth parameter,
``exits.index_drawdown`` over ten values: 100,000 combinations of the fast engine over BTC-USD's full
daily history (``--widen 1`` keeps big_sweep's 10,000 for a quick look). Each sweep runs in a new process
(``riskon.sweeps.driver.run_sweep`` imported from the tree under test) to a new DuckDB file, with a warm data
and numba cache; the time is the wall clock of the whole call (cluster start-up, validation, runs, store).

The same modes run on the commit given with ``--against`` (a ``git worktree`` of it), alternating with
this tree, ``--repeat`` rounds; medians are printed with the ratios that matter: 2 Dask workers against 1
in each tree (the scale-out), and this tree against the baseline per mode. The load average is printed
before and after (the machine is shared).

``--store`` also times the store's write throughput alone (``Store.write_batch`` of rows as the Dask
workers send them: metrics and stored fields, no daily returns), the ceiling of any cluster's throughput.

Run: ``RISKON_DATA=../shared/data python bench/dask_scale.py --against d48169d [--repeat 3] [--store]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIG = ROOT / "runs" / "big_sweep.toml"
WIDEN = '"exits.index_drawdown" = [0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50]\n'

ONE = """
import json, resource, sys, time
t0 = time.perf_counter()
from riskon.sweeps.driver import run_sweep
def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime
if __name__ == "__main__":
    cfg, db, workers, scheduler = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    res = run_sweep(cfg, db=db, workers=workers, scheduler=None if scheduler == "pool" else scheduler)
    print(json.dumps({"seconds": time.perf_counter() - t0, "ran": res.ran, "failed": res.failed,
                      "executor": res.executor, "driver_cpu": cpu(resource.RUSAGE_SELF),
                      "workers_cpu": cpu(resource.RUSAGE_CHILDREN)}))
"""

STORE = """
import sys, time
import numpy as np
from riskon.sweeps.store import Store
from riskon.sweeps.chunks import plan_setting, market_of, evaluate_chunk
from riskon.sweeps.row_fields import row_fields
from riskon.sweeps.spec import Combinations, parse_sweep
from riskon.sweeps.keys import series_needed
from feeds.loader import load
import tomllib, itertools
if __name__ == "__main__":
    path, db, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    raw = tomllib.loads(open(path).read())
    combos = list(itertools.islice(Combinations(raw, parse_sweep(raw, path), path), 2048))
    frames = {k: load(*k) for k in series_needed([combos[0][1]])}
    members = [(ov, cfg, f"{i:020x}") for i, (ov, cfg) in enumerate(combos)]
    rows = []
    for chunk in plan_setting(members, market_of(combos[0][1], frames), {}, "bench", 256):
        for r in evaluate_chunk(chunk):
            returns, rf = r.pop("returns"), r.pop("rf", None)
            if returns is not None:
                r.update(row_fields(returns, rf))
            r["returns"] = None
            rows.append(r)
    store = Store(db)
    store.put_sweep({"sweep_id": "bench", "name": "bench", "config_text": "", "spec": "{}", "fingerprints": {},
                     "code_version": "", "status": "running", "n_total": n, "strategy_key": "", "rule_hashes": {}})
    t0 = time.perf_counter()
    written = 0
    k = 0
    while written < n:
        batch = []
        while len(batch) < size:
            batch += [dict(r, run_id=f"{k:08x}{r['run_id'][8:]}") for r in rows]
            k += 1
        store.write_batch(batch)
        written += len(batch)
    dt = time.perf_counter() - t0
    print(written, dt)
"""


def config(folder: Path, widen: bool) -> Path:
    """big_sweep.toml, widened to 10⁵ combinations unless not ``widen``; commits of 8,192 runs."""
    text = BIG.read_text(encoding="utf-8").replace('name = "big_sweep"', 'name = "dask_scale"')
    if widen:
        text = text.rstrip("\n") + "\n" + WIDEN
    path = folder / "dask_scale.toml"
    path.write_text(text, encoding="utf-8")
    return path


def once(tree: Path, cfg: Path, folder: Path, workers: int, scheduler: str) -> dict:
    """One sweep in a new process importing ``tree``'s riskon, to a new store."""
    db = Path(tempfile.mkdtemp(dir=folder)) / "s.duckdb"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", ONE, str(cfg), str(db), str(workers), scheduler], env=env,
                          capture_output=True, text=True, cwd=tree)  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"sweep failed in {tree} ({scheduler}, {workers}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Time every mode on this tree and the baseline, alternating; print medians and ratios."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", required=True, metavar="COMMIT", help="the baseline commit (a git worktree of it)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--widen", type=int, default=10, choices=(1, 10), help="10: 10⁵ combinations; 1: 10⁴")
    ap.add_argument("--modes", default="dask1,dask2,pool", help="comma-separated: dask1, dask2, pool")
    ap.add_argument("--store", action="store_true", help="also time the store's write throughput")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="dask-scale-") as tmp:
        folder = Path(tmp)
        base = folder / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.against], check=True,
                       capture_output=True)  # fmt: skip
        try:
            cfg = config(folder, args.widen == 10)
            modes = {"dask1": (1, "local"), "dask2": (2, "local"), "pool": (2, "pool")}
            chosen = [m for m in args.modes.split(",") if m in modes]
            times: dict[tuple[str, str], list[float]] = {}
            small = config(folder / "small", False) if (folder / "small").mkdir() is None else None
            for tree in (ROOT, base):  # warm-up, not timed: data cache, each tree's numba cache, lookahead verdicts
                once(tree, small, folder, 2, "local")
            for rnd in range(args.repeat):
                for mode in chosen:
                    order = (("this", ROOT), ("base", base))
                    for name, tree in order if rnd % 2 == 0 else order[::-1]:
                        out = once(tree, cfg, folder, *modes[mode])
                        times.setdefault((name, mode), []).append(out["seconds"])
                        print(f"round {rnd + 1} {name:4} {mode:5}: {out['seconds']:7.1f} s ({out['ran']} runs, "
                              f"{out['executor']}; CPU s: driver {out['driver_cpu']:.1f}, its child processes "
                              f"{out['workers_cpu']:.1f}; load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"\nmedians of {args.repeat} rounds, {'10⁵' if args.widen == 10 else '10⁴'} combinations:")
            for mode in chosen:
                this, old = med[("this", mode)], med[("base", mode)]
                print(f"  {mode:5}  this {this:7.1f} s   base {old:7.1f} s   base/this {old / this:5.2f}x")
            if "dask1" in chosen and "dask2" in chosen:
                for name in ("this", "base"):
                    ratio = med[(name, "dask1")] / med[(name, "dask2")]
                    print(f"  {name}: 2 Dask workers against 1: {ratio:.2f}x")
            for size in (2048, 8192) if args.store else ():  # a commit's fixed cost against its size
                db = Path(tempfile.mkdtemp(dir=folder)) / "w.duckdb"
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                proc = subprocess.run([sys.executable, "-c", STORE, str(cfg), str(db), "98304", str(size)],
                                      capture_output=True, text=True, cwd=ROOT, env=env, check=True)  # fmt: skip
                n, dt = proc.stdout.split()
                print(f"  store write_batch: {int(n):,} rows in {float(dt):.2f} s = {int(n) / float(dt):,.0f} rows/s "
                      f"({float(dt) / int(n) * 1e6:.0f} µs per row, batches of {size:,})")  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
