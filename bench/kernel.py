"""Warm fast-engine compute per combination on one core, against a baseline commit, measured in one run.

Each measurement is a fresh interpreter with one checkout first on ``PYTHONPATH`` (this one, or a git
worktree of ``--against``). It validates ``runs/big_sweep.toml``'s 10,000 combinations, plans them into
chunks of 256 (``riskon.sweeps.chunks.plan``: bars, market arrays, kernel arguments), warms the kernel up,
then times, per combination and on one core:

* **compute**: ``evaluate_chunk`` over every chunk: the simulator, the daily returns, all twelve metrics and
  the store rows (what a worker does per combination);
* **kernel**: the simulator alone (``strategies.fastsim._simulate``) on the same chunks;
* **plan**: ``plan`` itself (what the driver, or a range worker, does per combination before a chunk runs).

Each figure is the best of ``--inner`` passes inside one process (the least disturbed by other load); the
processes alternate between the two checkouts ``--repeat`` times and the medians are compared. The load
average is printed before and after: the machine is shared.

Run: ``RISKON_DATA=../shared/data python bench/kernel.py --against ad78df7 [--repeat 5]``.
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

PART = r"""
import json, sys, time, tomllib
from pathlib import Path
import numpy as np
from feeds.loader import load
from riskon.sweeps import chunks as fastsweep
from riskon.sweeps.keys import series_needed
from riskon.sweeps.spec import combinations, parse_sweep
from strategies.fastsim import _NCOL, _simulate

path, inner = Path(sys.argv[1]), int(sys.argv[2])
raw = tomllib.loads(path.read_text())
combos, _ = combinations(raw, parse_sweep(raw, str(path)), str(path))
frames = {key: load(*key) for key in series_needed([c for _, c in combos])}
tasks = [(ov, cfg, f"r{i}") for i, (ov, cfg) in enumerate(combos)]
fastsweep.warm_up()
best = {"plan": 1e9, "compute": 1e9, "kernel": 1e9}
for _ in range(inner):
    t = time.perf_counter()
    chunks = list(fastsweep.plan(tasks, frames, "bench", 256))
    best["plan"] = min(best["plan"], time.perf_counter() - t)
    t = time.perf_counter()
    ok = sum(row["status"] == "ok" for c in chunks for row in fastsweep.evaluate_chunk(c))
    best["compute"] = min(best["compute"], time.perf_counter() - t)
    t = time.perf_counter()
    for c in chunks:
        n_coins, n = c.market.args[1].shape
        eq, rec = np.empty(n), np.full((n * n_coins // 2 + n_coins + 1, _NCOL), np.nan)
        for _, _, pargs in c.items:
            _simulate(*c.market.args, *pargs, eq, rec)
    best["kernel"] = min(best["kernel"], time.perf_counter() - t)
assert ok == len(tasks), (ok, len(tasks))
print(json.dumps({k: v / len(tasks) * 1e6 for k, v in best.items()}))
"""


def measure(root: Path, inner: int) -> dict[str, float]:
    """Microseconds per combination (plan, compute, kernel) of the checkout at ``root``, in a new process."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", PART, str(ROOT / "runs" / "big_sweep.toml"), str(inner)],
                         env=env, capture_output=True, text=True, cwd=root)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"measurement in {root} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", required=True, metavar="COMMIT", help="the baseline commit (a git worktree of it)")
    ap.add_argument("--repeat", type=int, default=5, help="processes per checkout, alternating")
    ap.add_argument("--inner", type=int, default=3, help="passes per process (the best is kept)")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.against], check=True,
                       capture_output=True)  # fmt: skip
        try:
            measure(base, 1)  # fill the baseline's numba cache: every timed process loads its kernels from it
            measure(ROOT, 1)
            runs = [(measure(base, args.inner), measure(ROOT, args.inner)) for _ in range(args.repeat)]
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"\n| per combination, one core, warm (median of {args.repeat}; range) | {args.against} | this checkout | x |"
    )
    print("|---|---:|---:|---:|")
    for key, label in (("compute", "compute: kernel, returns, 12 metrics, rows"), ("kernel", "the kernel alone"),
                       ("plan", "plan: bars, arrays, kernel arguments")):  # fmt: skip
        b = [r[0][key] for r in runs]
        c = [r[1][key] for r in runs]
        bm, cm = statistics.median(b), statistics.median(c)
        print(f"| {label} | {bm:.1f} µs ({min(b):.0f}-{max(b):.0f}) | {cm:.1f} µs ({min(c):.0f}-{max(c):.0f}) "
              f"| {bm / cm:.2f} |")  # fmt: skip
    both = [(r[0]["compute"] + r[0]["plan"], r[1]["compute"] + r[1]["plan"]) for r in runs]
    bm, cm = statistics.median(b for b, _ in both), statistics.median(c for _, c in both)
    print(f"| compute + plan | {bm:.1f} µs | {cm:.1f} µs | {bm / cm:.2f} |")


if __name__ == "__main__":
    main()
