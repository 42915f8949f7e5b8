"""The event study against a hand computation on the snapshot's raw CSVs, its bootstrap, page and command."""

from __future__ import annotations

import csv
import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feeds.loader import load
from riskon import config
from riskon.analysis.episodes import BASKET, event_study, settings_from, study
from riskon.analysis.forward_returns import block_bootstrap
from riskon.config import ConfigError
from support.clitools import riskon_cmd

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "runs" / "seed.toml"


def _csv(path: Path) -> tuple[list[str], list[float]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["Date"] for r in rows], [float(r["Close"]) for r in rows]


@pytest.fixture(scope="module")
def hand(data_dir):
    """Episodes, seed signals (3-session confirmation, threshold 0) and BTC closes, by plain loops over the CSVs."""
    dates, closes = _csv(data_dir / "RUT.csv")
    episodes, high, last_record = [], closes[0], 0
    for i in range(1, len(closes)):
        if closes[i] > high:
            if i - last_record >= 60:
                episodes.append({"start": dates[i], "close": closes[i], "prior": high, "drought": i - last_record})
            high, last_record = closes[i], i
    signals, prior = [], closes[0]  # prior = highest close strictly before session b
    for b in range(1, len(closes) - 2):
        if all(closes[b + j] > prior for j in range(3)):
            signals.append(dates[b + 2])
        prior = max(prior, closes[b])
    btc_dates, btc_closes = _csv(data_dir / "BTC-USD.csv")
    btc = dict(zip(btc_dates, btc_closes, strict=True))
    signals = [s for s in signals if s >= btc_dates[0]]  # the strategy's bars (and events) start with BTC's
    return {"episodes": episodes, "signals": signals, "btc": btc, "btc_last": btc_dates[-1]}


@pytest.fixture(scope="module")
def seed_study(data_dir):
    return event_study(config.load(SEED))


def _plus(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def _first_signal(hand, start: str) -> str:
    starts = [e["start"] for e in hand["episodes"]]
    nxt = next((s for s in starts if s > start), "9999")
    return min(s for s in hand["signals"] if start <= s < nxt)


def test_episodes_match_the_hand_loop(seed_study, hand):
    eps = seed_study.episodes
    assert len(eps) == len(hand["episodes"]) == 23
    assert [d.strftime("%Y-%m-%d") for d in eps["start"]] == [e["start"] for e in hand["episodes"]]
    assert eps["close"].tolist() == [e["close"] for e in hand["episodes"]]
    assert eps["prior_record"].tolist() == [e["prior"] for e in hand["episodes"]]
    assert eps["drought"].tolist() == [e["drought"] for e in hand["episodes"]]
    last = eps.iloc[-1]
    assert last["start"] == pd.Timestamp("2025-09-18") and last["drought"] == 968
    assert last["prior_session"] == pd.Timestamp("2021-11-08") and last["prior_record"] == pytest.approx(2442.74)


@pytest.mark.parametrize("start", ["2016-11-14", "2020-11-13", "2025-09-18"])
def test_forward_returns_match_the_hand_computation(seed_study, hand, start):
    ep = seed_study.episodes.set_index("start").loc[pd.Timestamp(start)]
    signal = _first_signal(hand, start)
    assert ep["signal"] == pd.Timestamp(signal)
    r = seed_study.returns
    mine = r[(r["asset"] == "BTC-USD") & (r["episode"] == ep["episode"]) & r["first"]].set_index("horizon")
    btc = hand["btc"]
    # the signal session closes at 16:00 New York, before BTC's UTC day of that date closes: that close is the reference
    for h in (30, 90):
        expected = btc[_plus(signal, h)] / btc[signal] - 1.0
        assert mine.at[h, "ref_time"] == pd.Timestamp(signal, tz="UTC")
        assert mine.at[h, "ref_close"] == btc[signal]
        assert mine.at[h, "return"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert seed_study.episode_returns("BTC-USD").at[ep["episode"], h] == mine.at[h, "return"]


def test_sample_sizes_and_horizons_past_the_data(seed_study, hand):
    s = seed_study.summary.set_index("horizon")
    last = hand["btc_last"]
    starts = [e["start"] for e in hand["episodes"]] + ["9999"]
    firsts = [
        min(sig)
        for a, b in zip(starts, starts[1:], strict=False)
        if (sig := [x for x in hand["signals"] if a <= x < b])
    ]
    assert len(firsts) == 6
    assigned = hand["signals"]  # the first episode starts in 1987: every signal belongs to one
    for h in (7, 30, 90, 180, 365):
        assert s.at[h, "episodes"] == sum(_plus(f, h) <= last for f in firsts)
        assert s.at[h, "signals"] == sum(_plus(x, h) <= last for x in assigned)
        assert s.at[h, "days"] == len(hand["btc"]) - h
    assert s.at[180, "episodes"] == 6 and s.at[365, "episodes"] == 5  # 2025-09-22 + 365 d is past 2026-08-21
    r = seed_study.returns
    assert r["end_time"].max() <= pd.Timestamp(last, tz="UTC")
    assert not r[(r["horizon"] == 365) & (r["signal"] >= pd.Timestamp("2025-08-22"))].size


def test_config_end_drops_horizons_not_truncates(data_dir):
    text = SEED.read_text().replace('timeframe = "1d"', 'timeframe = "1d"\nend = "2021-01-31"')
    cfg = config.parse(__import__("tomllib").loads(text), "seed-cut")
    st = event_study(cfg, settings_from(cfg, horizons=[30, 90]))
    ep = st.episode_returns("BTC-USD")
    row = st.episodes.set_index("start").loc[pd.Timestamp("2020-11-13"), "episode"]
    assert not np.isnan(ep.at[row, 30])  # 2020-11-17 + 30 d = 2020-12-17, inside
    assert np.isnan(ep.at[row, 90])  # 2021-02-15 is past the config's end: dropped
    assert st.returns["end_time"].max() <= pd.Timestamp("2021-01-31", tz="UTC")


def test_bootstrap_intervals(seed_study):
    s = seed_study.summary
    ok = s["ci_low"].notna()
    assert ok.sum() >= 5
    assert ((s.loc[ok, "ci_low"] <= s.loc[ok, "mean"]) & (s.loc[ok, "mean"] <= s.loc[ok, "ci_high"])).all()
    assert ((s["all_ci_low"] <= s["all_mean"]) & (s["all_mean"] <= s["all_ci_high"])).all()
    # overlapping 90-day windows: blocks of 90 days give a much wider interval than resampling single days
    days = seed_study.prices["BTC-USD"]
    x = (days.shift(-90) / days - 1).dropna().to_numpy()
    row = s[(s["asset"] == "BTC-USD") & (s["horizon"] == 90)].iloc[0]
    assert row["days"] == len(x) and row["all_mean"] == pytest.approx(x.mean(), rel=1e-12)
    block = block_bootstrap(x, 90, 2000, np.random.default_rng(0))
    iid = block_bootstrap(x, 1, 2000, np.random.default_rng(0))
    width = lambda d: np.quantile(d, 0.95) - np.quantile(d, 0.05)  # noqa: E731
    assert width(block) > 3 * width(iid)
    assert row["all_ci_high"] - row["all_ci_low"] == pytest.approx(width(block), rel=0.25)
    # one block as long as the series: every resample is the series itself
    assert np.allclose(block_bootstrap(x, len(x), 50, np.random.default_rng(1)), x.mean(), rtol=1e-12)


def test_pure_study_is_seeded(seed_study, data_dir):
    btc = load("BTC-USD")
    sig = seed_study.signals["signal"]
    sig = pd.DatetimeIndex(sig)
    settings = seed_study.settings
    a = study(seed_study.sessions, sig, {"BTC-USD": btc}, settings=settings)
    pd.testing.assert_frame_equal(a.summary, seed_study.summary)
    b = study(seed_study.sessions, sig, {"BTC-USD": btc}, settings=settings.__class__(seed=1))
    assert not np.allclose(a.summary["ci_low"].fillna(0), b.summary["ci_low"].fillna(0))


def test_events_settings_are_validated():
    cfg = config.load(SEED)
    assert settings_from(cfg).drought == 60
    assert settings_from(cfg, drought=120, assets=["ETH-USD"]).assets == ("ETH-USD",)
    with pytest.raises(ConfigError, match="drought must be >= 1"):
        settings_from(cfg, drought=0)
    text = cfg.text + "\n[events]\ndrougth = 5\n"
    with pytest.raises(ConfigError, match="did you mean 'drought'"):
        settings_from(config.RunConfig(**{**cfg.__dict__, "text": text}))
    with pytest.raises(ConfigError, match="horizons"):
        settings_from(cfg, horizons=[0, 30])


def test_hostile_names_are_escaped(seed_study):
    from riskon.pages.events_page import events_page

    evil = "<script>alert(1)</script>"
    btc = load("BTC-USD")
    st = study(seed_study.sessions, pd.DatetimeIndex(seed_study.signals["signal"]), {evil: btc},
               name="<img src=x onerror=alert(2)>", index_symbol="<b>RUT</b>")  # fmt: skip
    page = events_page(st, description=evil)
    assert evil not in page and "<img src=x" not in page and "<b>RUT</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script" not in page.lower()


def test_cli_prints_and_writes_the_page(tmp_path, data_dir):
    reports = tmp_path / "reports"
    out = reports / "seed" / "events.html"
    env = dict(os.environ, RISKON_REPORTS=str(reports))
    proc = subprocess.run(
        [*riskon_cmd(), "events", str(SEED), "--drought", "120", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "record-close episodes (a record after >= 120 sessions" in text
    assert "2020-11-13" in text and "2016-11-14" in text and "how: Forward return over h calendar days" in text
    assert "BTC-USD after each episode's first signal" in text and "vs all days" in text
    page = out.read_text(encoding="utf-8")
    assert "<title>Event study: seed</title>" in page
    assert page.count("data:image/png;base64,") == 2
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "Forward return over h calendar days" in page and "moving-block bootstrap" in page
    assert "seed/events.html" in (reports / "index.html").read_text(encoding="utf-8")


def test_basket_and_episodes_that_began_before_the_data(seed_study, data_dir):
    sessions, sig = seed_study.sessions, pd.DatetimeIndex(seed_study.signals["signal"])
    eth, xrp = load("ETH-USD"), load("XRP-USD")  # both from 2017-11-09: episode 19 (2016-11-14) began before
    st = study(sessions, sig, {"ETH-USD": eth, "XRP-USD": xrp}, basket=["ETH-USD", "XRP-USD"],
               settings=seed_study.settings.__class__(horizons=(30,)))  # fmt: skip
    assert st.assets[-1] == BASKET
    r = st.returns.pivot_table(index="signal", columns="asset", values="return")
    both = r[["ETH-USD", "XRP-USD"]].dropna()
    np.testing.assert_allclose(r.loc[both.index, BASKET], both.mean(axis=1), rtol=1e-12)
    eps = st.episodes.set_index("episode")
    assert pd.isna(eps.at[19, "signal"]) and eps.at[20, "signal"] == pd.Timestamp("2018-05-18")
    firsts = st.returns[st.returns["first"]]
    assert 19 not in set(firsts["episode"]) and 19 in set(st.returns["episode"])  # later signals still count
    assert any("19 began before the data" in n for n in st.notes)
    days = pd.concat([(f["close"].shift(-30) / f["close"] - 1) for f in (eth, xrp)], axis=1).mean(axis=1).dropna()
    row = st.summary[st.summary["asset"] == BASKET].iloc[0]
    assert row["days"] == len(days) and row["all_mean"] == pytest.approx(days.mean(), rel=1e-12)
    assert row["episodes"] == firsts[firsts["asset"] == BASKET]["episode"].nunique() == 4  # 2018, 2020, 2021, 2025
