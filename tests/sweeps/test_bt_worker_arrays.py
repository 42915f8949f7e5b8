"""Workers never need rule code: the backtrader engine ships each setting's signals as arrays (issue 17).

The rule here lives in a user folder (``RISKON_RULES``) and refuses to be imported in any process but the
sweep's own: before the change, every backtrader worker rebuilt the config and the rule and each run was an
error row. Now the driver computes the signals, the workers only simulate, and every run equals
``riskon.runner.run`` of the same parameters in this process. Also: the stored rule hashes a re-run from the
store must find (``riskon.sweeps.rulecheck``), refused in one line when the rule file changed or vanished.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import duckdb
import pytest

from riskon.config import parse
from riskon.runner import run
from riskon.sweeps.driver import run_sweep
from riskon.sweeps.rulecheck import require_rule_hashes, rule_hashes
from riskon.sweeps.spec import apply
from riskon.sweeps.store import StoreError
from strategies import codehash, rules

BUILTIN = Path(rules.__file__).parent
GUARD = """\
import os

if os.getpid() != int(os.environ["RISKON_TEST_SWEEP_PID"]):
    raise ImportError("rule code was imported in a worker process")
"""
GUARDED = GUARD + (BUILTIN / "ath_confirmed.py").read_text(encoding="utf-8").replace(
    'name = "ath_confirmed"', 'name = "guarded"'
).replace("from __future__ import annotations\n", "")

CONFIG = """\
name = "guarded_sweep"

[data]
start = "2020-01-01"
end = "2021-12-31"

[strategy]
rule = "guarded"

[strategy.params]
confirm_days = 3

[exits]
trailing_stop = 0.25
index_drawdown = 0.10

[sweep]
method = "grid"
batch_size = 2

[sweep.params]
"strategy.params.confirm_days" = [2, 3]
"exits.trailing_stop" = [0.2, 0.3]
"""


@pytest.fixture
def user_rule(tmp_path, monkeypatch):
    folder = tmp_path / "myrules"
    folder.mkdir()
    (folder / "guarded.py").write_text(GUARDED, encoding="utf-8")
    monkeypatch.setenv("RISKON_RULES", str(folder))
    monkeypatch.setenv("RISKON_TEST_SWEEP_PID", str(os.getpid()))
    rules.refresh()
    codehash.clear_cache()
    yield folder
    monkeypatch.delenv("RISKON_RULES")
    rules.refresh()
    codehash.clear_cache()


@pytest.mark.parametrize("workers", [2, 1])
def test_backtrader_workers_get_arrays_not_rule_code(user_rule, tmp_path, data_dir, workers):
    path = tmp_path / "guarded.toml"
    path.write_text(CONFIG, encoding="utf-8")
    db = tmp_path / "g.duckdb"
    res = run_sweep(path, db=db, workers=workers, engine="backtrader")
    assert (res.total, res.ran, res.failed) == (4, 4, 0), res.runs[["status", "error"]].to_string()
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT params, worker, sharpe, cagr, trades FROM runs").fetchall()
    finally:
        con.close()
    ran_in = {w for _, w, *_ in rows}
    assert ran_in == {str(os.getpid())} if workers == 1 else str(os.getpid()) not in ran_in  # 2: in the workers
    raw = {k: v for k, v in tomllib.loads(CONFIG).items() if k != "sweep"}
    for params, _, sharpe, cagr, trades in rows:
        here = run(parse(apply(raw, json.loads(params))))
        m = here.metrics["strategy"]
        assert (sharpe, cagr, trades) == pytest.approx((m["sharpe"], m["cagr"], m["trades"]), rel=1e-9)


def test_a_rerun_from_the_store_finds_the_rule_with_its_hash_or_refuses(user_rule):
    raw = {k: v for k, v in tomllib.loads(CONFIG).items() if k != "sweep"}
    stored = rule_hashes(parse(raw))
    assert list(stored) == ["guarded"] and stored["guarded"] == codehash.rule_hash("guarded")
    require_rule_hashes(stored, "run abc")  # the same file: found
    (user_rule / "guarded.py").write_text(GUARDED + "\n# edited\n", encoding="utf-8")
    os.utime(user_rule, None)
    rules.refresh()
    codehash.clear_cache()
    now = codehash.rule_hash("guarded")
    with pytest.raises(StoreError) as err:
        require_rule_hashes(stored, "run abc")
    assert str(err.value) == (
        f"run abc: rule 'guarded' in {user_rule} is not the code the run was made with (code hash {now[:12]}, "
        f"stored {stored['guarded'][:12]}); restore that file or run the sweep again"
    )
    (user_rule / "guarded.py").unlink()
    rules.refresh()
    codehash.clear_cache()
    with pytest.raises(StoreError) as err:
        require_rule_hashes(stored, "run abc")
    assert str(err.value) == (
        f"run abc: its rule 'guarded' is not found (looked in {BUILTIN}, {user_rule}); restore the rule file or "
        "point RISKON_RULES at its folder"
    )
