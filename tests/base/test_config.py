"""Run configs: defaults, and one clear ``ConfigError`` per kind of bad input (DESIGN.md §7).

Every error must name the offending key and say what is valid; a near miss gets a "did you mean".
The CLI turns a ``ConfigError`` into exactly one ``error:`` line on stderr and a non-zero exit.
"""

from __future__ import annotations

import math
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from riskon.config import SECTIONS, ConfigError, RunConfig, load, parse
from strategies import rules
from support.clitools import riskon_cmd

ROOT = Path(__file__).resolve().parents[2]


def error_of(raw: dict) -> str:
    """The message of the ``ConfigError`` that ``parse(raw)`` must raise."""
    with pytest.raises(ConfigError) as info:
        parse(raw)
    return str(info.value)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*riskon_cmd(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


# ------------------------------------------------------------------------------------------ defaults
def test_empty_config_gives_every_default():
    cfg = parse({})
    assert isinstance(cfg, RunConfig)
    assert cfg.name == "run" and cfg.description == ""
    derived = {("target", "assets"): [cfg.data["asset"]]}  # filled in from [data] asset
    for section, declared in SECTIONS.items():
        got = getattr(cfg, section)
        assert set(got) == set(declared), section
        for key, p in declared.items():
            assert got[key] == derived.get((section, key), p.default), (section, key)
    assert cfg.data["index"] == "^RUT" and cfg.data["asset"] == "BTC-USD" and cfg.data["timeframe"] == "1d"
    assert cfg.data["start"] is None and cfg.data["end"] is None
    assert cfg.data["publication_lag_hours"] == 0.0 and cfg.data["index_price"] == "close"
    assert cfg.strategy["rule"] == "ath_confirmed"
    assert cfg.strategy["signal_delay"] == 0 and cfg.strategy["cooldown_days"] == 0.0
    assert cfg.rule_params == {"threshold": 0.0, "confirm_days": 1, "confirm": "days"}
    for key in ("trailing_stop", "max_hold_days", "index_drawdown"):
        assert cfg.exits[key] is None
    assert cfg.exits["index_below_break"] is False
    assert cfg.costs == {"fee_bps": 10.0, "slippage_bps": 5.0}
    assert cfg.portfolio == {
        "cash": 100_000.0, "fraction": 1.0, "cash_rate": 0.0, "risk_free": 0.0, "sizing": "fraction",
        "vol_target": None, "vol_lookback": 30, "vol_cap": 1.0, "notional": None,
    }  # fmt: skip
    assert cfg.report == {"tearsheet": True, "chart": True, "benchmark": None, "stale_days": 3.0}


def test_ints_become_floats_and_false_switches_an_optional_exit_off():
    cfg = parse({"costs": {"fee_bps": 7}, "portfolio": {"cash": 5000}, "exits": {"trailing_stop": False}})
    assert cfg.costs["fee_bps"] == 7.0 and isinstance(cfg.costs["fee_bps"], float)
    assert cfg.portfolio["cash"] == 5000.0 and isinstance(cfg.portfolio["cash"], float)
    assert cfg.exits["trailing_stop"] is None


def test_canonical_holds_every_result_changing_value():
    cfg = parse({"strategy": {"params": {"confirm_days": 4}}, "costs": {"fee_bps": 3}})
    canon = cfg.canonical()
    assert {"data", "strategy", "rule_params", "exits", "costs", "portfolio"} <= set(canon)
    assert "report" not in canon and "name" not in canon  # output switches and labels do not change results
    assert canon["rule_params"]["confirm_days"] == 4 and canon["costs"]["fee_bps"] == 3.0


def test_parse_does_not_mutate_its_input():
    raw = {"strategy": {"rule": "ath_confirmed", "params": {"confirm_days": 2}}}
    parse(raw)
    assert raw == {"strategy": {"rule": "ath_confirmed", "params": {"confirm_days": 2}}}


@pytest.mark.parametrize("name", ["seed.toml", "seed_value.toml"])
def test_shipped_seed_configs_load(name):
    cfg = load(ROOT / "runs" / name)
    assert cfg.name == name.removesuffix(".toml")
    assert cfg.strategy["rule"] == "ath_confirmed"
    assert cfg.rule_params == {"threshold": 0.0, "confirm_days": 3, "confirm": "days"}
    assert cfg.exits["trailing_stop"] == 0.25 and cfg.exits["index_drawdown"] == 0.10
    assert cfg.costs == {"fee_bps": 10.0, "slippage_bps": 5.0}
    assert cfg.data["asset"] == "BTC-USD"
    assert cfg.data["index"] == {"seed.toml": "^RUT", "seed_value.toml": "IWN"}[name]
    assert cfg.text and cfg.source == str(ROOT / "runs" / name)


# ------------------------------------------------------------------------------------------ unknown keys
def test_unknown_top_level_key_lists_valid_keys_and_suggests():
    msg = error_of({"strategyy": {}})
    assert "'strategyy'" in msg
    for key in ("name", "description", *SECTIONS):
        assert key in msg
    assert "did you mean 'strategy'?" in msg


@pytest.mark.parametrize(
    ("section", "typo", "meant"),
    [
        ("data", "indx", "index"),
        ("strategy", "cooldown_day", "cooldown_days"),
        ("exits", "trailing_stp", "trailing_stop"),
        ("costs", "fee_bp", "fee_bps"),
        ("portfolio", "fracton", "fraction"),
        ("report", "tearsheets", "tearsheet"),
    ],
)
def test_unknown_key_in_each_section_names_section_valid_keys_and_suggests(section, typo, meant):
    msg = error_of({section: {typo: 1}})
    assert f"[{section}]" in msg and repr(typo) in msg
    for key in SECTIONS[section]:
        assert key in msg
    assert f"did you mean {meant!r}?" in msg


def test_section_that_is_not_a_table():
    msg = error_of({"data": 5})
    assert "[data]" in msg and "table" in msg


def test_rule_params_that_are_not_a_table():
    assert "[strategy.params]" in error_of({"strategy": {"params": 5}})


# ------------------------------------------------------------------------------------------ wrong types
@pytest.mark.parametrize(
    ("raw", "key", "want"),
    [
        ({"costs": {"fee_bps": "10"}}, "fee_bps", "float"),  # string for a float
        ({"costs": {"fee_bps": True}}, "fee_bps", "float"),  # bool for a float
        ({"portfolio": {"cash": False}}, "cash", "float"),  # bool for a non-optional float
        ({"strategy": {"params": {"confirm_days": 2.5}}}, "confirm_days", "int"),  # float for an int
        ({"strategy": {"signal_delay": 2.0}}, "signal_delay", "int"),
        ({"report": {"tearsheet": 1}}, "tearsheet", "bool"),  # int for a bool
        ({"data": {"index": 5}}, "index", "str"),
        ({"name": 7}, "name", "str"),
        ({"exits": {"trailing_stop": True}}, "trailing_stop", "float"),
    ],
)
def test_wrong_type_names_key_and_expected_type(raw, key, want):
    msg = error_of(raw)
    assert key in msg and f"must be {want}" in msg


def test_toml_date_literal_is_refused_with_the_written_form():
    import datetime

    msg = error_of({"data": {"start": datetime.date(2020, 1, 1)}})
    assert "start" in msg and "str" in msg


# ------------------------------------------------------------------------------------------ out of range
@pytest.mark.parametrize(
    ("raw", "key", "bound"),
    [
        ({"costs": {"fee_bps": -1}}, "fee_bps", ">= 0.0"),
        ({"costs": {"slippage_bps": 1e6}}, "slippage_bps", "<= 1000.0"),
        ({"portfolio": {"fraction": 1.5}}, "fraction", "<= 1.0"),
        ({"portfolio": {"fraction": 0.0}}, "fraction", ">= 0.0001"),
        ({"strategy": {"params": {"confirm_days": 0}}}, "confirm_days", ">= 1"),
        ({"strategy": {"params": {"threshold": 0.9}}}, "threshold", "<= 0.5"),
        ({"strategy": {"signal_delay": -1}}, "signal_delay", ">= 0"),
        ({"exits": {"trailing_stop": 1.0}}, "trailing_stop", "<= 0.99"),
        ({"data": {"publication_lag_hours": -2}}, "publication_lag_hours", ">= 0.0"),
        ({"portfolio": {"cash": math.inf}}, "cash", "<= "),
    ],
)
def test_out_of_range_names_key_and_bound(raw, key, bound):
    msg = error_of(raw)
    assert key in msg and bound in msg


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"costs": {"fee_bps": math.nan}}, "fee_bps"),
        ({"exits": {"trailing_stop": math.nan}}, "trailing_stop"),
        ({"strategy": {"params": {"threshold": math.nan}}}, "threshold"),
    ],
)
def test_nan_is_refused(raw, key):
    """TOML has ``nan``; it passes both ``< low`` and ``> high`` unless checked for."""
    assert key in error_of(raw)


# ------------------------------------------------------------------------------------------ choices
def test_bad_confirm_choice_lists_choices():
    msg = error_of({"strategy": {"params": {"confirm": "monthly"}}})
    assert "confirm" in msg and "'days'" in msg and "'weekly'" in msg and "'monthly'" in msg


def test_bad_timeframe_choice_lists_choices():
    msg = error_of({"data": {"timeframe": "2d"}})
    assert "timeframe" in msg and "'1d'" in msg and "'2d'" in msg
    # backtests run on daily bars only: metrics and the store count one bar per calendar day
    assert "one of '1d'," in error_of({"data": {"timeframe": "1h"}})


def test_bad_index_price_choice_suggests():
    msg = error_of({"data": {"index_price": "adj_clos"}})
    assert "index_price" in msg and "did you mean 'adj_close'?" in msg


def test_unknown_rule_lists_rules_and_suggests():
    msg = error_of({"strategy": {"rule": "ath_confirm"}})
    assert "'ath_confirm'" in msg and "did you mean 'ath_confirmed'?" in msg
    assert "valid: " + ", ".join(rules.available()) in msg


def test_unknown_rule_parameter_lists_parameters_and_suggests():
    msg = error_of({"strategy": {"params": {"confirm_day": 3}}})
    assert "'confirm_day'" in msg and "ath_confirmed" in msg
    assert "threshold" in msg and "confirm_days" in msg
    assert "did you mean 'confirm_days'?" in msg


# ------------------------------------------------------------------------------------------ dates
@pytest.mark.parametrize("value", ["2020/01/01", "01-01-2020", "2020-1-1", "yesterday", "2020-01-01T00:00"])
def test_date_not_in_iso_form(value):
    msg = error_of({"data": {"start": value}})
    assert "start" in msg and "YYYY-MM-DD" in msg and repr(value) in msg


@pytest.mark.parametrize("value", ["2020-13-01", "2021-02-29", "2020-04-31"])
def test_date_that_does_not_exist(value):
    msg = error_of({"data": {"end": value}})
    assert "end" in msg and repr(value) in msg and "not a valid date" in msg


def test_start_after_end():
    msg = error_of({"data": {"start": "2021-01-02", "end": "2021-01-01"}})
    assert "start" in msg and "end" in msg and "2021-01-02" in msg and "after" in msg


def test_start_equal_to_end_is_allowed():
    cfg = parse({"data": {"start": "2021-01-01", "end": "2021-01-01"}})
    assert cfg.data["start"] == cfg.data["end"] == "2021-01-01"


def test_an_empty_asset_list_is_one_error_even_with_a_data_asset():
    msg = error_of({"data": {"asset": "ETH-USD"}, "target": {"assets": []}})
    assert msg == "config: [target] assets must be a non-empty list of distinct symbols"


# ------------------------------------------------------------------------------------------ names
@pytest.mark.parametrize("name", ["a/b", "../evil", "<script>", "", "two words", "back\\slash"])
def test_bad_run_name(name):
    msg = error_of({"name": name})
    assert "name" in msg and "letters, digits" in msg


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_names_are_refused(name):
    error_of({"name": name})


# ------------------------------------------------------------------------------------------ files
def test_load_reads_file_and_names_it_in_errors(tmp_path):
    good = tmp_path / "ok.toml"
    good.write_text('name = "ok"\n[strategy.params]\nconfirm_days = 2\n', encoding="utf-8")
    cfg = load(good)
    assert cfg.name == "ok" and cfg.rule_params["confirm_days"] == 2 and "confirm_days" in cfg.text
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[costs]\nfee_bsp = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(bad)
    assert str(bad) in str(info.value) and "did you mean 'fee_bps'?" in str(info.value)


@pytest.mark.parametrize("nest", ["{b = ", "["])
def test_deeply_nested_toml_is_one_config_error_line_exit_2(tmp_path, nest):
    path = tmp_path / "deep.toml"
    close = "}" if nest.startswith("{") else "]"
    path.write_text(f'name = "deep"\n[strategy.params]\nx = {nest * 2000}1{close * 2000}\n', encoding="utf-8")
    want = f"{path}: tables or arrays nested too deeply to read; a run config needs a few levels"
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == want
    proc = run_cli("run", str(path), "--no-report", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {want}", proc.stderr
    proc = run_cli("sweep", str(path), "--db", str(tmp_path / "s.duckdb"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {want}", proc.stderr


def test_invalid_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[data\nindex = ^RUT\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(path) in str(info.value) and "not valid TOML" in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(path) in str(info.value) and "no such config file" in str(info.value)


def test_unreadable_file_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ConfigError):
        load(path)
    with pytest.raises(ConfigError):
        load(tmp_path)  # a folder


# ------------------------------------------------------------------------------------------ the CLI
CLI_CASES = {
    "typo": 'name = "typo"\nstrategyy = 1\n',
    "section": 'name = "s"\n[costs]\nfee_bps = "10"\n',
    "markup": 'name = "m"\n[costs]\nfee_bps = "[/x]"\n',
    "absent": None,  # no file at all
}


@pytest.fixture(scope="module")
def cli_errors(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """``riskon run`` on each bad config, the processes run side by side: {case: (config path, process)}."""
    tmp = tmp_path_factory.mktemp("cli-errors")
    paths = {}
    for case, text in CLI_CASES.items():
        paths[case] = tmp / f"{case}.toml"
        if text is not None:
            paths[case].write_text(text, encoding="utf-8")
    with ThreadPoolExecutor(len(paths)) as pool:
        procs = {c: pool.submit(run_cli, "run", str(p), "--no-report", cwd=tmp) for c, p in paths.items()}
        return {c: (paths[c], f.result()) for c, f in procs.items()}


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:")
    assert proc.stdout == ""
    return lines[0]


def test_cli_unknown_key_is_one_error_line(cli_errors):
    path, proc = cli_errors["typo"]
    line = one_error_line(proc)
    assert str(path) in line and "'strategyy'" in line and "did you mean 'strategy'?" in line
    assert not (path.parent / "reports").exists()


def test_cli_missing_file_is_one_error_line(cli_errors):
    path, proc = cli_errors["absent"]
    line = one_error_line(proc)
    assert str(path) in line and "no such config file" in line


def test_cli_error_line_keeps_the_section_name(cli_errors):
    """rich must not read '[costs]' in the message as a style tag and drop it."""
    path, proc = cli_errors["section"]
    assert one_error_line(proc) == f"error: {path}: [costs].fee_bps must be float, got str '10'"


def test_cli_error_line_survives_markup_like_values(cli_errors):
    """A value like '[/x]' must not make rich raise MarkupError (a Traceback instead of one line)."""
    _, proc = cli_errors["markup"]
    assert "[/x]" in one_error_line(proc)
