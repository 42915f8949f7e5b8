"""The stored fields of many runs at once (``fields_of_rows``), and a store without key indexes.

``fields_of_rows`` must give the very doubles of one run at a time (the bit-for-bit PBO and the rebuild
check depend on them), and the block sums the doubles of a plain per-block NumPy sum over each run's
own returns (a second implementation written out here). The store's ``runs`` and ``sweep_runs`` carry
no key index: writing the same runs or links twice must still leave one of each.
"""

from __future__ import annotations

import hashlib
import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from riskon.metrics import METRICS
from riskon.sweeps.row_fields import N_BLOCKS, add_fields, fields_of_rows, row_fields, unpack_blocks
from riskon.sweeps.store import Store


def _returns(rng, k: int, n: int) -> np.ndarray:
    r = rng.normal(0.0005, 0.03, (k, n)) * (rng.random((k, n)) < 0.6)  # days in cash are exact zeros
    if n > 3:
        r[0] = 0.0  # a flat run
        r[:, 1] = -1.0  # a total loss (log1p clipped)
        r[:, 2] = -0.0
    return r


def _same(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)


@pytest.mark.parametrize("n", [1, 2, 31, 32, 33, 100, 4357])
@pytest.mark.parametrize("with_rf", [False, True])
def test_many_runs_at_once_give_the_doubles_of_one_at_a_time(n, with_rf):
    rng = np.random.default_rng(n)
    r = _returns(rng, 70, n)  # more than ROWS_AT_ONCE: several groups
    rf = rng.normal(1e-4, 1e-5, n) if with_rf else None
    batch = fields_of_rows(r, rf)
    assert len(batch) == 70
    assert all(_same(batch[i], row_fields(r[i], rf)) for i in range(70))


def test_block_sums_digest_and_moments_against_a_plain_second_implementation():
    rng = np.random.default_rng(7)
    n = 4357
    r = _returns(rng, 5, n)
    rf = rng.normal(1e-4, 1e-5, n)
    block = n // N_BLOCKS
    skip = n - block * N_BLOCKS  # the oldest n mod 16 days are left out
    for got, ret in zip(fields_of_rows(r, rf), r, strict=True):
        x = ret - rf
        want = [x, x * x, np.minimum(x, 0.0) ** 2, np.log1p(np.maximum(ret, -1.0 + 1e-15))]
        sums = np.array([[s[skip + b * block : skip + (b + 1) * block].sum() for b in range(N_BLOCKS)] for s in want])
        assert np.array_equal(unpack_blocks([got["blocks"]])[0], sums)  # bit for bit
        raw = hashlib.blake2b(ret.tobytes(), digest_size=8).digest()
        assert got["digest"] == int.from_bytes(raw, "little", signed=True)
        if not np.any(ret):
            continue
        mean = sum(x.tolist()) / n
        m2, m3, m4 = (sum((v - mean) ** p for v in x.tolist()) / n for p in (2, 3, 4))
        assert got["sr_day"] == pytest.approx(mean / math.sqrt(m2 * n / (n - 1)), rel=1e-10)
        assert got["skew"] == pytest.approx(m3 / m2**1.5, rel=1e-9)
        assert got["kurt"] == pytest.approx(m4 / m2**2, rel=1e-9)


def test_a_flat_run_has_no_moments_and_a_short_one_no_blocks():
    f = fields_of_rows(np.zeros((2, 40)))
    assert all(math.isnan(x[k]) for x in f for k in ("sr_day", "skew", "kurt"))
    assert fields_of_rows(np.zeros((1, 20)))[0]["blocks"] is None  # under 2 days per block


def test_add_fields_groups_by_length_and_rate_and_keeps_given_fields():
    rng = np.random.default_rng(3)
    a, b = _returns(rng, 3, 100), _returns(rng, 2, 60)
    rf = rng.normal(1e-4, 1e-5, 100)
    rows = [{"run_id": f"a{i}", "returns": a[i], "rf": rf} for i in range(3)]
    rows += [{"run_id": f"b{i}", "returns": b[i], "rf": None} for i in range(2)]
    rows.append({"run_id": "kept", "returns": a[0], "rf": None, "digest": 5})
    add_fields(rows)
    for i in range(3):
        assert _same({k: rows[i][k] for k in row_fields(a[i], rf)}, row_fields(a[i], rf))
    for i in range(2):
        assert _same({k: rows[3 + i][k] for k in row_fields(b[i])}, row_fields(b[i]))
    assert rows[-1]["digest"] == 5 and "returns" not in rows[-1] and "sr_day" not in rows[-1]


def _row(rid: str, sweep: str, returns: np.ndarray) -> dict:
    return {"run_id": rid, "sweep_id": sweep, "params": "{}", "status": "ok", "error": None,
            **dict.fromkeys(METRICS, 0.5), "seconds": 0.1, "finished": pd.Timestamp("2026-12-07"), "worker": "1",
            "engine": "fast", "returns_start": pd.Timestamp("2020-01-01"), "returns": returns,
            "bench": np.zeros(len(returns)), "rf": None}  # fmt: skip


def test_a_store_without_key_indexes_keeps_one_row_and_one_link_per_run(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    rng = np.random.default_rng(1)
    r = _returns(rng, 3, 64)
    rows = [_row(f"run{i}", "sw1", r[i]) for i in range(3)]
    assert store.write_batch(rows + [_row("run0", "sw1", r[0])]) == 3  # a repeat within the batch: once
    store.write_batch(rows)  # the whole batch again (a resumed sweep): nothing new
    store.write_batch([_row("run1", "sw2", r[1])])  # another sweep's run with the same id: one row, a second link
    assert store.link_existing("sw2", ["run1", "run2", "nope"]) == {"run1", "run2"}
    assert store.link_existing("sw2", ["run2"]) == {"run2"}
    with duckdb.connect(str(store.path), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchone() == (3, 3)
        links = con.execute("SELECT sweep_id, run_id FROM sweep_runs ORDER BY ALL").fetchall()
        assert con.execute("SELECT count(*) FROM duckdb_indexes()").fetchone() == (0,)
    assert links == [("sw1", "run0"), ("sw1", "run1"), ("sw1", "run2"), ("sw2", "run1"), ("sw2", "run2")]
