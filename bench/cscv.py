"""PBO by CSCV from per-block sums at 10⁴, 10⁵ and 10⁶ strategies: the fused kernel against the commit before it.

Synthetic per-block sums from a seeded generator (16 blocks of 62 days, the Sharpe objective: sums of r
and r² per block; per-strategy skill and volatility vary, one flat strategy, and the most skilled one
has a twin that differs in one block, so some splits have exact in-sample ties). For each N the current
``pbo_from_blocks`` runs in this process and the baseline commit's in a subprocess
(``PYTHONPATH=<baseline worktree>``) on the same arrays, alternating, the median of the repetitions
kept; both results are compared (PBO, every logit, overfit shares and tie count exactly; the in- and
out-of-sample scores to the last digit, where the baseline's BLAS product added a few halves in another
order). Also the kernel's cold compile time (an empty numba cache, in a subprocess) and peak memory.

    git worktree add /tmp/C-base 38c9c49
    python bench/cscv.py --baseline /tmp/C-base [--sizes 10000,100000,1000000] [--base-max 100000] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BLOCK, SPLITS = 62, 16

_WORKER = """
import json, sys, time
import numpy as np
import riskon
from riskon.analysis.overfitting import pbo_from_blocks, sharpe


def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key))


rng = np.random.default_rng(0)
s0 = rng.normal(0, 0.1, (16, 50))
pbo_from_blocks([s0, s0 * s0 / 62 + 0.01], 62)  # warm: the compiled kernel loaded from its cache
data = np.load(sys.argv[1])
blocks = [np.ascontiguousarray(data["s0"]), np.ascontiguousarray(data["s1"])]
loaded = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # the peak from here on
    f.write("5")
w, c = time.perf_counter(), time.process_time()
res = pbo_from_blocks(blocks, int(sys.argv[3]), sharpe)
wall, cpu = time.perf_counter() - w, time.process_time() - c
extra = status("VmHWM") - loaded
np.savez(sys.argv[2], logits=res.logits, is_best=res.is_best, oos_best=res.oos_best, overfit=res.overfit,
         oos_loss=res.oos_loss, scalars=np.array([res.pbo, res.tied, res.n_strategies]))
print(json.dumps({"wall": wall, "cpu": cpu, "extra_mb": extra, "loaded_mb": loaded, "file": riskon.__file__}))
"""

_COLD = """
import time, numpy as np
w, c = time.perf_counter(), time.process_time()
from riskon.analysis.overfitting import pbo_from_blocks
rng = np.random.default_rng(0)
s0 = rng.normal(0, 0.1, (16, 50))
pbo_from_blocks([s0, s0 * s0 / 62 + 0.01], 62)
print(time.perf_counter() - w, time.process_time() - c)
"""


def synthetic(n: int, seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    """16 × n sums of r and r² per block of ``BLOCK`` days (Sharpe's statistics), as a sweep would store."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 0.0005, n)
    mu[n // 2] = 0.003  # one clearly skilled strategy (and its twin, below)
    sigma = 0.02 * np.exp(rng.normal(0.0, 0.2, n))
    s0 = mu * BLOCK + sigma * np.sqrt(BLOCK) * rng.standard_normal((SPLITS, n))
    s1 = s0 * s0 / BLOCK + sigma**2 * rng.gamma((BLOCK - 1) / 2, 2.0, (SPLITS, n))
    s0[:, 0] = s1[:, 0] = 0.0  # flat in cash
    best, twin = n // 2, n // 2 + 1
    s0[:, twin], s1[:, twin] = s0[:, best], s1[:, best]
    s0[3, twin] += 0.01  # unlike its twin in block 3: the two tie whenever block 3 is out of sample
    return s0, s1


def _run(tree: str, data: Path, out: Path) -> dict:
    """``pbo_from_blocks`` on the saved sums in a fresh process importing riskon from ``tree``."""
    env = {**os.environ, "PYTHONPATH": tree}
    proc = subprocess.run([sys.executable, "-c", _WORKER, str(data), str(out), str(BLOCK)], env=env, cwd=tree,
                          capture_output=True, text=True, check=True)  # fmt: skip
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if not got["file"].startswith(str(Path(tree).resolve())):
        raise SystemExit(f"riskon was imported from {got['file']}, not from {tree}")
    return got


def _compare(cur: dict, base: dict) -> str:
    same = all(np.array_equal(cur[k], base[k]) for k in ("scalars", "logits", "overfit", "oos_loss"))
    diff, rel = 0, 0.0
    for k in ("is_best", "oos_best"):
        a, b = cur[k], base[k]
        ok = np.isfinite(a) & np.isfinite(b) & (a != 0)
        diff += int((a != b).sum())
        rel = max(rel, float(np.max(np.abs(a[ok] - b[ok]) / np.abs(a[ok]))) if ok.any() else 0.0)
    return (
        f"{'same' if same else 'DIFFERENT'} PBO, tie count, logits, overfit and loss shares; "
        f"in/out-of-sample scores differing in {diff} of {2 * len(cur['logits'])} (max relative {rel:.1e})"
    )


def main() -> None:
    """Time the kernel against the baseline commit and print seconds, ratios and the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="/tmp/C-base")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--base-max", type=int, default=100_000, help="largest N the baseline runs at")
    ap.add_argument("--reps", type=int, default=3, help="repetitions at N <= 10^4 (one above)")
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} UTC; load average {os.getloadavg()}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as cache:
        proc = subprocess.run([sys.executable, "-c", _COLD], env={**os.environ, "NUMBA_CACHE_DIR": cache},
                              capture_output=True, text=True, check=True)  # fmt: skip
        wall, cpu = map(float, proc.stdout.split())
        print(f"cold start (empty numba cache: import + compile + a 50-strategy CSCV): {wall:.1f} s, {cpu:.1f} s CPU")
    here = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            data, out, out_base = Path(tmp) / "blocks.npz", Path(tmp) / "cur.npz", Path(tmp) / "base.npz"
            s0, s1 = synthetic(n)
            np.savez(data, s0=s0, s1=s1)
            del s0, s1
            reps = args.reps if n <= 10_000 else 1
            with_base = bool(args.baseline) and n <= args.base_max
            cur, base = [], []
            for _ in range(reps):  # alternating
                if with_base:
                    base.append(_run(args.baseline, data, out_base))
                cur.append(_run(here, data, out))
            c_wall, c_cpu = (statistics.median(t[k] for t in cur) for k in ("wall", "cpu"))
            got = dict(np.load(out))
            line = (
                f"N = {n:>9,}: fused {c_wall:7.2f} s ({c_cpu:.2f} s CPU, +{max(t['extra_mb'] for t in cur):.0f} MB "
                f"over the {cur[0]['loaded_mb']:.0f} MB process holding the sums), PBO {got['scalars'][0]:.4f}, "
                f"{int(got['scalars'][1])} tied splits"
            )
            if with_base:
                b_wall, b_cpu = (statistics.median(t[k] for t in base) for k in ("wall", "cpu"))
                line += (
                    f"; baseline {b_wall:7.2f} s ({b_cpu:.2f} s CPU, +{max(t['extra_mb'] for t in base):.0f} MB); "
                    f"{b_wall / c_wall:.1f}x faster ({b_cpu / c_cpu:.1f}x in CPU time)"
                )
            print(line + f"; load average {os.getloadavg()[0]:.1f}", flush=True)
            if with_base:
                print("    " + _compare(got, dict(np.load(out_base))), flush=True)
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
