"""The lookahead check at every session (``riskon check lookahead``) and its fast form (run before every run).

``first_peek`` recomputes a rule on the history known at each row and compares that row with the full
history's. Three planted peeks: one that creates signals from the next session, one that peeks on only 3
dates, and one that only suppresses signals. The exhaustive form catches all three (it has no seed);
the fast form (signal rows, change rows and a seeded sample) catches the creating ones at any seed and
can miss a peek that only suppresses isolated signals, as the docs say.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feeds.align import align, session_frame
from feeds.loader import load
from strategies import lookahead, rules
from strategies.rules import Rule


@pytest.fixture(scope="module")
def sessions(data_dir) -> pd.DataFrame:
    """Every ^RUT session (1987 on), as every run computes them."""
    return session_frame(load("^RUT", "1d"))


@pytest.fixture(scope="module")
def bars(sessions) -> pd.DataFrame:
    """BTC-USD bars from 2020 aligned to the sessions (what asset rules read)."""
    btc = load("BTC-USD", "1d")
    cut = btc[btc.index >= pd.Timestamp("2020-01-01", tz="UTC")]
    cut.attrs = dict(btc.attrs)
    return align(cut, sessions)


class NextDayUp(Rule):
    """Creates signals from the future: True when the NEXT session closes 2 % higher."""

    name = "planted_next_day_up"
    params = {}

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        close = sessions["idx_close"]
        return pd.DataFrame({"signal": (close.shift(-1) > close * 1.02).to_numpy(dtype=bool)}, index=sessions.index)


#: The next-session gain above which ``RarePeek`` peeks: reached on exactly 3 sessions since 1987
RARE_GAIN = 0.086


class RarePeek(Rule):
    """A new closing high, plus a peek on the 3 sessions before the index's biggest one-day gains."""

    name = "planted_rare_peek"
    params = {}

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        close = sessions["idx_close"]
        honest = close > close.cummax().shift(1)
        peek = close.shift(-1) > close * (1.0 + RARE_GAIN)
        return pd.DataFrame({"signal": (honest | peek).to_numpy(dtype=bool)}, index=sessions.index)


class SuppressBeforeDown(Rule):
    """A new closing high after 20 sessions without one, dropped when the NEXT session closes lower.

    It never creates a signal: it only removes some, using the future. The honest events are at least
    20 sessions apart, so a removed one is surrounded by rows where the full output stays False.
    """

    name = "planted_suppress"
    params = {}

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        close = sessions["idx_close"].to_numpy()
        high = np.maximum.accumulate(close)
        new = np.r_[False, close[1:] > high[:-1]]
        last = -(10**9)
        first = np.zeros(len(close), dtype=bool)
        for i in np.flatnonzero(new):
            if i - last > 20:
                first[i] = True
            last = i
        falls = np.r_[close[1:] < close[:-1], False]
        return pd.DataFrame({"signal": first & ~falls}, index=sessions.index)


def test_the_rare_peek_peeks_on_exactly_three_sessions(sessions):
    close = sessions["idx_close"]
    dates = sessions.index[(close.shift(-1) > close * (1.0 + RARE_GAIN)).to_numpy()]
    assert list(dates.strftime("%Y-%m-%d")) == ["2008-10-10", "2020-03-23", "2025-04-08"]


def test_the_suppressing_rule_only_removes_signals(sessions):
    """Its cut output at each row (computed by hand: the last row cannot see a fall) is a superset of its output."""
    rule = SuppressBeforeDown()
    full = rule.compute(sessions)["signal"].to_numpy()
    live = np.array([rule.compute(sessions.iloc[: t + 1])["signal"].to_numpy()[t] for t in range(4000, 4400)])
    assert (live >= full[4000:4400]).all() and (live > full[4000:4400]).any()


def first_peeked(cls, sessions) -> str:
    """The first session the planted rule's peek decides, found from the data directly."""
    close = sessions["idx_close"]
    up_next = close.shift(-1) > close
    if cls is NextDayUp:  # its first signal: the cut output has none there
        found = close.shift(-1) > close * 1.02
    elif cls is RarePeek:  # the first big gain that is not also a new high
        found = (close.shift(-1) > close * (1.0 + RARE_GAIN)) & ~(close > close.cummax().shift(1))
    else:  # the first isolated new high (20 quiet sessions before it) whose next session falls
        new = close > close.cummax().shift(1)
        quiet = new.astype(int).rolling(20, min_periods=1).sum().shift(1).fillna(0) == 0
        found = new & quiet & ~up_next & close.shift(-1).notna()
    return f"{found[found].index[0]:%Y-%m-%d}"


@pytest.mark.parametrize("cls", [NextDayUp, RarePeek, SuppressBeforeDown], ids=lambda c: c.name)
def test_the_exhaustive_check_catches_every_planted_peek(sessions, cls):
    first = first_peeked(cls, sessions)
    peek = lookahead.first_peek(cls(), sessions)
    assert peek is not None
    assert peek.when == pd.Timestamp(first)
    assert str(peek) == (
        f"rule {cls.name}() reads the future: its signal on {first} changes when the data after that date is removed"
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("cls", [NextDayUp, RarePeek], ids=lambda c: c.name)
def test_the_fast_form_catches_the_peeks_that_create_signals_at_any_seed(sessions, cls, seed):
    peek = lookahead.fast_check(cls(), sessions, seed=seed)
    assert peek is not None and peek.when == pd.Timestamp(first_peeked(cls, sessions))


def test_the_fast_form_can_miss_a_peek_that_only_suppresses(sessions):
    """Without the random sample it never cuts at a suppressed signal (documented; `check lookahead` catches it)."""
    rule = SuppressBeforeDown()
    assert lookahead.fast_check(rule, sessions, sample=0) is None
    assert lookahead.first_peek(rule, sessions) is not None


def test_fast_rows_are_the_signals_the_changes_and_the_sample(sessions):
    rule = rules.make("ath_confirmed")
    signal = rule.compute(sessions)["signal"].to_numpy()
    rows0 = lookahead.fast_rows(rule, sessions, sample=0)
    # an event's output changes on its session (signal and level appear) and on the next (they go)
    expected = np.flatnonzero(signal | np.r_[False, signal[:-1]])
    assert np.array_equal(rows0, expected)
    rows = lookahead.fast_rows(rule, sessions, sample=100, seed=7)
    assert len(rows) == len(rows0) + 100 and set(rows0) <= set(rows)


@pytest.mark.parametrize("name", sorted(rules.available()))
def test_every_registered_rule_passes_the_fast_form(name, sessions, bars):
    rule = rules.make(name)
    assert lookahead.fast_check(rule, lookahead.rule_frame(rule, sessions, bars)) is None


def test_ath_confirmed_passes_the_exhaustive_form(data_dir):
    """Every session of ^RUT since 2018 (a shorter index keeps the test quick; the CLI checks all of it)."""
    index = load("^RUT", "1d")
    recent = index[index.index >= pd.Timestamp("2018-01-01", tz="UTC")]
    recent.attrs = dict(index.attrs)
    assert lookahead.first_peek(rules.make("ath_confirmed"), session_frame(recent)) is None


def test_a_filter_on_the_asset_passes_the_exhaustive_form(bars):
    assert lookahead.first_peek(rules.make("idx_age_max"), bars) is None
