"""Event study (DESIGN.md §8): what BTC and altcoins did after the index's record-close episodes.

**Episodes.** A *record close* is an index close strictly above every earlier close (the first session
is never one). Its *drought* is the number of sessions since the previous record close. A record close
after a drought of at least ``drought`` sessions (default 60, about three months of trading) starts an
*episode*, which lasts until the next one starts. Sixty sessions separates a break out of a real base
(2016-11, 2020-11, 2025-09) from the short pauses of one uptrend (2017's 31-45-session gaps); other
values are one option away.

**Signals** are the config's entry rule as the strategy sees it (its per-bar events, filters included,
within the config's dates), each tied to the index session that fired it and grouped into the episode
that session falls in. An episode's *signal day* is its first signal; an episode that began before the
studied data has none (its first signal is not seen), though its later signals still count.

**Returns.** For a signal session ``s`` and a target coin, the *reference bar* is the first bar of the coin
that sees ``s`` under the as-of alignment of ``feeds.align`` (its close at or after the session's NYSE
close plus the publication lag; for daily UTC bars and no lag, the coin's bar of the same date, which
closes at 24:00 UTC). The ``h``-day forward return is ``close(reference bar + h days) / close(reference
bar) − 1``: close to close, no fees or slippage, not a tradable fill. A horizon whose end lies past the
coin's data (or the config's end date) is dropped, never truncated; so is a signal for a coin that was
not trading yet (its first bar must be before the reference bar). *All days* is the same ``h``-day
return from every bar of the coin, the unconditional benchmark. For a basket or top-k config the
targets' equal-weight *basket* is one more asset: per signal (and per day) the mean of the h-day
returns of the coins that have one — survivorship-biased like the coin list itself.

**Uncertainty.** Forward windows overlap (a 365-day window holds dozens of later signals and 364 other
"all days" starts), so an iid bootstrap is far too narrow. The episode means get an *episode
bootstrap* (resample episodes with replacement; every signal day of a drawn episode comes along for the
"every signal" pool); the all-days means a *moving-block bootstrap* with blocks of ``h`` bars. Intervals
are percentile intervals of ``bootstrap`` draws (default 2000) at ``confidence`` (default 0.9), seeded:
reruns are identical. With fewer than three episodes no interval is given, and with a handful the
percentile interval is itself rough (it tends to be too narrow): read it with the sample size beside it.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from feeds.cache import Cache
from feeds.errors import DataError
from feeds.frame import timeframe_delta
from feeds.loader import load
from riskon.analysis.forward_returns import (
    all_days_series,
    block_bootstrap,
    episode_bootstrap,
    forward_return,
    interval,
    reference_bars,
    seeded_rng,
)
from riskon.config import ConfigError, RunConfig
from strategies.params import Param, check_params

HORIZONS = (7, 30, 90, 180, 365)
DEFAULT_DROUGHT = 60
#: The equal-weight basket of a basket/top-k config's targets, studied as one more asset.
BASKET = "basket (equal weight)"
#: Fewer episodes than this get no interval: resampling one or two values says nothing.
MIN_EPISODES = 3

#: The optional ``[events]`` table of a run config (command-line options override it).
EVENT_KEYS: dict[str, Param] = {
    "drought": Param(DEFAULT_DROUGHT, int, "sessions without a record close before one starts an episode", 1, 5000),
    "horizons": Param(list(HORIZONS), list, "forward horizons in calendar days"),
    "assets": Param([], list, "more coins to study besides the targets (e.g. ETH-USD, binance:SOL/USDT)"),
    "bootstrap": Param(2000, int, "bootstrap draws per interval", 100, 100_000),
    "confidence": Param(0.9, float, "confidence of the bootstrap intervals", 0.5, 0.999),
    "seed": Param(0, int, "seed of the bootstraps", 0, 2**32 - 1),
}

HOW = (
    "Forward return over h calendar days = close(reference bar + h days) / close(reference bar) - 1, close to "
    "close, no costs. The reference bar is the coin's first bar that sees the signal session under the as-of "
    "rule (its close at or after the session's NYSE close + publication lag: for daily UTC bars, the UTC day of "
    "the session, closing at 24:00 UTC). Horizons ending past the data are dropped, not truncated. 'episodes' = "
    "one return per episode, from its first signal; 'every signal' = all signal days (overlapping); 'all days' "
    "= the same h-day return from every bar of the coin. Intervals: episode bootstrap (resampling whole "
    "episodes) for the signals, moving-block bootstrap with blocks of h bars for all days; seeded."
)


@dataclass(frozen=True)
class EventSettings:
    """How to run an event study: episode drought, horizons, extra coins and the bootstrap."""

    drought: int = DEFAULT_DROUGHT
    horizons: tuple[int, ...] = HORIZONS
    assets: tuple[str, ...] = ()
    bootstrap: int = 2000
    confidence: float = 0.9
    seed: int = 0


def settings_from(config: RunConfig, **overrides) -> EventSettings:
    """The ``[events]`` table of a config (from its TOML text), with non-None ``overrides`` applied."""
    raw = {}
    if config.text:
        raw = tomllib.loads(config.text).get("events", {})
    where = config.source or "config"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [events] must be a table, got {type(raw).__name__}")
    raw = {**raw, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in overrides.items() if v is not None}}
    try:
        opts = check_params("[events]", EVENT_KEYS, raw)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    horizons = opts["horizons"]
    if not horizons or not all(isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= 3650 for h in horizons):
        raise ConfigError(f"{where}: [events] horizons must be a non-empty list of whole days in [1, 3650]")
    assets = opts["assets"]
    if not all(isinstance(a, str) and a for a in assets):
        raise ConfigError(f"{where}: [events] assets must be a list of symbols")
    return EventSettings(
        drought=opts["drought"],
        horizons=tuple(sorted(set(horizons))),
        assets=tuple(dict.fromkeys(assets)),
        bootstrap=opts["bootstrap"],
        confidence=opts["confidence"],
        seed=opts["seed"],
    )


# ------------------------------------------------------------------------------------------------ episodes
def record_closes(sessions: pd.DataFrame) -> pd.DataFrame:
    """Every record close of the index: session, close, prior record (value, session) and drought in sessions.

    ``sessions`` is ``feeds.align.session_frame`` output (full history, ``idx_close``).
    """
    close = sessions["idx_close"].to_numpy(dtype="float64")
    n = len(close)
    prior = np.concatenate([[np.nan], np.maximum.accumulate(close)[:-1]]) if n else close
    record = np.zeros(n, dtype=bool)
    record[1:] = close[1:] > prior[1:]
    # the previous record close (the first session stands in as the first "record")
    mark = np.where(record, np.arange(n), 0)
    last = np.maximum.accumulate(mark) if n else mark
    prev = np.concatenate([[0], last[:-1]]) if n else last
    pos = np.flatnonzero(record)
    dates = sessions.index
    return pd.DataFrame(
        {
            "session": dates[pos],
            "close": close[pos],
            "prior_record": prior[pos],
            "prior_session": dates[prev[pos]],
            "drought": (pos - prev[pos]).astype(np.int64),
            "pos": pos,
        }
    )


def episodes(sessions: pd.DataFrame, drought: int = DEFAULT_DROUGHT) -> pd.DataFrame:
    """Record-close episodes: one row per record close after at least ``drought`` sessions without one.

    Columns: ``episode`` (1-based), ``start`` (session), ``close``, ``prior_record``, ``prior_session``,
    ``drought`` (sessions), ``records`` (record closes in the episode), ``last_record`` (session) and
    ``high`` (its close), ``end`` (the session before the next episode starts, or the last session),
    ``start_pos``/``end_pos`` (session ordinals).
    """
    rec = record_closes(sessions)
    starts = rec.index[rec["drought"].to_numpy() >= drought]
    cols = ["episode", "start", "close", "prior_record", "prior_session", "drought", "records", "last_record",
            "high", "end", "start_pos", "end_pos"]  # fmt: skip
    if len(starts) == 0:
        return pd.DataFrame(columns=cols)
    n = len(sessions)
    ep = np.searchsorted(starts.to_numpy(), rec.index.to_numpy(), side="right") - 1  # episode of each record
    rows = []
    for k, s in enumerate(starts):
        mine = rec[ep == k]
        start_pos = int(rec.at[s, "pos"])
        end_pos = int(rec.at[starts[k + 1], "pos"]) - 1 if k + 1 < len(starts) else n - 1
        rows.append(
            {
                "episode": k + 1,
                "start": rec.at[s, "session"],
                "close": rec.at[s, "close"],
                "prior_record": rec.at[s, "prior_record"],
                "prior_session": rec.at[s, "prior_session"],
                "drought": int(rec.at[s, "drought"]),
                "records": len(mine),
                "last_record": mine["session"].iloc[-1],
                "high": float(mine["close"].iloc[-1]),
                "end": sessions.index[end_pos],
                "start_pos": start_pos,
                "end_pos": end_pos,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def signal_sessions(bars: pd.DataFrame) -> pd.DatetimeIndex:
    """The index sessions behind the entry rule's events on ``bars`` (``run.prepare`` output), in order."""
    event = bars["event"].to_numpy(dtype=bool)
    sess = pd.DatetimeIndex(bars["event_session"]).to_numpy().copy()
    seen = pd.DatetimeIndex(bars["idx_session"]).to_numpy()
    sess = np.where(np.isnat(sess), seen, sess)[event]
    sess = sess[~np.isnat(sess)]
    return pd.DatetimeIndex(np.unique(sess), name="signal").as_unit("us")


def assign_episodes(signals: pd.DatetimeIndex, sessions: pd.DataFrame, eps: pd.DataFrame) -> np.ndarray:
    """The episode number of each signal session (0 when it comes before the first episode)."""
    if len(eps) == 0 or len(signals) == 0:
        return np.zeros(len(signals), dtype=np.int64)
    pos = sessions.index.get_indexer(signals)
    if (pos < 0).any():
        raise DataError(f"signal session {signals[pos < 0][0]:%Y-%m-%d} is not an index session")
    k = np.searchsorted(eps["start_pos"].to_numpy(dtype=np.int64), pos, side="right")
    return k.astype(np.int64)


# ------------------------------------------------------------------------------------------------ the study
@dataclass
class EventStudy:
    """An event study's tables (DataFrames) and the settings and data behind them.

    ``episodes``: the index's record-close episodes with their first signal (``signal``) and signal count.
    ``signals``: every signal session, its episode, and whether it is its episode's first.
    ``returns``: one row per (asset, signal, horizon) with the reference and end bars and the return.
    ``summary``: per (asset, horizon) the episode, every-signal and all-days statistics with intervals.
    """

    name: str
    index_symbol: str
    settings: EventSettings
    assets: list[str]
    episodes: pd.DataFrame
    signals: pd.DataFrame
    returns: pd.DataFrame
    summary: pd.DataFrame
    sessions: pd.DataFrame
    prices: dict[str, pd.Series] = field(repr=False)
    how: str = HOW
    notes: list[str] = field(default_factory=list)

    def episode_returns(self, asset: str) -> pd.DataFrame:
        """Per episode with a signal: the forward return of ``asset`` at each horizon (columns = days)."""
        r = self.returns
        first = r[(r["asset"] == asset) & r["first"]]
        return first.pivot_table(index="episode", columns="horizon", values="return", aggfunc="first").reindex(
            columns=list(self.settings.horizons)
        )


def study(
    sessions: pd.DataFrame,
    signals: pd.DatetimeIndex,
    frames: dict[str, pd.DataFrame],
    lag: float = 0.0,
    settings: EventSettings | None = None,
    name: str = "events",
    index_symbol: str = "^RUT",
    basket: list[str] | None = None,
) -> EventStudy:
    """The event study on already-loaded data: index ``sessions``, ``signals`` and each coin's bars.

    ``frames`` maps a symbol to its normalised bars (with ``attrs['timeframe']``), already cut to the dates
    studied. With two or more ``basket`` symbols (a basket or top-k config's targets) an equal-weight
    basket of them is added as one more asset, ``BASKET``. See the module docstring for every definition.
    """
    st = settings or EventSettings()
    eps = episodes(sessions, st.drought)
    ep_of = assign_episodes(signals, sessions, eps)
    # an episode that began before the data has no first signal here (its true first signal is not seen)
    first_bar = min((f.index[0] for f in frames.values()), default=None)
    data_start = first_bar.tz_convert("UTC").tz_localize(None).normalize() if first_bar is not None else None
    early = set(eps.loc[eps["start"] < data_start, "episode"]) if data_start is not None and len(eps) else set()
    first_of = np.zeros(len(signals), dtype=bool)
    if len(signals):
        first_of[np.unique(ep_of, return_index=True)[1]] = True
    first_of &= (ep_of > 0) & ~np.isin(ep_of, list(early))
    sig = pd.DataFrame({"signal": signals, "episode": ep_of, "first": first_of})
    eps = eps.copy()
    if len(eps):
        per = sig[sig["first"]].groupby("episode")["signal"]
        eps["signal"] = eps["episode"].map(per.min())
        eps["signals"] = (
            eps["episode"].map(sig[sig["episode"] > 0].groupby("episode").size()).fillna(0).astype(np.int64)
        )
    else:
        eps["signal"] = pd.Series(dtype="datetime64[us]")
        eps["signals"] = pd.Series(dtype=np.int64)

    rows, summary, prices = [], [], {}
    assigned = sig["episode"].to_numpy() > 0
    forward: dict[tuple[str, int], tuple[np.ndarray, pd.Series]] = {}  # per-coin returns, for the basket
    for asset, frame in frames.items():
        close = frame["close"]
        prices[asset] = close
        ref = reference_bars(frame, sessions, signals, lag)
        times = close.index
        for h in st.horizons:
            ret, end = forward_return(close, ref, h)
            ok = ~np.isnan(ret)
            for i in np.flatnonzero(ok):
                rows.append(
                    {
                        "asset": asset,
                        "episode": int(ep_of[i]),
                        "signal": signals[i],
                        "first": bool(first_of[i]),
                        "horizon": h,
                        "ref_time": times[ref[i]],
                        "ref_close": float(close.iloc[ref[i]]),
                        "end_time": times[end[i]],
                        "end_close": float(close.iloc[end[i]]),
                        "return": float(ret[i]),
                    }
                )
            days = all_days_series(close, h)
            forward[asset, h] = (np.where(ok, ret, np.nan), days)
            summary.append(_summarise(asset, h, ret, ep_of, first_of & ok, assigned & ok, days.to_numpy(), st))
    names = list(frames)
    members = [a for a in (basket or []) if a in frames]
    if len(members) >= 2:
        names.append(BASKET)
        for h in st.horizons:
            ret = np.vstack([forward[a, h][0] for a in members])
            have = ~np.isnan(ret)
            with np.errstate(invalid="ignore"):
                mean = np.where(have.any(axis=0), np.nansum(ret, axis=0) / np.maximum(have.sum(axis=0), 1), np.nan)
            ok = ~np.isnan(mean)
            for i in np.flatnonzero(ok):
                rows.append(
                    {
                        "asset": BASKET,
                        "episode": int(ep_of[i]),
                        "signal": signals[i],
                        "first": bool(first_of[i]),
                        "horizon": h,
                        "ref_time": pd.NaT,
                        "ref_close": math.nan,
                        "end_time": pd.NaT,
                        "end_close": math.nan,
                        "return": float(mean[i]),
                        "coins": int(have[:, i].sum()),
                    }
                )
            days = pd.concat([forward[a, h][1] for a in members], axis=1).mean(axis=1).dropna()
            summary.append(_summarise(BASKET, h, mean, ep_of, first_of & ok, assigned & ok, days.to_numpy(), st))
    cols = ["asset", "episode", "signal", "first", "horizon", "ref_time", "ref_close", "end_time", "end_close",
            "return", "coins"]  # fmt: skip
    returns = pd.DataFrame(rows, columns=cols)
    notes = []
    late = [e for e in sorted(early) if (ep_of == e).any()]
    if late:
        notes.append(
            f"episode(s) {', '.join(map(str, late))} began before the data ({data_start:%Y-%m-%d}): their signals "
            "count in 'every signal' but they give no first-signal (episode) return"
        )
    before = int((ep_of == 0).sum())
    if before:
        notes.append(f"{before} signal(s) before the first episode start are not in any episode")
    return EventStudy(
        name=name,
        index_symbol=index_symbol,
        settings=st,
        assets=names,
        episodes=eps,
        signals=sig,
        returns=returns,
        summary=pd.DataFrame(summary),
        sessions=sessions,
        prices=prices,
        notes=notes,
    )


def _summarise(
    asset: str,
    h: int,
    ret: np.ndarray,
    ep_of: np.ndarray,
    first: np.ndarray,
    pooled: np.ndarray,
    days: np.ndarray,
    st: EventSettings,
) -> dict:
    """One summary row: episode, every-signal and all-days statistics of the ``h``-day return."""
    ep_values = ret[first]
    # every signal day, clustered by episode for the bootstrap
    eps_p = ep_of[pooled]
    uniq, inv = np.unique(eps_p, return_inverse=True)
    sums = np.bincount(inv, weights=ret[pooled], minlength=len(uniq)) if len(uniq) else np.zeros(0)
    counts = np.bincount(inv, minlength=len(uniq)).astype("float64") if len(uniq) else np.zeros(0)
    b = st.bootstrap
    ep_draws = episode_bootstrap(ep_values, np.ones(len(ep_values)), b, seeded_rng(st.seed, asset, h, 1))
    sig_draws = episode_bootstrap(sums, counts, b, seeded_rng(st.seed, asset, h, 2))
    day_draws = block_bootstrap(days, h, b, seeded_rng(st.seed, asset, h, 3))
    lo, hi = interval(ep_draws, st.confidence) if len(ep_values) >= MIN_EPISODES else (math.nan, math.nan)
    slo, shi = interval(sig_draws, st.confidence) if len(uniq) >= MIN_EPISODES else (math.nan, math.nan)
    alo, ahi = interval(day_draws, st.confidence)
    mean = float(ep_values.mean()) if len(ep_values) else math.nan
    all_mean = float(days.mean()) if len(days) else math.nan
    xlo, xhi = interval(ep_draws - day_draws, st.confidence) if len(ep_values) >= MIN_EPISODES else (math.nan, math.nan)
    return {
        "asset": asset,
        "horizon": h,
        "episodes": len(ep_values),
        "mean": mean,
        "median": float(np.median(ep_values)) if len(ep_values) else math.nan,
        "hit_rate": float((ep_values > 0).mean()) if len(ep_values) else math.nan,
        "ci_low": lo,
        "ci_high": hi,
        "signals": int(pooled.sum()),
        "signals_mean": float(ret[pooled].mean()) if pooled.any() else math.nan,
        "signals_ci_low": slo,
        "signals_ci_high": shi,
        "days": len(days),
        "all_mean": all_mean,
        "all_median": float(np.median(days)) if len(days) else math.nan,
        "all_hit_rate": float((days > 0).mean()) if len(days) else math.nan,
        "all_ci_low": alo,
        "all_ci_high": ahi,
        "excess": mean - all_mean,
        "excess_ci_low": xlo,
        "excess_ci_high": xhi,
        "block": h,
    }


def _cut(frame: pd.DataFrame, start: str | None, end: str | None) -> pd.DataFrame:
    attrs = dict(frame.attrs)
    if start:
        frame = frame[frame.index >= pd.Timestamp(start, tz="UTC")]
    if end:
        frame = frame[frame.index < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)]
    frame.attrs = attrs
    return frame


def event_study(
    config: RunConfig,
    settings: EventSettings | None = None,
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
) -> EventStudy:
    """The event study of a config: its index's episodes, its entry rule's signals, its targets (+ extra coins)."""
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.runner import prepare

    st = settings or settings_from(config)
    sessions, bars, assets, _ = prepare(config, cache, announce)
    d, tf = config.data, config.data["timeframe"]
    if timeframe_delta(tf) != pd.Timedelta(days=1):
        raise ConfigError(f"{config.source}: the event study needs daily bars, not {tf}")
    frames = {}
    for sym, frame in assets.items():
        own = frame.dropna(subset=["close"])
        own.attrs.update(timeframe=tf)
        frames[sym] = own
    for sym in st.assets:
        if sym in frames:
            continue
        frame = _cut(load(sym, tf, cache=cache, announce=announce), d["start"], d["end"])
        if len(frame) < 2:
            raise DataError(
                f"{sym} has fewer than two bars between {d['start'] or 'the start'} and {d['end'] or 'the end'}"
            )
        frames[sym] = frame
    return study(
        sessions,
        signal_sessions(bars),
        frames,
        lag=d["publication_lag_hours"],
        settings=st,
        name=config.name,
        index_symbol=d["index"],
        basket=list(assets) if len(assets) >= 2 else None,
    )


def shown_episodes(study: EventStudy) -> pd.DataFrame:
    """Episodes that overlap the studied coins' data (earlier ones have no returns to show)."""
    eps = study.episodes
    if eps.empty or not study.prices:
        return eps
    first = min(p.index[0] for p in study.prices.values()).tz_convert("UTC").tz_localize(None)
    return eps[pd.to_datetime(eps["end"]) >= first]
