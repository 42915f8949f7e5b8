"""Validating a sweep's combinations with shared work reused gives exactly what validating each alone gives.

``GridParser`` (and ``parse`` with a ``ParseMemo``) must return, for every combination, the config that
``validate(raw, combo)`` — a full ``parse`` of the combination's own config dict — returns, raise the same
error for an invalid one and skip the same ones; ``SettingKeys`` must give every combination its own
``bars_key``; ``RunIdMaker`` the id ``run_id`` gives. Each is checked here against the plain function on
every combination of small grids that sweep every kind of path: a rule parameter, several exits in one
table, costs, portfolio, a top-level text, a whole table, a list element, and an exit rule.
"""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import pytest

from riskon.config import ConfigError, ParseMemo, load, parse
from riskon.sweeps.keys import RunIdMaker, bars_key, run_id
from riskon.sweeps.scaleout import SettingKeys
from riskon.sweeps.spec import Combinations, GridParser, GridSpace, grid_overrides, parse_sweep, validate
from strategies.rules import get

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
name = "parser"
description = "base"
[data]
index = "^RUT"
asset = "BTC-USD"
[strategy]
rule = "ath_confirmed"
[strategy.params]
confirm_days = 3
[exits]
trailing_stop = 0.25
[costs]
fee_bps = 10
[portfolio]
fraction = 1.0
[target]
assets = ["BTC-USD"]
"""

GRID = """\
[sweep]
method = "grid"
[sweep.params]
"strategy.params.confirm_days" = [1, 2, 3, 2]
"exits.trailing_stop" = { start = 0.1, stop = 0.3, step = 0.1 }
"exits.index_drawdown" = [false, 0.05]
"exits.max_hold_days" = [false, 30]
"costs.fee_bps" = [0, 25]
"portfolio.fraction" = [0.5, 1]
"description" = ["a", "b"]
"""


def _raw(sweep: str = GRID) -> dict:
    return tomllib.loads(BASE + sweep)


def test_every_combination_of_a_grid_gets_the_config_validate_gives():
    raw = _raw()
    spec = parse_sweep(raw, "cfg.toml")
    got = list(Combinations(raw, spec, "cfg.toml"))
    want = [(combo, validate(raw, combo, "cfg.toml")) for combo in grid_overrides(spec)]
    # 3 distinct confirmations x 3 stops x 2 x 2 x 2 x 2 x 2 = 288, in the same order
    assert len(got) == len(want) == 3 * 3 * 2**5
    assert got == want


def test_positions_of_the_grid_space_give_the_same_configs_and_setting_keys():
    raw = _raw()
    spec = parse_sweep(raw, "cfg.toml")
    space, parser = GridSpace(spec), GridParser(raw, spec.values, "cfg.toml")
    keys = SettingKeys(parser)
    for i, combo in enumerate(grid_overrides(spec)):
        assert space.at(i) == combo
        cfg = parser.config(space.indices(i))
        assert cfg == validate(raw, combo, "cfg.toml")
        assert keys(space.indices(i), cfg) == bars_key(cfg)
    assert len({bars_key(validate(raw, c, "cfg.toml")) for c in grid_overrides(spec)}) == 3  # one per confirmation


def test_a_random_sweep_draws_the_same_combinations():
    raw = _raw(GRID.replace('method = "grid"', 'method = "random"\nn = 60\nseed = 11'))
    spec = parse_sweep(raw, "cfg.toml")
    got = list(Combinations(raw, spec, "cfg.toml"))
    assert got == [(combo, validate(raw, combo, "cfg.toml")) for combo in grid_overrides(spec)]


def test_whole_tables_list_elements_and_exit_rules_are_swept_alike():
    sweep = """\
[sweep]
method = "grid"
[sweep.params]
"exits.rule" = [false, { rule = "index_above_ma", window = 50 }]
"target.assets.0" = ["BTC-USD", "ETH-USD"]
"costs" = [{ fee_bps = 1, slippage_bps = 0 }, { fee_bps = 20 }]
"exits.trailing_stop" = [0.1, 0.2]
"""
    raw = tomllib.loads(BASE.replace('asset = "BTC-USD"\n', "") + sweep)
    spec = parse_sweep(raw, "cfg.toml")
    space, parser = GridSpace(spec), GridParser(raw, spec.values, "cfg.toml")
    keys = SettingKeys(parser)
    configs = []
    for i, combo in enumerate(grid_overrides(spec)):
        cfg = parser.config(space.indices(i))
        assert cfg == validate(raw, combo, "cfg.toml")
        assert keys(space.indices(i), cfg) == bars_key(cfg)
        configs.append(cfg)
    assert len(configs) == 16
    # exit rule (2) x target asset (2): four settings; the costs and the stop share them
    assert len({bars_key(c) for c in configs}) == 4
    assert {c.costs["slippage_bps"] for c in configs} == {0.0, 5.0}  # the second table keeps the default


def test_an_invalid_value_raises_the_same_one_line_error_for_its_combination():
    raw = _raw(GRID.replace('"costs.fee_bps" = [0, 25]', '"costs.fee_bps" = [0, 2000]'))
    spec = parse_sweep(raw, "cfg.toml")  # the first value of each path is checked here: 0 is fine
    with pytest.raises(ConfigError) as plain:
        for combo in grid_overrides(spec):
            validate(raw, combo, "cfg.toml")
    with pytest.raises(ConfigError) as shared:
        list(Combinations(raw, spec, "cfg.toml"))
    assert str(shared.value) == str(plain.value)
    assert "[costs].fee_bps must be <= 1000.0, got 2000.0" in str(shared.value)
    assert "(combination {" in str(shared.value) and "'costs.fee_bps': 2000" in str(shared.value)


def test_rule_constraints_skip_the_same_combinations(monkeypatch):
    monkeypatch.setattr(get("ath_confirmed"), "constraint",
                        lambda v: "even" if v["confirm_days"] % 2 == 0 else None, raising=False)  # fmt: skip
    raw = _raw()
    spec = parse_sweep(raw, "cfg.toml")
    combos = Combinations(raw, spec, "cfg.toml")
    got = list(combos)
    want = [(c, cfg) for c in grid_overrides(spec) if (cfg := validate(raw, c, "cfg.toml")) is not None]
    assert got == want
    # confirm_days 2 is one of the 3 distinct values: a third of 288 skipped
    assert (combos.valid, combos.skipped) == (192, 96)


def test_a_memo_changes_nothing_for_the_example_configs():
    memo = ParseMemo()
    for path in sorted((ROOT / "runs").glob("*.toml")):
        raw = tomllib.loads(path.read_text())
        plain = parse(raw, str(path))
        assert parse(raw, str(path), memo) == plain
        assert parse(raw, str(path), memo) == plain  # the second time from the memo
        assert plain == load(path).__class__(**{**plain.__dict__})


def test_a_memo_raises_a_remembered_error_again():
    memo = ParseMemo()
    raw = tomllib.loads(BASE.replace("fee_bps = 10", "fee_bps = -1"))
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"^cfg: \[costs\]\.fee_bps must be >= 0\.0, got -1\.0$"):
            parse(raw, "cfg", memo)


def test_the_memo_is_bounded_and_still_right_after_it_starts_over():
    raw = _raw()
    spec = parse_sweep(raw, "cfg.toml")
    parser = GridParser(raw, spec.values, "cfg.toml")
    parser.memo.limit = 7  # starts over many times in 288 combinations
    parser.LIMIT = 5
    every = list(itertools.product(*(range(len(v)) for v in parser.values)))
    combos = [{p: v[i] for p, v, i in zip(parser.paths, parser.values, idx, strict=True)} for idx in every]
    assert [parser.config(idx) for idx in every] == [validate(raw, combo, "cfg.toml") for combo in combos]
    assert len(parser.memo._done) <= 7 and len(parser._tables) <= 5


def test_run_ids_from_the_maker_are_run_ids():
    raw = _raw()
    spec = parse_sweep(raw, "cfg.toml")
    fps = {"^RUT@1d": "f" * 16, "BTC-USD@1d": "e" * 16}
    maker = RunIdMaker("fast")
    configs = [cfg for _, cfg in Combinations(raw, spec, "cfg.toml")]
    ids = [maker(cfg, fps) for cfg in configs]
    assert ids == [run_id(cfg, fps, "fast") for cfg in configs]
    # the description is not a parameter of the run: each id twice, and 144 distinct
    assert len(set(ids)) == 144 and len(set(ids[::2])) == 144
