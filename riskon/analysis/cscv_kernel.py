"""CSCV over per-block sums of many strategies in one compiled pass per step: 10⁶ strategies in ~40 s of one core.

What ``riskon.analysis.overfitting._additive_parts`` computed with a membership-matrix product and a ranking
per split (~1 TB of memory traffic at N = 10⁶), fused over tiles of ``TILE`` strategies that stay in cache:

1. **Best in sample.** The training halves are visited in ``itertools.combinations`` order (the split
   index), each half's sums built from its prefix (the blocks in ascending order, added left to right:
   ``((0.0 + b[i0]) + b[i1]) + …``), so each half costs about two additions per statistic. Per split the
   best score, the number of strategies tied exactly for it and the first of them are kept.
2. **Tied winners.** Only for splits with an exact tie: the out-of-sample scores of every tied winner, in
   strategy order.
3. **Ranks out of sample.** Every half is also the test half of the complementary split: per split, the
   strategies scoring below and equal to the winner's out-of-sample score (or each tied winner's).

Scores are the objective's own doubles (``_exact``: the arithmetic of ``overfitting``'s ``_sharpe_finish``,
``_sortino_finish``, ``_growth_finish``, element by element). Most comparisons are settled without them:
Sharpe and Sortino compare the signed square of the score, a product and a difference of the sums with
no division or square root, and a comparison within a relative 1e-12 of its threshold (or near a flat
half, or with huge, tiny or non-finite numbers) is done on the exact score instead. Memory: a tile's
sums and a few arrays per split; nothing of size splits × strategies.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numba import njit

#: Strategies per tile: two statistics' prefix sums (8 levels) and block sums stay in the core's L2 cache.
TILE = 256
#: A comparison whose two sides differ by less than this relative margin is done on the exact scores.
_REL = 1e-12
#: Objectives by kind: 0 Sharpe (sums r, r²), 1 Sortino (r, min(r, 0)²), 2 mean log growth (log(1 + r)).
KINDS = ("sharpe", "sortino", "log_growth")


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _exact(kind, s0, s1, nf, nm1):
    """The objective's score from a half's sums, as NumPy computes it for one column (NaN stays NaN)."""
    mean = s0 / nf
    if kind == 2:
        return mean
    if kind == 0:
        var = (s1 - s0 * mean) / nm1
        if var <= 1e-12 * (s1 / nf):
            if mean == 0:
                return 0.0
            return math.inf if mean > 0 else -math.inf
        return mean / math.sqrt(var)
    down = math.sqrt(s1 / nf)
    if down > 0:
        return mean / down
    return 0.0 if mean == 0 else math.inf


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _ranked(x):
    """NaN scores rank lowest (as -inf), as in ``_score_splits``."""
    return -math.inf if x != x else x


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _params(kind, nf, nm1):
    """``_sure``'s constants per kind: g, δ, flat margin, threshold scale (score·|score| = s0·|s0| / (w·scale))."""
    if kind == 0:  # Sharpe: w = n·s1 − s0², scale n/(n−1)
        return nf, 1.0, 1e-9, nf / nm1
    if kind == 1:  # Sortino: w = s1, scale n
        return 1.0, 0.0, 0.0, nf
    return nf * nf, 0.0, 0.0, 1.0  # growth: s1 is ~1 (``_load``), w = n²


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _setup(v, scale):
    """Per threshold ``v``: (v·|v|·scale, nothing can be settled: v is infinite, or too small or large)."""
    if not abs(v) < 1e100 or (v != 0.0 and abs(v) < 1e-100):
        return 0.0, True
    return v * abs(v) * scale, False


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _safe(blk0, blk1, m):
    """True when a tile's block sums are finite and, where not 0, within 1e-50..1e50 in size (and the
    second statistic's >= 0): then ``_sure`` needs no check for overflow or underflow (a half's s0 is 0
    or at least ~1e-66, a multiple of the smallest block's last digit)."""
    for k in range(blk0.shape[0]):
        for i in range(m):
            x, y = abs(blk0[k, i]), blk1[k, i]
            if not (x == 0.0 or 1e-50 <= x <= 1e50) or not (y == 0.0 or 1e-50 <= y <= 1e50):
                return False
    return True


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _sure(s0, s1, g, dl, th, vv):
    """(score surely below the threshold, surely above it), without the score's divisions and square root.

    Compares a − V·w, where score·|score| = a / w up to the scale folded into V (``_setup``): a = s0·|s0|;
    Sharpe w = n·s1 − s0², Sortino w = s1, growth w = n² (s1 ~ 1). Settles nothing near a flat half
    (Sharpe: w <= 1e-9·n·s1; Sortino: s1 = 0) or when the two sides are within a relative 1e-12 (which
    covers the rounding of this and of the exact arithmetic). For a tile that is ``_safe`` only.
    Branch-free, so that the loops over a tile vectorise.
    """
    q = s0 * s0  # = |a|
    gs = g * s1
    dq = dl * q
    w = gs - dq
    diff = s0 * abs(s0) - vv * w
    tol = _REL * (q + abs(vv) * (gs + dq))
    ok = w > th * gs
    return ok & (diff < -tol), ok & (diff > tol)


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _next(idx, n_blocks):
    """Advance ``idx`` to the next combination in lexicographic order; the first position changed, or -1."""
    h = idx.shape[0]
    p = h - 1
    while p >= 0 and idx[p] == n_blocks - h + p:
        p -= 1
    if p < 0:
        return -1
    idx[p] += 1
    for q in range(p + 1, h):
        idx[q] = idx[q - 1] + 1
    return p


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _prefix(part0, blk0, part1, blk1, idx, start, m):
    """Prefix sums but the last: part[p] = ((0.0 + blk[idx[0]]) + blk[idx[1]]) + … + blk[idx[p]], p < h − 1,
    for both statistics. A half's sum is part[h − 2] + blk[idx[h − 1]] (``_leaf``), added where it is used.
    """
    for p in range(start, idx.shape[0] - 1):
        k = idx[p]
        if p == 0:
            for i in range(m):
                part0[0, i] = 0.0 + blk0[k, i]
                part1[0, i] = 0.0 + blk1[k, i]
        else:
            for i in range(m):
                part0[p, i] = part0[p - 1, i] + blk0[k, i]
                part1[p, i] = part1[p - 1, i] + blk1[k, i]


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _leaf(part, blk, h, k, i):
    """Strategy ``i``'s sum over the half whose last block is ``k`` (``_prefix``)."""
    return (0.0 if h == 1 else part[h - 2, i]) + blk[k, i]


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _half_sum(b, col, blocks, c):
    """Column ``col``'s sum over ``blocks[c]`` (ascending): the same doubles as ``_prefix`` and ``_leaf``."""
    acc = 0.0
    for j in range(blocks.shape[1]):
        acc = acc + b[blocks[c, j], col]
    return acc


@njit(cache=True, error_model="numpy", no_cpython_wrapper=True)
def _load(b0, b1, lo, m, blk0, blk1, kind):
    """A tile's block sums; growth's second statistic is 1/h per block, so that every half sums to ~1."""
    one = 2.0 / b0.shape[0]
    for k in range(b0.shape[0]):
        for i in range(m):
            blk0[k, i] = b0[k, lo + i]
            blk1[k, i] = one if kind == 2 else b1[k, lo + i]


#: ``sweep`` modes.
BEST, COLLECT, COUNT = 0, 1, 2


@njit(cache=True, error_model="numpy")
def sweep(mode, b0, b1, kind, nf, nm1, tile, select, opp, complement, best, n_tied, first, out, t_start, t_values):
    """One pass over all strategies (columns of the S × N ``b0``, ``b1``), tile by tile, every half visited.

    ``BEST`` (step 1): the half visited as combination ``c`` is split ``c``'s training half; ``best``,
    ``n_tied``, ``first`` per split (start: -inf, 0, -1). ``COLLECT`` (step 2): for each split with
    ``select``, the raw out-of-sample score of each strategy whose in-sample score equals ``best`` goes to
    ``out[t_start[c]]``, ``t_start[c]`` advancing (strategy order). ``COUNT`` (step 3): the half visited as
    ``b`` is the test half of split ``c = opp[b]``; ``n_tied[c]`` and ``first[c]`` count the strategies
    below and equal to ``best[c]`` (the target: the winner's ranked out-of-sample score). A split with
    ``select`` has several targets instead: the sorted distinct ``t_values[t_start[c]:t_start[c + 1]]``;
    ``out[j]`` counts the strategies whose first target above them is ``j`` (a cumulative sum per split
    gives the count below each target) and ``out[len(t_values) + j]`` those equal to target ``j``.
    """
    n_blocks, n = b0.shape
    h = n_blocks // 2
    nt = t_values.shape[0]
    g, dl, th, scale = _params(kind, nf, nm1)
    blk0, blk1 = np.empty((n_blocks, tile)), np.empty((n_blocks, tile))
    part0, part1 = np.empty((h, tile)), np.empty((h, tile))
    idx = np.empty(h, dtype=np.int64)
    for lo in range(0, n, tile):
        m = min(tile, n - lo)
        _load(b0, b1, lo, m, blk0, blk1, kind)
        safe = _safe(blk0, blk1, m)
        for p in range(h):
            idx[p] = p
        start, b = 0, 0
        while start >= 0:
            _prefix(part0, blk0, part1, blk1, idx, start, m)
            k = idx[h - 1]
            c = opp[b] if mode == COUNT else b
            if mode == COUNT and select[c]:  # several targets: exact scores, bisection
                lo_t, hi_t = t_start[c], t_start[c + 1]
                for i in range(m):
                    x = _ranked(_exact(kind, _leaf(part0, blk0, h, k, i), _leaf(part1, blk1, h, k, i), nf, nm1))
                    j, top = lo_t, hi_t  # the first target above x
                    while j < top:
                        mid = (j + top) // 2
                        if t_values[mid] <= x:
                            j = mid + 1
                        else:
                            top = mid
                    if j < hi_t:
                        out[j] += 1
                    if j > lo_t and t_values[j - 1] == x:
                        out[nt + j - 1] += 1
            elif mode != COLLECT or select[c]:
                vv, none = _setup(best[c], scale)
                settle = safe and not none and (mode == COUNT or n_tied[c] > 0)
                n_lt, n_sure = 0, 0
                if settle and mode == COUNT:
                    for i in range(m):
                        lt, gt = _sure(_leaf(part0, blk0, h, k, i), _leaf(part1, blk1, h, k, i), g, dl, th, vv)
                        n_lt += lt
                        n_sure += lt | gt
                elif settle:  # the best so far: only "surely below" counts
                    for i in range(m):
                        n_lt += _sure(_leaf(part0, blk0, h, k, i), _leaf(part1, blk1, h, k, i), g, dl, th, vv)[0]
                if mode == COUNT:
                    n_tied[c] += n_lt
                for i in range(m if (n_sure < m if mode == COUNT else n_lt < m) else 0):
                    s0, s1 = _leaf(part0, blk0, h, k, i), _leaf(part1, blk1, h, k, i)
                    if settle:
                        lt, gt = _sure(s0, s1, g, dl, th, vv)
                        if lt or (gt and mode == COUNT):
                            continue
                    x = _ranked(_exact(kind, s0, s1, nf, nm1))
                    if mode == COUNT:
                        n_tied[c] += x < best[c]
                        first[c] += x == best[c]
                    elif mode == COLLECT:
                        if x == best[c]:
                            col = lo + i
                            s0, s1 = _half_sum(b0, col, complement, c), _half_sum(b1, col, complement, c)
                            out[t_start[c]] = _exact(kind, s0, s1, nf, nm1)
                            t_start[c] += 1
                    elif n_tied[c] == 0 or x > best[c]:
                        best[c], n_tied[c], first[c] = x, 1, lo + i
                        vv, none = _setup(x, scale)
                        settle = safe and not none
                    elif x == best[c]:
                        n_tied[c] += 1
            start = _next(idx, n_blocks)
            b += 1


@njit(cache=True, error_model="numpy")
def winners_oos(b0, b1, kind, nf, nm1, first, complement):
    """The raw out-of-sample score of each split's (first) in-sample winner."""
    out = np.empty(first.shape[0])
    for c in range(first.shape[0]):
        s0, s1 = _half_sum(b0, first[c], complement, c), _half_sum(b1, first[c], complement, c)
        out[c] = _exact(kind, s0, s1, nf, nm1)
    return out


def plan(n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Each split's test half (the blocks not in its training half, ``itertools.combinations`` order), and
    for each half the split whose test half it is."""
    halves = list(itertools.combinations(range(n_blocks), n_blocks // 2))
    where = {c: i for i, c in enumerate(halves)}
    everything = frozenset(range(n_blocks))
    complement = [tuple(sorted(everything.difference(c))) for c in halves]
    opp = np.array([where[c] for c in complement], dtype=np.int64)
    return np.array(complement, dtype=np.int64), opp
