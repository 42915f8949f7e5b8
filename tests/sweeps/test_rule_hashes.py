"""A sweep keeps the code hash of every rule it uses; a re-run from the store finds that very code or refuses.

A user's rule in a ``rules/`` folder is swept; then the file is edited (or removed). The comparison's re-run
of a stored run (used by the random-entry null and rebuilt reports) and ``--verify`` refuse with one line
naming the rule and its folder, instead of silently re-running other code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskon.analysis.comparison import rerun_stored
from riskon.sweeps.driver import run_sweep
from riskon.sweeps.rulecheck import sweep_row
from riskon.sweeps.store import Store, StoreError
from riskon.sweeps.verify import verify_runs
from strategies import codehash, rules

BUILTIN = Path(rules.__file__).parent
MY_ATH = (BUILTIN / "ath_confirmed.py").read_text(encoding="utf-8").replace('name = "ath_confirmed"', 'name = "my_ath"')

CONFIG = """\
name = "hashed"
[data]
start = "2019-01-01"
end = "2021-12-31"
[strategy]
rule = "my_ath"
[exits]
trailing_stop = 0.2
[report]
tearsheet = false
chart = false
[sweep]
[sweep.params]
"exits.trailing_stop" = [0.1, 0.2]
"""


@pytest.fixture
def swept(tmp_path, monkeypatch, data_dir):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "my_ath.py").write_text(MY_ATH, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RISKON_RULES", raising=False)
    rules.refresh()
    codehash.clear_cache()
    cfg = tmp_path / "hashed.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    db = tmp_path / "h.duckdb"
    res = run_sweep(cfg, db=db, workers=1, engine="fast")
    yield cfg, db, res, folder
    rules.refresh()
    codehash.clear_cache()


def test_the_sweep_stores_each_rule_hash(swept):
    _, db, res, _ = swept
    row = sweep_row(Store(db), res.sweep_id)
    assert json.loads(row["rule_hashes"]) == {"my_ath": codehash.rule_hash("my_ath")}


def test_an_unchanged_rule_reruns(swept):
    _, db, res, _ = swept
    store = Store(db)
    row = store.runs(res.sweep_id).iloc[0].to_dict()
    again = rerun_stored(store, store.run(row["run_id"]))
    assert float(again.metrics.at["sharpe", "strategy"]) == pytest.approx(row["sharpe"], rel=1e-9)


def test_an_edited_rule_is_refused_naming_rule_and_folder(swept):
    cfg, db, res, folder = swept
    (folder / "my_ath.py").write_text(MY_ATH + "\n# an edit after the sweep\n", encoding="utf-8")
    codehash.clear_cache()
    store = Store(db)
    runs = store.runs(res.sweep_id)
    rid = runs["run_id"].iloc[0]
    with pytest.raises(StoreError, match=rf"run {rid}: rule 'my_ath' in {folder} is not the code the run was made"):
        rerun_stored(store, store.run(rid))
    with pytest.raises(StoreError, match=r"rule 'my_ath' in .* is not the code the run was made with"):
        verify_runs(cfg, runs, "sharpe", "maximize", 0, store=store)


def test_a_removed_rule_is_refused_naming_where_it_was_looked_for(swept):
    _, db, res, folder = swept
    (folder / "my_ath.py").unlink()
    rules.refresh()
    codehash.clear_cache()
    store = Store(db)
    rid = store.runs(res.sweep_id)["run_id"].iloc[0]
    with pytest.raises(Exception, match=r"my_ath"):
        rerun_stored(store, store.run(rid))
