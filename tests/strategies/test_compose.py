"""Composed rules (``strategies.compose``): spec parsing, errors, and evaluation on real data.

Each composed expression is evaluated on ^RUT sessions aligned to BTC-USD bars and compared with the
same logic computed here by hand: the filters' moving averages with numpy, and the visible session
of each bar from the session close stamps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feeds.align import align, session_frame
from feeds.loader import load
from riskon.config import ConfigError, parse
from strategies import rules
from strategies.compose import Combine, Leaf, Not, build, describe, has_event
from strategies.signals import bar_events


@pytest.fixture(scope="module")
def sessions(data_dir) -> pd.DataFrame:
    return session_frame(load("^RUT", "1d"))


@pytest.fixture(scope="module")
def btc(data_dir) -> pd.DataFrame:
    raw = load("BTC-USD", "1d")
    out = raw[raw.index >= pd.Timestamp("2014-01-01", tz="UTC")]
    out.attrs = dict(raw.attrs)
    return out


@pytest.fixture(scope="module")
def bars(btc, sessions) -> pd.DataFrame:
    return align(btc, sessions)


def visible_pos(bars: pd.DataFrame, sessions: pd.DataFrame, lag_hours: float = 0.0) -> np.ndarray:
    """Per bar, by hand: the last session whose close stamp is at or before the bar's close minus the lag."""
    stamps = pd.DatetimeIndex(sessions["idx_close_time"]).tz_convert("UTC")
    cutoff = bars.index + pd.Timedelta(days=1) - pd.Timedelta(hours=lag_hours)
    return np.searchsorted(stamps.asi8, cutoff.as_unit(stamps.unit).asi8, side="right") - 1


def sma_numpy(close: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean of ``window`` closes (NaN before the window is full), via cumulative sums."""
    out = np.full(len(close), np.nan)
    c = np.concatenate([[0.0], np.cumsum(close)])
    out[window - 1 :] = (c[window:] - c[:-window]) / window
    return out


def above_ma_on_bars(bars, sessions, window: int) -> np.ndarray:
    """The bar's visible index close is strictly above its ``window``-session SMA (False if none/NaN)."""
    close = sessions["idx_close"].to_numpy()
    sma = sma_numpy(close, window)
    pos = visible_pos(bars, sessions)
    safe = np.maximum(pos, 0)
    with np.errstate(invalid="ignore"):
        return (pos >= 0) & (close[safe] > sma[safe])


# ------------------------------------------------------------------------------------------ parsing
def test_string_spec_is_one_rule_with_defaults():
    node = build("ath_confirmed")
    assert isinstance(node, Leaf)
    assert node.rule.name == "ath_confirmed"
    assert node.rule.values == rules.make("ath_confirmed").values
    assert has_event(node)


@pytest.mark.parametrize(
    "spec",
    [
        {"rule": "n_day_high", "window": 50, "threshold": 0.01},
        {"rule": "n_day_high", "params": {"window": 50, "threshold": 0.01}},
    ],
)
def test_table_spec_carries_params_inline_or_in_params(spec):
    node = build(spec)
    assert isinstance(node, Leaf)
    assert node.rule.values == {"window": 50, "threshold": 0.01}


def test_nested_spec_builds_the_tree():
    spec = {
        "all_of": [
            {"any_of": ["ath_confirmed", {"rule": "n_day_high", "window": 100}]},
            {"not": {"rule": "index_above_ma", "window": 50}},
            {"rule": "idx_age_max", "max_days": 2.0},
        ]
    }
    node = build(spec)
    assert isinstance(node, Combine) and node.op == "all_of" and len(node.children) == 3
    inner, neg, age = node.children
    assert isinstance(inner, Combine) and inner.op == "any_of"
    assert [leaf.rule.name for leaf in inner.leaves()] == ["ath_confirmed", "n_day_high"]
    assert isinstance(neg, Not) and isinstance(neg.child, Leaf) and neg.child.rule.values == {"window": 50}
    assert isinstance(age, Leaf) and age.rule.values == {"max_days": 2.0}
    assert [leaf.rule.name for leaf in node.leaves()] == [
        "ath_confirmed",
        "n_day_high",
        "index_above_ma",
        "idx_age_max",
    ]
    assert has_event(node)
    text = describe(node)
    assert text.startswith("all_of(any_of(ath_confirmed(")
    assert "not index_above_ma(window=50)" in text and "idx_age_max(max_days=2.0)" in text


def test_has_event_needs_an_event_outside_not():
    assert not has_event(build({"all_of": ["index_above_ma", "asset_above_ma"]}))
    assert not has_event(build({"not": "ath_confirmed"}))
    # any_of needs an event in every alternative: a lone filter branch would open trades on a state
    assert not has_event(build({"any_of": ["index_above_ma", {"all_of": ["n_day_high"]}]}))
    assert has_event(build({"any_of": ["ath_confirmed", {"all_of": ["n_day_high", "index_above_ma"]}]}))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"all_of": []}, r"rule: all_of needs a non-empty list of rules"),
        ({"any_of": []}, r"rule: any_of needs a non-empty list of rules"),
        ({"all_of": "ath_confirmed"}, r"all_of needs a non-empty list"),
        ({"all_of": ["ath_confirmed"], "any_of": ["n_day_high"]}, r"exactly one of .*; got \['all_of', 'any_of'\]"),
        ({"rule": "ath_confirmed", "not": "index_above_ma"}, r"exactly one of rule, all_of, any_of, not"),
        ({}, r"exactly one of rule, all_of, any_of, not; got \[\]"),
        ({"window": 50}, r"exactly one of rule, all_of, any_of, not; got \['window'\]"),
        ({"not": "index_above_ma", "window": 50}, r"not takes no other keys, got \['window'\]"),
        (42, r"rule: expected a rule name or a table, got int"),
        (["ath_confirmed"], r"expected a rule name or a table, got list"),
        ({"all_of": ["ath_confirmed", 3]}, r"rule\.all_of\[1\]: expected a rule name or a table, got int"),
        ({"all_of": ["ath_confirmed", {"not": {"any_of": []}}]}, r"rule\.all_of\[1\]\.not: any_of needs a non-empty"),
        ({"any_of": ["ath_confirmd"]}, r"unknown rule 'ath_confirmd'.*did you mean 'ath_confirmed'"),
        ({"rule": "index_above_ma", "windw": 50}, r"no parameter 'windw'.*did you mean 'window'"),
    ],
)  # fmt: skip
def test_bad_specs_fail_with_clear_text(spec, message):
    with pytest.raises(ValueError, match=message):
        build(spec)


def test_errors_name_where_they_are():
    with pytest.raises(ValueError, match=r"^\[exits\.rule\]\.not: expected a rule name or a table"):
        build({"not": 1.5}, "[exits.rule]")


# ------------------------------------------------------------------------------------------ evaluation on real data
def test_visible_session_by_hand_matches_align(bars, sessions):
    """The hand-made visibility used below agrees with the aligned frame (so the checks are independent)."""
    np.testing.assert_array_equal(visible_pos(bars, sessions), bars["idx_pos"].to_numpy())


@pytest.mark.parametrize(
    "event", [{"rule": "ath_confirmed"}, {"rule": "n_day_high", "window": 20}], ids=["ath", "nday20"]
)
def test_all_of_event_and_index_above_ma(event, bars, sessions):
    both = build({"all_of": [event, {"rule": "index_above_ma", "window": 200}]}).evaluate(sessions, bars)
    alone = build(event).evaluate(sessions, bars)
    above = above_ma_on_bars(bars, sessions, 200)
    np.testing.assert_array_equal(both.on, alone.on & above)
    assert both.on.sum() > 5
    if event["rule"] == "n_day_high":  # 20-session highs below the 200-session average exist: the filter bites
        assert (alone.on & ~above).sum() > 5
    # the level and session come from the event rule
    np.testing.assert_array_equal(both.level[both.on], alone.level[both.on])
    np.testing.assert_array_equal(both.session[both.on], alone.session[both.on])
    assert np.isnan(both.level[~both.on]).all() and np.isnat(both.session[~both.on]).all()


def test_event_level_and_session_come_from_the_event_rule(bars, sessions):
    rule = rules.make("ath_confirmed", confirm_days=2)
    out = rule.compute(sessions)
    sig = build({"all_of": [{"rule": "ath_confirmed", "confirm_days": 2}, "index_above_ma"]}).evaluate(sessions, bars)
    ev = bar_events(bars, out)
    np.testing.assert_array_equal(sig.on, ev["event"].to_numpy() & above_ma_on_bars(bars, sessions, 200))
    on = np.flatnonzero(sig.on)
    assert len(on) > 5
    pos = bars["idx_pos"].to_numpy()
    for i in on:
        session = pd.Timestamp(sig.session[i])
        assert out.loc[session, "signal"], "the event session is a confirming session of the rule"
        assert sig.level[i] == out.loc[session, "level"]
        assert session <= sessions.index[pos[i]], "the event session is visible on the bar"
        assert i == 0 or session > sessions.index[pos[i - 1]], "and was not visible on the previous bar"


def test_any_of_is_or_and_takes_the_first_level(bars, sessions):
    ath = build("ath_confirmed").evaluate(sessions, bars)
    high = build({"rule": "n_day_high", "window": 252}).evaluate(sessions, bars)
    either = build({"any_of": ["ath_confirmed", {"rule": "n_day_high", "window": 252}]}).evaluate(sessions, bars)
    np.testing.assert_array_equal(either.on, ath.on | high.on)
    assert (high.on & ~ath.on).sum() > 5, "n_day_high adds events the ATH rule does not have"
    np.testing.assert_array_equal(either.level[ath.on], ath.level[ath.on])
    only_high = high.on & ~ath.on
    np.testing.assert_array_equal(either.level[only_high], high.level[only_high])
    np.testing.assert_array_equal(either.session[only_high], high.session[only_high])
    assert np.isnan(either.level[~either.on]).all()


def test_not_is_negation(bars, sessions):
    neg = build({"not": {"rule": "index_above_ma", "window": 50}}).evaluate(sessions, bars)
    pos = build({"rule": "index_above_ma", "window": 50}).evaluate(sessions, bars)
    np.testing.assert_array_equal(neg.on, ~pos.on)
    np.testing.assert_array_equal(pos.on, above_ma_on_bars(bars, sessions, 50))
    assert 0.2 < neg.on.mean() < 0.8
    assert np.isnan(neg.level).all() and np.isnat(neg.session).all()
    double = build({"not": {"not": {"rule": "index_above_ma", "window": 50}}}).evaluate(sessions, bars)
    np.testing.assert_array_equal(double.on, pos.on)


def test_idx_age_max_filters_stale_index_data(btc, sessions):
    """With a 3.5-hour publication lag a winter session (close 21:00 UTC) misses its own day's bar.

    It is first seen on the next bar, 1.125 days old, while a summer session (close 20:00 UTC) is
    still seen on its own day's bar: ``idx_age_max(1.0)`` keeps the summer events only.
    """
    lagged = align(btc, sessions, lag=3.5)
    age = lagged["idx_age"].to_numpy()
    flt = build({"rule": "idx_age_max", "max_days": 1.0}).evaluate(sessions, lagged)
    np.testing.assert_array_equal(flt.on, age <= 1.0)  # NaN age (no session yet) compares False
    ath = build("ath_confirmed").evaluate(sessions, lagged)
    both = build({"all_of": ["ath_confirmed", {"rule": "idx_age_max", "max_days": 1.0}]}).evaluate(sessions, lagged)
    np.testing.assert_array_equal(both.on, ath.on & (age <= 1.0))
    assert (ath.on & ~(age <= 1.0)).sum() > 20, "winter ATH events arrive stale and are dropped"
    assert both.on.sum() > 20
    # by hand: the age is the time from the visible session's close to the bar's close
    pos = visible_pos(lagged, sessions, lag_hours=3.5)
    stamps = pd.DatetimeIndex(sessions["idx_close_time"]).tz_convert("UTC")
    seen = pos >= 0
    hand = ((lagged.index[seen] + pd.Timedelta(days=1)) - stamps[pos[seen]]) / pd.Timedelta(days=1)
    np.testing.assert_allclose(age[seen], hand.to_numpy(), rtol=0, atol=1e-9)


# ------------------------------------------------------------------------------------------ configs
def test_config_refuses_an_entry_with_only_filters():
    with pytest.raises(ConfigError, match="needs at least one event rule"):
        parse({"strategy": {"entry": {"all_of": ["index_above_ma", {"rule": "idx_age_max", "max_days": 1.0}]}}})
    with pytest.raises(ConfigError, match="needs at least one event rule"):
        parse({"strategy": {"entry": {"not": "ath_confirmed"}}})
    with pytest.raises(ConfigError, match="either rule .* or \\[strategy.entry\\], not both"):
        parse({"strategy": {"rule": "ath_confirmed", "entry": {"rule": "n_day_high"}}})
    with pytest.raises(ConfigError, match=r"\[strategy.entry\].*non-empty list"):
        parse({"strategy": {"entry": {"all_of": []}}})
    with pytest.raises(ConfigError, match=r"\[exits.rule\]: a rule table needs exactly one of"):
        parse({"exits": {"rule": {"all_of": ["index_above_ma"], "not": "index_above_ma"}}})
    cfg = parse({"strategy": {"entry": {"all_of": ["ath_confirmed", "index_above_ma"]}}})
    assert cfg.strategy["entry"] == {"all_of": ["ath_confirmed", "index_above_ma"]}
