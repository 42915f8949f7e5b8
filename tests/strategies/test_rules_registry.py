"""The rule registry: every rule in ``strategies/rules/`` (or behind an entry point) gets these tests for free.

Parametrised over ``strategies.rules.available()``, so a rule file dropped in later is tested without
editing this file: its defaults are valid, its output is a boolean ``signal`` on exactly the input's
index, it never peeks (``strategies.lookahead.check`` and a truncated-history comparison), and it runs
through a short backtest. Planted peeking rules prove the lookahead checks detect what they claim to.
Also covered: unknown names and parameters ("did you mean"), constraints between parameters, a rule
file dropped into the folder (seen by ``riskon rules`` and ``riskon run``), and entry-point plugins.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feeds.align import align, session_frame
from feeds.loader import load
from riskon.config import ConfigError, parse
from riskon.runner import run
from strategies import compose, indicators, lookahead, rules
from strategies.backtest import TRADE_COLUMNS, check_accounting
from strategies.params import Param
from strategies.rules import Rule
from support.clitools import riskon_cmd

NAMES = rules.available()
BUILTINS = {"asset_above_ma", "ath_confirmed", "breakout_retest", "idx_age_max", "index_above_ma", "n_day_high",
            "weekly_close_high"}  # fmt: skip
RULES_DIR = Path(rules.__file__).parent
SMOKE = {"start": "2019-01-01", "end": "2021-12-31"}
FIXED_CUTS = ["1995-05-15", "2008-10-10", "2016-11-15", "2020-11-20", "2021-03-16"]


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def raw_index(data_dir) -> pd.DataFrame:
    return load("^RUT", "1d")


@pytest.fixture(scope="module")
def sessions(raw_index) -> pd.DataFrame:
    return session_frame(raw_index)


@pytest.fixture(scope="module")
def btc_from_2014(data_dir) -> pd.DataFrame:
    btc = load("BTC-USD", "1d")
    out = btc[btc.index >= pd.Timestamp("2014-01-01", tz="UTC")]
    out.attrs = dict(btc.attrs)
    return out


@pytest.fixture(scope="module")
def bars(btc_from_2014, sessions) -> pd.DataFrame:
    return align(btc_from_2014, sessions)


def rule_input(rule: Rule, sessions: pd.DataFrame, bars: pd.DataFrame) -> pd.DataFrame:
    """What ``compute`` reads: index sessions for index rules, aligned asset bars for asset rules."""
    return sessions if rule.on == "index" else bars


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise equality that counts NaN/NaT as equal to itself."""
    return (a == b) | (pd.isna(a) & pd.isna(b))


def truncation_diffs(rule: Rule, sessions: pd.DataFrame, bars: pd.DataFrame, cuts: list) -> list[str]:
    """Output computed on a history cut at each date must equal the full history's output up to the cut.

    Index rules get the sessions up to and including the date (``session_frame`` of a cut index is
    that prefix: the running high is cumulative and week ends come from the calendar, which
    tests/test_lookahead.py checks on the raw files); asset rules get the aligned bars up to the date.
    """
    frame = rule_input(rule, sessions, bars)
    full = rule.compute(frame)
    stamps = frame.index.tz_convert(None) if frame.index.tz is not None else frame.index
    diffs = []
    for cut in cuts:
        n = int(np.searchsorted(stamps, pd.Timestamp(cut), side="right"))
        if n < 2:
            continue
        part = rule.compute(frame.iloc[:n].copy())
        ref = full.iloc[:n]
        assert part.index.equals(ref.index)
        for col in part.columns:
            same = _same(part[col].to_numpy(), ref[col].to_numpy())
            if not same.all():
                j = int(np.flatnonzero(~same)[0])
                diffs.append(f"{rule!r}: {col} on {part.index[j]} changes when the history is cut at {cut}")
    return diffs


def signal_cuts(rule: Rule, sessions: pd.DataFrame, bars: pd.DataFrame, n: int = 4) -> list[pd.Timestamp]:
    """The fixed cut dates plus, for ``n`` evenly spaced signals, the day before and the signal day itself."""
    frame = rule_input(rule, sessions, bars)
    out = rule.compute(frame)
    fired = frame.index[out["signal"].to_numpy(dtype=bool)]
    if fired.tz is not None:
        fired = fired.tz_convert(None)
    picks = fired[np.linspace(0, len(fired) - 1, min(n, len(fired))).astype(int)] if len(fired) else fired
    cuts = [pd.Timestamp(c) for c in FIXED_CUTS]
    for p in picks:
        cuts += [p - pd.Timedelta(days=1), p]
    return sorted(set(cuts))


# ------------------------------------------------------------------------------------------ (a) defaults
@pytest.mark.parametrize("name", NAMES)
def test_rule_declaration_and_defaults_are_valid(name):
    cls = rules.get(name)
    assert cls.name == name, "file name = rule name = registry key"
    assert cls.kind in ("event", "filter")
    assert cls.on in ("index", "asset")
    assert (cls.__doc__ or "").strip(), "a rule explains itself in one line (shown by `riskon rules`)"
    rule = rules.make(name)
    assert set(rule.values) == set(cls.params)
    for pname, p in cls.params.items():
        assert isinstance(p, Param), pname
        assert p.check(pname, p.default) == p.default, f"{name}.{pname}: the default fails its own check"
        assert rule.values[pname] == p.default
        if p.low is not None and p.high is not None:
            assert p.low <= p.high, pname
        if p.sweep is None:
            continue
        start, stop, step = p.sweep
        assert step > 0 and start <= stop, f"{name}.{pname}: sweep {p.sweep} is not start <= stop, step > 0"
        for bound in (start, stop):
            assert p.low is None or bound >= p.low, f"{name}.{pname}: sweep {p.sweep} leaves [{p.low}, {p.high}]"
            assert p.high is None or bound <= p.high, f"{name}.{pname}: sweep {p.sweep} leaves [{p.low}, {p.high}]"
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        for k in range(n):
            value = start + k * step
            value = int(round(value)) if p.kind is int else float(value)
            p.check(pname, value)  # every swept value is a valid value
    # the defaults also pass the rule's own constraint (make() ran it) and build from a config spec
    compose.build({"rule": name, **{k: v for k, v in rule.values.items()}})


# ------------------------------------------------------------------------------------------ (b) output
@pytest.mark.parametrize("name", NAMES)
def test_compute_returns_boolean_signal_on_the_input_index(name, sessions, bars):
    rule = rules.make(name)
    frame = rule_input(rule, sessions, bars)
    before = frame.copy()
    out = rule.compute(frame)
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(frame.index), "the output must sit on exactly the input's rows"
    assert "signal" in out.columns
    assert out["signal"].dtype == bool, f"signal dtype is {out['signal'].dtype}, not bool"
    assert not out["signal"].isna().any()
    if "level" in out.columns:
        assert out["level"].dtype == np.float64
    pd.testing.assert_frame_equal(frame, before, obj="the rule's input (a rule must not modify it)")
    again = rule.compute(frame.copy())
    pd.testing.assert_frame_equal(out, again, obj="a second compute (rules are deterministic)")
    if name in BUILTINS:  # real data over decades: every built-in rule fires, and not always
        assert out["signal"].any() and not out["signal"].all(), name


# ------------------------------------------------------------------------------------------ (c) lookahead
@pytest.mark.parametrize("name", NAMES)
def test_lookahead_check_is_clean(name, raw_index, btc_from_2014):
    diffs = lookahead.check(rules.make(name), raw_index, btc_from_2014, n_signal=6, n_random=4, n_backtest=1)
    assert diffs == [], "\n".join(map(str, diffs[:5]))


@pytest.mark.parametrize("name", NAMES)
def test_truncated_history_gives_the_same_signals(name, sessions, bars):
    rule = rules.make(name)
    cuts = signal_cuts(rule, sessions, bars)
    assert len(cuts) > len(FIXED_CUTS) or name not in BUILTINS
    assert truncation_diffs(rule, sessions, bars, cuts) == []


# ------------------------------------------------------------------------------------------ (d) smoke backtest
def smoke_config(name: str):
    entry = (
        {"rule": name} if rules.get(name).kind == "event" else {"all_of": [{"rule": "ath_confirmed"}, {"rule": name}]}
    )
    return parse(
        {
            "name": f"smoke_{name}",
            "data": dict(SMOKE),
            "strategy": {"entry": entry},
            "exits": {"trailing_stop": 0.1, "max_hold_days": 30.0},
            "report": {"tearsheet": False, "chart": False},
        }
    )


@pytest.fixture(scope="module")
def ath_only(data_dir):
    return run(smoke_config("ath_confirmed"))


@pytest.mark.parametrize("name", NAMES)
def test_smoke_backtest(name, ath_only):
    res = run(smoke_config(name))  # run() itself fails on refused orders and accounting problems
    assert check_accounting(res.backtest) == []
    assert list(res.trades.columns) == TRADE_COLUMNS
    assert res.equity.index.equals(res.bars.index)
    assert res.bars.index[0] == pd.Timestamp(SMOKE["start"], tz="UTC")
    assert res.bars.index[-1] == pd.Timestamp(SMOKE["end"], tz="UTC")
    assert res.metrics.loc["trades", "strategy"] == len(res.backtest.positions)
    if rules.get(name).kind == "filter":  # a filter only removes ath_confirmed's events
        assert not (res.bars["event"] & ~ath_only.bars["event"]).any()
    if name in BUILTINS:
        assert len(res.trades) > 0, f"{name}: no trade in {SMOKE}, the smoke test exercises nothing"


# ------------------------------------------------------------------------------------------ planted peeking rules
class PeekNextClose(Rule):
    """A close above the prior high that *tomorrow's* close exceeds: ``close.shift(-1)``."""

    name = "peek_next_close"
    params = {}

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        close = sessions["idx_close"]
        signal = (close > close.cummax().shift(1)) & (close.shift(-1) > close)
        return pd.DataFrame({"signal": signal.to_numpy(dtype=bool)}, index=sessions.index)


class CentredMa(Rule):
    """Filter: close above a *centred* 21-session average, half of which lies in the future."""

    name = "centred_ma"
    kind = "filter"
    params = {}

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        close = sessions["idx_close"]
        signal = close > close.rolling(21, center=True).mean()
        return pd.DataFrame({"signal": signal.to_numpy(dtype=bool)}, index=sessions.index)


class WeekCloseFfill(Rule):
    """The week's last close forward-filled into its week: Monday's signal uses Friday's close."""

    name = "week_close_ffill"
    params = {}

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        close = sessions["idx_close"]
        week = sessions.index.to_period("W-SUN")
        week_close = close.groupby(week).transform("last")
        signal = week_close > close  # "the week will close above today"
        return pd.DataFrame({"signal": signal.to_numpy(dtype=bool)}, index=sessions.index)


PLANTED = [PeekNextClose, CentredMa, WeekCloseFfill]


@pytest.mark.parametrize("cls", PLANTED, ids=lambda c: c.name)
def test_planted_peeking_rule_is_caught(cls, raw_index, sessions, bars, btc_from_2014):
    rule = cls()
    out = rule.compute(sessions)  # well-formed output: only the lookahead checks can tell it peeks
    assert out.index.equals(sessions.index) and out["signal"].dtype == bool and out["signal"].any()
    # a few cuts around sampled signals are enough to expose each of these
    diffs = lookahead.check(rule, raw_index, btc_from_2014, n_signal=2, n_random=0, n_backtest=0)
    assert diffs, f"strategies.lookahead.check missed the planted {cls.name}"
    assert any("signal" in d.what for d in diffs), [str(d) for d in diffs[:3]]
    assert truncation_diffs(rule, sessions, bars, signal_cuts(rule, sessions, bars)), (
        f"the truncated-history test missed the planted {cls.name}"
    )


# ------------------------------------------------------------------------------------------ names and parameters
def test_unknown_rule_lists_valid_names_and_suggests():
    with pytest.raises(ValueError, match="unknown rule 'ath_confirm'") as e:
        rules.make("ath_confirm")
    msg = str(e.value)
    for name in NAMES:
        assert name in msg
    assert "did you mean 'ath_confirmed'?" in msg
    with pytest.raises(ConfigError, match="did you mean 'n_day_high'"):
        parse({"strategy": {"rule": "n_days_high"}})


def test_unknown_parameter_suggests():
    with pytest.raises(ValueError, match="has no parameter 'confirm_day'.*did you mean 'confirm_days'"):
        rules.make("ath_confirmed", confirm_day=3)
    with pytest.raises(ValueError, match="one of 'days', 'weekly'.*did you mean 'weekly'"):
        rules.make("ath_confirmed", confirm="weekley")
    with pytest.raises(ValueError, match="must be int"):
        rules.make("n_day_high", window=20.5)
    with pytest.raises(ValueError, match="must be >= 2"):
        rules.make("index_above_ma", window=1)
    with pytest.raises(ConfigError, match="did you mean 'threshold'"):
        parse({"strategy": {"rule": "ath_confirmed", "params": {"treshold": 0.01}}})
    with pytest.raises(ConfigError, match="did you mean 'window'"):
        parse({"strategy": {"entry": {"all_of": ["ath_confirmed", {"rule": "index_above_ma", "windw": 50}]}}})


class MaCross(Rule):
    """Filter: fast index average above the slow one; fast must be shorter than slow."""

    name = "ma_cross_test"
    kind = "filter"
    params = {
        "fast": Param(20, int, "index sessions", 2, 500),
        "slow": Param(100, int, "index sessions", 2, 500),
    }

    @staticmethod
    def constraint(values):
        if values["fast"] >= values["slow"]:
            return f"fast ({values['fast']}) must be shorter than slow ({values['slow']})"
        return None

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        close = sessions["idx_close"]
        fast, slow = indicators.sma(close, self.values["fast"]), indicators.sma(close, self.values["slow"])
        return pd.DataFrame({"signal": (fast > slow).to_numpy()}, index=sessions.index)


def test_constraint_rejects_bad_combinations():
    assert MaCross().values == {"fast": 20, "slow": 100}
    assert MaCross(fast=50, slow=200).values == {"fast": 50, "slow": 200}
    for fast, slow in ((100, 50), (50, 50)):
        with pytest.raises(
            ValueError, match=rf"rule ma_cross_test: .*fast \({fast}\) must be shorter than slow \({slow}\)"
        ):
            MaCross(fast=fast, slow=slow)
    with pytest.raises(ValueError, match="must be int"):  # types are checked before the constraint
        MaCross(fast="10")


# ------------------------------------------------------------------------------------------ entry-point plugins
@dataclass(frozen=True)
class FakeEntryPoint:
    """What ``importlib.metadata.entry_points`` yields: a name, a group and ``load()``."""

    name: str
    obj: object
    group: str = rules.ENTRY_POINT_GROUP

    def load(self):
        return self.obj


def fake_entry_points(*eps: FakeEntryPoint):
    def entry_points(group: str | None = None, **_):
        return [ep for ep in eps if ep.group == group]

    return entry_points


@pytest.fixture(autouse=True)
def _fresh_plugin_cache():
    """Entry-point plugins are cached; tests that fake them start and end with a clean cache."""
    rules.refresh()
    yield
    rules.refresh()


def test_entry_point_plugin_is_registered(monkeypatch, sessions, bars):
    monkeypatch.setattr(rules, "entry_points", fake_entry_points(FakeEntryPoint("ma_cross_test", MaCross)))
    rules.refresh()
    assert "ma_cross_test" in rules.available()
    assert set(NAMES) < set(rules.available())
    assert rules.get("ma_cross_test") is MaCross
    rule = rules.make("ma_cross_test", fast=10, slow=30)
    assert rule.values == {"fast": 10, "slow": 30}
    with pytest.raises(ValueError, match="must be shorter"):
        rules.make("ma_cross_test", fast=30, slow=10)
    # it composes, configures and is listed like a built-in
    node = compose.build({"all_of": ["ath_confirmed", {"rule": "ma_cross_test", "fast": 10, "slow": 30}]})
    assert len(node.evaluate(sessions, bars).on) == len(bars)
    cfg = parse({"strategy": {"entry": {"all_of": ["ath_confirmed", {"rule": "ma_cross_test", "fast": 10}]}}})
    assert cfg.strategy["entry"]["all_of"][1]["rule"] == "ma_cross_test"
    with pytest.raises(ConfigError, match="fast \\(300\\) must be shorter than slow \\(100\\)"):
        parse({"strategy": {"entry": {"all_of": ["ath_confirmed", {"rule": "ma_cross_test", "fast": 300}]}}})
    from rich.console import Console

    from riskon.cli.rules_cmd import rules_table

    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115 - closed below
    console.print(rules_table())
    console.file.close()
    assert "ma_cross_test" in console.export_text()


def test_broken_entry_points_do_not_break_builtins(monkeypatch):
    def broken(group=None, **_):
        raise RuntimeError("a broken distribution")

    monkeypatch.setattr(rules, "entry_points", broken)

    rules.refresh()
    assert rules.available() == NAMES
    monkeypatch.setattr(rules, "entry_points", fake_entry_points(FakeEntryPoint("not_a_rule", object)))
    rules.refresh()
    with pytest.raises(ValueError, match="entry point 'not_a_rule' .* is not a Rule subclass"):
        rules.get("not_a_rule")


# ------------------------------------------------------------------------------------------ a rule file dropped in
GAP_UP = '''\
"""``{name}``: the index closes more than ``pct`` above the previous session's close (a test plugin)."""

from __future__ import annotations

import pandas as pd

from strategies.params import Param
from strategies.rules import Rule


class GapUp(Rule):
    """Index close up more than ``pct`` on the session."""

    name = "{name}"
    params = {{"pct": Param(0.02, float, "fraction above the previous close", 0.0, 0.5, sweep=(0.01, 0.05, 0.01))}}

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        close = sessions["idx_close"]
        up = close > close.shift(1) * (1.0 + self.values["pct"])
        return pd.DataFrame({{"signal": up.to_numpy(dtype=bool)}}, index=sessions.index)
'''


def _rules_dir_state() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(RULES_DIR.glob("*.py"))}


@pytest.fixture
def dropped_rule():
    """A rule file written into strategies/rules/ for one test, removed afterwards even on failure."""
    name = f"zz_test_gap_up_{os.getpid()}"
    path = RULES_DIR / f"{name}.py"
    before = _rules_dir_state()
    path.write_text(GAP_UP.format(name=name), encoding="utf-8")
    importlib.invalidate_caches()
    try:
        yield name, before
    finally:
        path.unlink(missing_ok=True)
        for pyc in (RULES_DIR / "__pycache__").glob(f"{name}.*"):
            pyc.unlink(missing_ok=True)
        sys.modules.pop(f"{rules.__name__}.{name}", None)
        importlib.invalidate_caches()


def test_dropped_rule_file_is_listed_and_runs(dropped_rule, tmp_path, raw_index):
    name, before = dropped_rule
    assert name in rules.available()
    assert rules.make(name, pct=0.03).values == {"pct": 0.03}
    env = dict(os.environ)  # RISKON_DATA and this session's RISKON_CACHE
    listed = subprocess.run([*riskon_cmd(), "rules"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout and "fraction above the previous close" in listed.stdout
    cfg = tmp_path / "gap.toml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            name = "gap_up_test"
            [data]
            start = "2019-01-01"
            end = "2021-12-31"
            [strategy]
            rule = "{name}"
            [strategy.params]
            pct = 0.02
            [exits]
            max_hold_days = 5
            """
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [*riskon_cmd(), "run", str(cfg), "--no-report", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    trades = pd.read_csv(out / "trades.csv")
    assert len(trades) > 0
    # every trade's signal session is a session whose close is > 2% above the previous close
    s = session_frame(raw_index)["idx_close"]
    jump = s > s.shift(1) * 1.02
    for session in pd.to_datetime(trades["signal_session"]):
        assert jump.loc[pd.Timestamp(session).tz_localize(None)], session
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
    # nothing but the dropped file changed in the rules folder
    after = _rules_dir_state()
    assert after.pop(f"{name}.py")
    assert after == before
