"""Bounded work: a sweep is counted exactly before anything is expanded, refused above a limit with one line,
its ranges validated field by field, its combinations streamed; a rule expression has a depth limit.

The counts in the messages are worked out by hand in each test (integer arithmetic on the ranges as
written), never by the code under test. Memory is measured with ``tracemalloc``; each bound is justified
beside its assert.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import tracemalloc
from pathlib import Path

import pytest

from riskon.config import ConfigError
from riskon.sweeps import driver, streaming
from riskon.sweeps.spec import MAX_COMBINATIONS, Combinations, grid_overrides, parse_sweep, planned_size
from support.sweep_store import call

BASE = """\
name = "bounded"
[data]
index = "^RUT"
asset = "BTC-USD"
start = "2020-01-01"
end = "2021-06-30"
[strategy]
rule = "ath_confirmed"
[strategy.params]
confirm_days = 3
[exits]
trailing_stop = 0.25
[costs]
fee_bps = 10
slippage_bps = 5
"""


def raw_with(params: str, sweep: str = 'method = "grid"') -> dict:
    """A config dict: the base plus ``[sweep]`` options and ``[sweep.params]`` lines."""
    return tomllib.loads(BASE + f"[sweep]\n{sweep}\n[sweep.params]\n{params}\n")


def refused(params: str, sweep: str = 'method = "grid"', **kw) -> str:
    """The one-line ConfigError that parsing this sweep gives (it must give one)."""
    with pytest.raises(ConfigError) as info:
        parse_sweep(raw_with(params, sweep), "cfg.toml", **kw)
    text = str(info.value)
    assert "\n" not in text
    return text


# -- counting before expanding -------------------------------------------------------------
def test_a_tiny_step_is_counted_exactly_without_listing_a_value():
    # 0..1 by 1e-9: (1 - 0) / 10^-9 = 10^9 steps, so 10^9 + 1 values (both ends included)
    tracemalloc.start()
    try:
        text = refused('"exits.trailing_stop" = { start = 0.0, stop = 1.0, step = 1e-9 }')
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text == (
        "cfg.toml: the sweep grid has 1,000,000,001 combinations ('exits.trailing_stop': 1,000,000,001), above "
        "the limit of 2,000,000; vary fewer values, or raise the limit: riskon sweep --max-combinations "
        "1000000001 (Python: max_combinations=1000000001)"
    )
    # listing the values would take 10^9 floats (8 GB); the count is a few big-integer operations
    assert peak < 1_000_000


def test_steps_far_below_float_resolution_are_counted_exactly():
    # 0..1 by 1e-300 is 10^300 + 1 values: no float division could give this number
    text = refused('"exits.trailing_stop" = { start = 0, stop = 1, step = 1e-300 }')
    assert f"has {10**300 + 1:,} combinations" in text
    # a random sweep draws from the listed values: the parameter itself is over the limit
    text = refused('"exits.trailing_stop" = { start = 0.0, stop = 1.0, step = 1e-9 }', 'method = "random"\nn = 10')
    assert text.startswith("cfg.toml: [sweep.params] 'exits.trailing_stop' has 1,000,000,001 values, above the limit")


def test_counts_use_the_numbers_as_written_not_their_doubles():
    # 0.3 / 0.1 is 2.9999999999999996 in doubles; as written it is exactly 3 steps: 4 values
    spec = parse_sweep(raw_with('"strategy.params.threshold" = { start = 0.0, stop = 0.3, step = 0.1 }'), "cfg")
    assert spec.values["strategy.params.threshold"] == [0.0, 0.1, 0.2, 0.3]
    # 0.9999999999 / 1 is 0.9999999999 steps: one value. The old float count added 1e-9 and listed 1.0
    # too, a value beyond stop
    spec = parse_sweep(raw_with('"strategy.params.threshold" = { start = 0.0, stop = 0.4999999999, step = 0.5 }'),
                       "cfg")  # fmt: skip
    assert spec.values["strategy.params.threshold"] == [0.0]
    # steps finer than 10 decimals keep every value (rounding to 10 decimals made them all 0.0 before)
    spec = parse_sweep(raw_with('"strategy.params.threshold" = { start = 0.0, stop = 3e-11, step = 1e-11 }'), "cfg")
    assert spec.values["strategy.params.threshold"] == [0.0, 1e-11, 2e-11, 3e-11]


def test_values_doubles_cannot_tell_apart_are_refused():
    # 1.0 .. 1.0000000000000002 by 1e-17: 2e-16 / 1e-17 = 20 steps, 21 values, but only 2 doubles lie there
    text = refused('"strategy.params.threshold" = { start = 0.1, stop = 0.10000000000000002, step = 1e-18 }')
    assert text.startswith("cfg.toml: [sweep.params] 'strategy.params.threshold' step 1e-18 is too fine for floating")


def test_a_grid_of_ten_million_is_refused_before_anything_is_listed():
    params = "\n".join(f'"{p}" = {{ start = 1, stop = {n}, step = 1 }}' for p, n in [
        ("strategy.params.confirm_days", 10), ("strategy.cooldown_days", 1000), ("portfolio.cash", 1000)])  # fmt: skip
    tracemalloc.start()
    try:
        text = refused(params)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 10 x 1,000 x 1,000 = 10,000,000
    assert text.startswith(
        "cfg.toml: the sweep grid has 10,000,000 combinations ('strategy.params.confirm_days': 10 x "
        "'strategy.cooldown_days': 1,000 x 'portfolio.cash': 1,000), above the limit of 2,000,000;"
    )
    assert peak < 1_000_000  # nothing listed: 2,010 values would already be ~70 KB, the grid 10^7 dicts
    assert MAX_COMBINATIONS == 2_000_000


def test_the_limit_is_an_argument_and_none_lifts_it():
    params = '"strategy.params.confirm_days" = [1, 2, 3]\n"exits.trailing_stop" = [0.1, 0.2]'
    text = refused(params, max_combinations=5)  # 3 x 2 = 6
    assert "has 6 combinations" in text and "above the limit of 5;" in text and "--max-combinations 6" in text
    assert parse_sweep(raw_with(params), "cfg", max_combinations=6).values["exits.trailing_stop"] == [0.1, 0.2]
    assert parse_sweep(raw_with(params), "cfg", max_combinations=None).method == "grid"
    text = refused(params, 'method = "random"\nn = 50', max_combinations=40)
    assert text.startswith("cfg.toml: [sweep] n = 50 random trials, above the limit of 40;")


# -- every range field validated -----------------------------------------------------------
@pytest.mark.parametrize(
    ("rng", "message"),
    [
        ("start = nan, stop = 1.0, step = 0.1", "start must be a finite number, got nan"),
        ("start = 0.1, stop = inf, step = 0.1", "stop must be a finite number, got inf"),
        ("start = 0.1, stop = 0.5, step = nan", "step must be a finite number, got nan"),
        ("start = 0.1, stop = 0.5, step = -inf", "step must be a finite number, got -inf"),
        ("start = 0.1, stop = 0.5, step = -0.1", "step must be > 0, got -0.1"),
        ("start = 0.1, stop = 0.5, step = 0", "step must be > 0, got 0"),
        ("start = 0.1, stop = 0.5, step = -0.0", "step must be > 0, got -0.0"),
        ("start = 0.5, stop = 0.1, step = 0.1", "is an empty range (start 0.5 > stop 0.1)"),
        ("start = true, stop = 0.5, step = 0.1", "start must be a number, got True"),
        ('start = 0.1, stop = "0.5", step = 0.1', "stop must be a number, got '0.5'"),
        ("start = 0.1, stop = 0.5", "range needs start, stop and step (got ['start', 'stop'])"),
    ],
)
def test_every_range_field_is_validated(rng, message):
    text = refused(f'"exits.trailing_stop" = {{ {rng} }}')
    assert text == f"cfg.toml: [sweep.params] 'exits.trailing_stop' {message}"


def test_a_refused_sweep_exits_2_with_one_line_and_touches_no_store(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "big.toml"
    params = '"strategy.cooldown_days" = { start = 0, stop = 9999, step = 1 }\n"portfolio.cash" = { start = 1000, ' \
             'stop = 1999, step = 1 }'  # fmt: skip
    cfg.write_text(BASE + f"[sweep]\n[sweep.params]\n{params}\n", encoding="utf-8")
    code, out, err = call(capsys, "sweep", str(cfg), "--db", str(tmp_path / "s.duckdb"), "--workers", "1")
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {cfg}: the sweep grid has 10,000,000 combinations ('strategy.cooldown_days': 10,000 x "
        "'portfolio.cash': 1,000), above the limit of 2,000,000; vary fewer values, or raise the limit: riskon "
        "sweep --max-combinations 10000000 (Python: max_combinations=10000000)"
    ]
    assert not (tmp_path / "s.duckdb").exists()
    bad = tmp_path / "nan.toml"
    bad.write_text(BASE + '[sweep]\n[sweep.params]\n"exits.trailing_stop" = { start = 0.1, stop = 0.2, step = nan }\n')
    code, out, err = call(capsys, "sweep", str(bad), "--db", str(tmp_path / "s.duckdb"))
    assert (code, err.strip()) == (2, f"error: {bad}: [sweep.params] 'exits.trailing_stop' step must be a finite "
                                      "number, got nan")  # fmt: skip
    assert not (tmp_path / "s.duckdb").exists()


def test_max_combinations_flag_lowers_and_raises_the_limit(tmp_path, capsys, data_dir):
    cfg = tmp_path / "six.toml"
    cfg.write_text(BASE + '[sweep]\n[sweep.params]\n"strategy.params.confirm_days" = [1, 2, 3]\n'
                   '"exits.trailing_stop" = [0.1, 0.2]\n', encoding="utf-8")  # fmt: skip
    db = tmp_path / "s.duckdb"
    code, _, err = call(capsys, "sweep", str(cfg), "--db", str(db), "--workers", "1", "--max-combinations", "5")
    assert code == 2 and "has 6 combinations" in err and "above the limit of 5;" in err
    assert not db.exists()
    code, out, err = call(capsys, "sweep", str(cfg), "--db", str(db), "--workers", "1", "--max-combinations", "6")
    assert code == 0, err
    assert "6 combinations, 0 already stored, 6 run now (0 failed)" in out


# -- streaming -----------------------------------------------------------------------------
def test_a_grid_of_200_000_is_generated_without_holding_it():
    params = "\n".join([
        '"strategy.params.confirm_days" = { start = 1, stop = 50, step = 1 }',
        '"strategy.params.threshold" = { start = 0.0, stop = 0.079, step = 0.001 }',
        '"exits.trailing_stop" = { start = 0.05, stop = 0.54, step = 0.01 }',
    ])  # fmt: skip
    spec = parse_sweep(raw_with(params), "cfg")
    tracemalloc.start()
    try:
        n, last, checksum = 0, None, 0.0
        for combo in grid_overrides(spec):
            n += 1
            last = combo
            checksum += combo["exits.trailing_stop"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 50 * 80 * 50 == 200_000 == planned_size(spec)
    assert last == {"strategy.params.confirm_days": 50, "strategy.params.threshold": 0.079, "exits.trailing_stop": 0.54}
    # every trailing stop 0.05..0.54 appears 50 * 80 times: 4,000 * sum(0.05 + 0.01 k, k < 50) = 4,000 * 14.75
    assert checksum == pytest.approx(59_000.0)
    # held as a list, 200,000 override dicts would take ~60 MB (~300 bytes each); generated, one at a time
    # (the tuple product keeps and a dict): a few KB. 200 KB leaves room for interpreter noise.
    assert peak < 200_000


def test_validated_combinations_stream_in_memory_that_does_not_grow_with_the_grid():
    def peak_for(n_confirm: int) -> tuple[int, int]:
        raw = raw_with(f'"strategy.params.confirm_days" = {{ start = 1, stop = {n_confirm}, step = 1 }}\n'
                       '"exits.trailing_stop" = { start = 0.05, stop = 0.54, step = 0.01 }')  # fmt: skip
        combos = Combinations(raw, parse_sweep(raw, "cfg"), "cfg")
        tracemalloc.start()
        try:
            count = sum(1 for _ in combos)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return count, peak

    small, big = peak_for(10), peak_for(50)
    assert (small[0], big[0]) == (500, 2_500)
    # a parsed config costs ~2.2 KB: holding 2,500 would be ~5.5 MB, 2,000 more than the small grid ~4.4 MB.
    # Streamed, both peaks are one config at a time (~12 KB here); five times the grid may not cost 0.5 MB more.
    assert big[1] < 1_000_000
    assert big[1] - small[1] < 500_000


def test_run_ids_are_counted_in_ten_bytes_each():
    ids = [hashlib.sha256(str(i % 199_000).encode()).hexdigest()[:20] for i in range(200_000)]
    tracemalloc.start()
    try:
        acc = streaming.RunIds()
        for rid in ids:
            acc.add(rid)
        held, _ = tracemalloc.get_traced_memory()
        acc.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert acc.distinct == 199_000  # ids of 0..999 occur twice
    assert acc.repeated == {hashlib.sha256(str(i).encode()).hexdigest()[:20] for i in range(1_000)}
    assert sorted(r for block in acc.blocks(7_000) for r in block) == sorted(set(ids))
    # 200,000 ids x 10 bytes = 2 MB (the buffer grows by ~1/8 at a time); sorting makes a sorted copy and the
    # distinct rows another (2 MB each). A Python set of the 200,000 id strings would be ~20 MB.
    assert held < 2_500_000
    assert peak < 8_000_000
    done = streaming.IdSet(ids[:120_000])  # over IdSet.SMALL: held as sorted arrays
    assert [r in done for r in ids[119_998:120_002]] == [True, True, False, False]  # ids of 0..119,999 only
    assert ids[199_500] in done  # i = 199,500 repeats the id of 500


SWEEP = (
    BASE.replace('name = "bounded"', 'name = "streamed"')
    + """\
[sweep]
batch_size = 5
[sweep.params]
"description" = ["a", "b", "a"]
"strategy.params.confirm_days" = [1, 2, 2, 3, 5]
"exits.trailing_stop" = { start = 0.1, stop = 0.3, step = 0.1 }
"""
)


def _stored(db: Path) -> list:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("SELECT * EXCLUDE (seconds, finished, worker) FROM runs ORDER BY run_id").fetchall()
        links = con.execute("SELECT * FROM sweep_runs ORDER BY ALL").fetchall()
        sweeps = con.execute("SELECT sweep_id, name, spec, n_total, status FROM sweeps").fetchall()
    return [runs, links, sweeps]


@pytest.mark.parametrize("engine", ["fast", "backtrader"])
def test_streaming_passes_give_the_same_sweep_as_holding_it(engine, tmp_path, monkeypatch, data_dir):
    """Beyond ``MEMO`` the grid is validated again in each pass: same ids, order, counts and rows."""
    from riskon.sweeps.store import Store
    from strategies import rules

    cfg = tmp_path / "streamed.toml"
    cfg.write_text(SWEEP, encoding="utf-8")
    cls = rules.get("ath_confirmed")  # confirm_days 2 violates a constraint: 2 x 3 trailing stops skipped
    monkeypatch.setattr(cls, "constraint", lambda v: "even" if v["confirm_days"] == 2 else None, raising=False)
    written: list[str] = []
    original = Store.write_batch
    monkeypatch.setattr(Store, "write_batch", lambda self, rows, fault=None: (
        written.extend(r["run_id"] for r in rows), original(self, rows, fault))[1])  # fmt: skip
    results, orders, stores = [], [], []
    for memo in (streaming.MEMO, 4):  # everything held, then passes of blocks of 5
        monkeypatch.setattr(streaming, "MEMO", memo)
        monkeypatch.setattr(driver, "BLOCK", memo + 1)
        written.clear()
        db = tmp_path / f"m{memo}.duckdb"
        res = driver.run_sweep(cfg, db=db, workers=1, engine=engine)
        results.append((res.sweep_id, res.total, res.already_done, res.ran, res.failed, res.skipped))
        orders.append(list(written))
        stores.append(_stored(db))
    # 2 descriptions (not in the run id) x 3 distinct confirm_days kept (1, 3, 5) x 3 stops: 18 valid
    # combinations, 9 distinct runs; confirm_days 2: 2 x 3 = 6 skipped
    assert results[0][1:] == (9, 0, 9, 0, 6)
    assert results[1] == results[0]
    assert orders[1] == orders[0] and len(orders[0]) == 9
    assert stores[1] == stores[0]
    again = driver.run_sweep(cfg, db=tmp_path / "m4.duckdb", workers=1, engine=engine)  # resume: nothing to run
    assert (again.total, again.already_done, again.ran) == (9, 9, 0)
    assert json.loads(stores[0][2][0][2])["values"]["exits.trailing_stop"] == [0.1, 0.2, 0.3]


# -- expression depth ----------------------------------------------------------------------
def test_a_deeply_nested_expression_is_refused_before_any_recursion(tmp_path, capsys):
    from strategies import compose

    spec: object = "ath_confirmed"
    for _ in range(400):
        spec = {"not": spec}
    with pytest.raises(ValueError) as info:
        compose.build(spec, "[strategy.entry]")
    assert str(info.value) == (
        "[strategy.entry]: the expression nests all_of/any_of/not more than 32 levels deep; flatten it"
    )
    ok: object = {"rule": "ath_confirmed"}
    for i in range(32):
        ok = {"all_of": [ok]} if i % 2 else {"any_of": [ok, "index_above_ma"]}
    assert len(compose.build(ok).leaves()) == 1 + 16
    with pytest.raises(ValueError, match="more than 32 levels"):
        compose.build({"not": ok})
    # through a config file: TOML table headers nest without limit; one line, exit 2
    cfg = tmp_path / "deep.toml"
    body = BASE.replace('[strategy]\nrule = "ath_confirmed"\n[strategy.params]\nconfirm_days = 3\n', "")
    cfg.write_text(body + "[strategy.entry" + ".not" * 399 + ']\nnot = "ath_confirmed"\n', encoding="utf-8")
    code, _, err = call(capsys, "run", str(cfg))
    assert (code, err.strip()) == (2, f"error: {cfg}: [strategy.entry]: the expression nests all_of/any_of/not "
                                      "more than 32 levels deep; flatten it")  # fmt: skip
