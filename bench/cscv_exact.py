"""CSCV's doubles against a baseline tree: randomized cases, every field compared bit for bit.

The cases (``pbo`` on matrices of N = 2-4,000 strategies and 2-16 blocks with planted ties, flat and
constant runs, last-digit near-twins, tiny and huge returns and NaN rows; ``pbo_from_blocks`` on extreme
and on non-finite sums) are generated here, computed by each tree in a subprocess (``PYTHONPATH=TREE``;
the baseline on one BLAS thread, ``OPENBLAS_NUM_THREADS=1``, unless ``--base-threads`` says otherwise),
and each result's fields (PBO, logits, in- and out-of-sample scores, overfit and loss shares, tie count)
compared as bits. Differing results are listed with the splits (rows) that differ.

    python bench/cscv_exact.py --baseline /tmp/C-base
"""

from __future__ import annotations

import argparse
import collections
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

OBJECTIVES = ("sharpe", "sortino", "log_growth")
FIELDS = ("pbo", "logits", "is_best", "oos_best", "overfit", "oos_loss", "tied", "n_strategies", "duplicates")

_WORKER = """
import pickle, sys
import riskon
from riskon.analysis import overfitting as o

with open(sys.argv[1], "rb") as f:
    cases = pickle.load(f)
out = []
for kind, splits, data in cases:
    for name in ("sharpe", "sortino", "log_growth"):  # OBJECTIVES
        fn = getattr(o, name)
        try:
            if kind == "matrix":
                r = o.pbo(data, splits, fn)
            else:
                r = o.pbo_from_blocks([data[0]] if name == "log_growth" else list(data), 10, fn)
            out.append({k: getattr(r, k) for k in sys.argv[3].split(",")})  # FIELDS
        except o.RobustnessError as e:
            out.append(("refused", str(e)))
with open(sys.argv[2], "wb") as f:
    pickle.dump((riskon.__file__, out), f)
"""


def planted(rng: np.random.Generator, t: int, n: int, level: int) -> np.ndarray:
    """T x n returns; ``level`` adds flat runs (1), twins that tie in sample (2), extremes and near-twins
    (3), NaN rows (4)."""
    m = rng.normal(0.0003, 0.01, (t, n)) + rng.normal(0.0, 0.0005, n)
    if level >= 1:
        m[rng.random((t, n)) < 0.3] = 0.0
        m[:, 0] = 0.0
        if n > 2:
            m[:, 1] = -1e-4
    if level >= 2 and n >= 6:
        for j in range(2, n // 2):  # twins unlike their source in one stretch: exact in-sample ties
            if rng.random() < 0.5:
                m[:, j] = m[:, rng.integers(2, n)]
                k = rng.integers(0, t - t // 8)
                m[k : k + t // 8, j] = rng.normal(0.0, 0.01, t // 8)
        m[:, 2] += 0.003
        m[:, 3] = m[:, 2]
        m[: t // 4, 3] = m[: t // 4, 2][::-1]
    if level >= 3 and n >= 8:
        m[:, 4] *= 1e-55
        m[:, 5] *= 1e40
        m[:, 6] = m[:, 2] * (1 + 2.0**-52)
        m[:, 7] = m[:, 2] * (1 - 2.0**-52)
    if level >= 4:
        m[rng.integers(0, t, 3), rng.integers(0, n, 3)] = np.nan
    return m


def cases() -> list[tuple[str, int, object]]:
    """(kind, splits, data): matrices for ``pbo``, (sums of r, sums of r²) for ``pbo_from_blocks``."""
    rng = np.random.default_rng(20261207)
    out = []
    for n in (2, 3, 5, 9, 17, 40, 64, 150, 255, 256, 257, 399, 400, 401, 700, 1500, 4000):
        for s in (2, 4, 6, 8, 16):
            if n > 1500 and s != 16:
                continue
            for level in (0, 2, 3, 4):
                t = max(int(rng.integers(2 * s, 40 * s)) if s < 16 else int(rng.integers(40, 700)), 2 * s + 1)
                out.append(("matrix", s, planted(rng, t, n, level)))
    for n in (3, 12, 100, 399, 1000, 3000):
        for s in (4, 16):
            s0 = rng.normal(0.0, 0.1, (s, n))
            s1 = s0**2 / 20 + rng.random((s, n)) * 0.01
            s0[:, 0] = s1[:, 0] = 0.0
            s0[:, 3 % n] *= 1e-60
            s1[:, 3 % n] *= 1e-120
            if n > 6:
                s0[:, 4] *= 1e70
                s1[:, 4] *= 1e140
                s0[:, 5], s1[:, 5] = s0[:, 6], s1[:, 6]
            out.append(("blocks", s, (s0, s1)))
            for bad in (np.nan, np.inf):
                s1b = s1.copy()
                s1b[1, 2] = bad
                out.append(("blocks", s, (s0, s1b)))
    return out


def compute(tree: str, path: Path, out: Path, threads: str | None) -> list:
    """Every case's result (or refusal) computed by ``tree`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": tree}
    if threads:
        env["OPENBLAS_NUM_THREADS"] = threads
    subprocess.run(
        [sys.executable, "-c", _WORKER, str(path), str(out), ",".join(FIELDS)], env=env, cwd=tree, check=True
    )
    with open(out, "rb") as f:
        file, results = pickle.load(f)
    if not file.startswith(str(Path(tree).resolve())):
        raise SystemExit(f"riskon was imported from {file}, not from {tree}")
    return results


def bits(v) -> np.ndarray:
    """The value as comparable bits (floats) or values."""
    a = np.atleast_1d(np.asarray(v))
    return a.astype("float64").view(np.uint64) if a.dtype.kind == "f" else a


def main() -> None:
    """Compute every case with both trees and print how many results are identical and where others differ."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="/tmp/C-base")
    ap.add_argument("--base-threads", default="1", help="OPENBLAS_NUM_THREADS for the baseline ('' leaves it)")
    args = ap.parse_args()
    here = str(Path(__file__).resolve().parents[1])
    all_cases = cases()
    labels = [(kind, splits, np.shape(data[0] if kind == "blocks" else data), name)
              for kind, splits, data in all_cases for name in OBJECTIVES]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.pkl"
        with open(path, "wb") as f:
            pickle.dump(all_cases, f)
        base = compute(args.baseline, path, Path(tmp) / "base.pkl", args.base_threads or None)
        cur = compute(here, path, Path(tmp) / "cur.pkl", None)
    tally = collections.Counter()
    for label, b, c in zip(labels, base, cur, strict=True):
        if isinstance(c, tuple) or isinstance(b, tuple):
            tally[f"{label[0]}: refused here" if isinstance(c, tuple) else f"{label[0]}: refused by the baseline"] += 1
            continue
        rows = set()
        for k in FIELDS:
            x, y = bits(b[k]), bits(c[k])
            if x.shape != y.shape or not np.array_equal(x, y):
                rows |= set(np.nonzero(x != y)[0].tolist()) if x.shape == y.shape else {-1}
        if not rows:
            tally[f"{label[0]}: identical"] += 1
        else:
            tally[f"{label[0]}: differ"] += 1
            print(f"differ: {label[0]} N = {label[2][1]}, {label[1]} blocks, {label[3]}: splits {sorted(rows)[:8]}")
    for k, v in sorted(tally.items()):
        print(f"{v:5d}  {k}")


if __name__ == "__main__":
    main()
