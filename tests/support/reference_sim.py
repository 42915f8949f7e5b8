"""Independent reference backtest of "index confirmed new high -> long crypto" (one coin, a basket, top-k).

Written from DESIGN.md §4-§6 alone, with pandas, numpy and pandas_market_calendars only (nothing from
``feeds``, ``strategies`` or ``riskon``), so that tests can check the backtrader strategy against it to
1e-9. It is deliberately plain: the index signal is a loop over sessions, the strategy a loop over
crypto bars.

Public API
----------
``simulate(index_csv, crypto_csv, params) -> (trades, equity)``: the backtest on one file; the same as
``simulate_multi(index_csv, [crypto_csv], params)``.
``simulate_multi(index_csv, crypto_csvs, params) -> (trades, equity)``: the backtest on several target
files (``mode`` = ``"single"`` (exactly one file), ``"basket"`` or ``"top_k"``). ``trades`` has one row
per leg: ``LEG_COLUMNS`` = ``position`` (0-based entry counter), ``asset`` (the file stem, e.g.
``binance_ETH-USDT_1d``), then the 13 ``TRADE_COLUMNS``; sorted by (position, list order of the file).
``equity`` is indexed by the master bar open (UTC).
``index_signal(index_csv, params) -> DataFrame``: per index session, its close stamp, close, all-time
high, break level, break flag and confirmation (used by the tests and handy for debugging).
``crypto_view(index_csv, crypto_csv, params) -> DataFrame``: per crypto bar of the backtest window,
the index session it sees and whether a new confirming session became visible (the event).

Choices made where DESIGN.md and the brief are silent (keep the backtrader side in step):
- A session that confirms several breaks at once (only possible with ``confirm="weekly"``) carries the
  break level ``B`` of the *earliest* break it confirms. ``H`` never falls, so that is also the lowest
  of those levels. It only matters for ``index_exit_below_break``.
- Weekly: a session is week-ending when the next NYSE session (from the calendar, so the last session
  in the file is judged too) falls in a later ISO week (``(iso_year, iso_week)`` differs). A break whose
  week has not ended by the last session in the file is never confirmed.
- ``confirm_days = k``: a break whose window would run past the last session is never confirmed.
- Exit options are disabled by ``None`` only. Any number, 0 included, is active (``max_hold_days=0``
  exits at the close of the fill bar; ``trail=0`` exits on any close below the peak).
- Cooldown and the "flat, nothing pending" test are applied on the bar that sees the event. The entry
  decision then happens ``signal_delay`` bars later, whatever happens in between (events seen while
  an entry is pending are lost).
- Calendar-day differences (``max_hold_days``, ``cooldown_days``) are ``(bar_open - fill_bar_open).days``.
- A bar that sees no index session yet is kept: it cannot signal, and the index exits cannot fire on it.
- The index CSV is always read whole (the all-time high uses the full history). ``start``/``end`` cut
  only the crypto bars; the first bar on/after ``start`` sees only the session it carries.

Several targets (the lead's spec, followed to the letter; the strategy works on master bars):
- Master calendar: every UTC day from the earliest first bar among the files to the latest last bar,
  both clipped to ``start``/``end``. Each file must be gap-free; a file with no bar in the window is
  allowed (it is never eligible) as long as one file has bars.
- A position is a set of legs bought together. At each master bar's close, in order: (a) data end: a
  held leg whose coin's last bar is this bar (and this is not the last master bar) is sold at that
  close, no slippage, with the fee (exit_reason ``data_end``, exit decision = exit time = this bar);
  when no leg is left the position is closed here (cooldown counts from this bar, events on this bar
  are still ignored). (b) exits on the position value PV = sum of held legs' size*close + proceeds of
  the legs already sold by data end; cost = sum over all legs of size*entry price; peak of PV from the
  fill bar's close on. First reason in this order: ``trail`` PV < peak*(1-trail), ``stop``
  PV < cost*(1-stop), ``take_profit`` PV > cost*(1+take_profit), ``max_hold``, ``index_dd``,
  ``index_break``; all held legs sell at the next open. (c) events as for one coin. (d) an entry decision
  takes the eligible coins (a bar on this bar and on the next; top_k also a bar ``momentum_days`` master
  bars back, ranked by close/close_back - 1 descending, ties by list order, first ``k``); none eligible:
  the decision is dropped. Each of the n coins gets budget/n, budget = fraction * equity (= cash).
- top_k: the momentum look-back bar must lie on the master calendar, i.e. on or after ``start``: data
  before ``start`` is never used (a decision within ``momentum_days`` of the window's first bar has no
  eligible coin and is dropped).
- Leg rows of one position are processed (cash arithmetic) in list order; the PV sums legs in list
  order, then adds the data-end proceeds in list order.
- For one coin these rules are the one-coin rules above: PV = size*close, so the trail, stop and take
  profit compare size*close with size*peak close / size*entry price (equal to the per-price comparison
  except for last-bit rounding).
- A file listed twice (same stem) is an error.

Cash and sizing (issue 18; from the convention text of ``strategies/cash.py`` and the sizing spec):
- ``cash_rate``: an annual effective rate, a number or a Series of annual fractions indexed by tz-aware
  UTC known-at stamps. Bar t uses the last value known at its open (stamp <= open). One unit of cash
  held through bar t grows by ``(1 + r) ** (days / 365)``, ``days`` = calendar days to the next master
  bar's open (the last bar: one day). The interest is added at the bar's close, on the cash after the
  bar's opening fills, before the close's data-end sales and decisions.
- ``sizing = "fraction"``: budget = fraction * equity at the decision close. ``"notional"``: budget =
  min(notional, equity). ``"vol_target"``: budget = min(vol_cap, vol_target / vol) * equity (vol_cap when
  vol is 0), vol = sample std (ddof 1) of the equal-weight basket's daily simple returns over the
  ``vol_lookback`` returns ending at the decision close (the chosen coins' closes from ``vol_lookback``
  bars back), times sqrt(365); a chosen coin without that close drops the decision. Each chosen coin
  gets budget / n.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pandas_market_calendars as mcal

DEFAULTS: dict = {
    "threshold": 0.0,
    "confirm_days": 1,
    "confirm": None,  # None / "days": use confirm_days; "weekly": weekly confirmation
    "signal_delay": 0,
    "cooldown_days": 0,
    "lag_hours": 0.0,
    "trail": None,
    "max_hold_days": None,
    "index_exit_dd": None,
    "index_exit_below_break": False,
    "fee": 0.0,
    "slippage": 0.0,
    "fraction": 1.0,
    "cash": 100000.0,
    "start": None,
    "end": None,
    "mode": "single",  # "single" (exactly one file), "basket" or "top_k"
    "k": 3,  # top_k: number of coins
    "momentum_days": 30,  # top_k: look-back in master bars (= calendar days)
    "stop": None,  # fixed stop: exit when PV < cost * (1 - stop)
    "take_profit": None,  # exit when PV > cost * (1 + take_profit)
    "cash_rate": 0.0,  # annual rate on idle cash: a number or a Series (UTC known-at index)
    "sizing": "fraction",  # "fraction", "vol_target" or "notional"
    "vol_target": None,
    "vol_lookback": 30,
    "vol_cap": 1.0,
    "notional": None,
}

TRADE_COLUMNS = [
    "signal_session",
    "decision_time",
    "entry_time",
    "entry_price",
    "size",
    "entry_fee",
    "exit_decision_time",
    "exit_time",
    "exit_price",
    "exit_fee",
    "pnl",
    "exit_reason",
    "open",
]
LEG_COLUMNS = ["position", "asset", *TRADE_COLUMNS]
MODES = ("single", "basket", "top_k")

US = "datetime64[us]"
US_UTC = "datetime64[us, UTC]"
DAY_US = 86_400_000_000


# --------------------------------------------------------------------------------------------- params
def _params(params: dict | None) -> dict:
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown params {unknown}; valid: {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    if p["confirm"] not in (None, "days", "daily", "weekly"):
        raise ValueError(f"confirm must be None, 'days' or 'weekly', got {p['confirm']!r}")
    if int(p["confirm_days"]) != p["confirm_days"] or p["confirm_days"] < 1:
        raise ValueError(f"confirm_days must be an int >= 1, got {p['confirm_days']!r}")
    if int(p["signal_delay"]) != p["signal_delay"] or p["signal_delay"] < 0:
        raise ValueError(f"signal_delay must be an int >= 0, got {p['signal_delay']!r}")
    if p["cooldown_days"] < 0:
        raise ValueError(f"cooldown_days must be >= 0, got {p['cooldown_days']!r}")
    if not 0 < p["fraction"] <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {p['fraction']!r}")
    if p["sizing"] not in ("fraction", "vol_target", "notional"):
        raise ValueError(f"sizing must be fraction, vol_target or notional, got {p['sizing']!r}")
    if p["mode"] not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {p['mode']!r}")
    for key in ("k", "momentum_days"):
        if isinstance(p[key], bool) or int(p[key]) != p[key] or p[key] < 1:
            raise ValueError(f"{key} must be an int >= 1, got {p[key]!r}")
    for key in ("trail", "stop", "take_profit", "index_exit_dd", "max_hold_days"):
        if p[key] is not None and not p[key] >= 0:
            raise ValueError(f"{key} must be None or >= 0, got {p[key]!r}")
    p["confirm_days"] = int(p["confirm_days"])
    p["signal_delay"] = int(p["signal_delay"])
    p["k"] = int(p["k"])
    p["momentum_days"] = int(p["momentum_days"])
    return p


# ----------------------------------------------------------------------------------------------- data
def _read_daily(path: str) -> pd.DataFrame:
    """Yahoo-style ``Date,Open,High,Low,Close,...`` (or ccxt ``timestamp`` in ms) -> date, open, close."""
    raw = pd.read_csv(path)
    cols = {c.lower().replace(" ", "_"): c for c in raw.columns}
    if "date" in cols:
        date = pd.to_datetime(raw[cols["date"]], format="%Y-%m-%d").astype(US)
    elif "timestamp" in cols:
        date = pd.to_datetime(raw[cols["timestamp"]].astype("int64"), unit="ms").astype(US)
    else:
        raise ValueError(f"{path}: no Date or timestamp column")
    out = pd.DataFrame(
        {
            "date": date.to_numpy(),
            "open": raw[cols["open"]].astype("float64").to_numpy(),
            "close": raw[cols["close"]].astype("float64").to_numpy(),
        }
    )
    if not out["date"].is_monotonic_increasing or out["date"].duplicated().any():
        raise ValueError(f"{path}: dates not strictly increasing")
    return out


@lru_cache(maxsize=8)
def _nyse_schedule(first: str, last: str) -> pd.DataFrame:
    with warnings.catch_warnings():  # the calendar library itself uses accessors pandas 3 deprecates
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        sched = mcal.get_calendar("NYSE").schedule(start_date=first, end_date=last)
    sched.index = pd.DatetimeIndex(sched.index).astype(US)
    return pd.DataFrame({"close": sched["market_close"].astype(US_UTC)}, index=sched.index)


def _sessions(dates: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Close stamps (int64 µs since epoch, UTC) and week-ending flags of index session dates."""
    first = dates.iloc[0].strftime("%Y-%m-%d")
    last = (dates.iloc[-1] + pd.Timedelta(days=21)).strftime("%Y-%m-%d")
    sched = _nyse_schedule(first, last)
    idx = pd.DatetimeIndex(dates)
    pos = sched.index.get_indexer(idx)
    if (pos < 0).any():
        bad = idx[pos < 0][:5].strftime("%Y-%m-%d").tolist()
        raise ValueError(f"index dates not in the NYSE calendar: {bad}")
    close_us = sched["close"].dt.tz_convert(None).to_numpy().astype("int64")[pos]
    iso = sched.index.isocalendar()
    week = iso["year"].to_numpy().astype("int64") * 100 + iso["week"].to_numpy().astype("int64")
    # next calendar session exists for every data session (the schedule runs 3 weeks past the file)
    week_end = week[pos] != week[pos + 1]
    return close_us, week_end


# --------------------------------------------------------------------------------------------- signal
def _index_signal(index_csv: str, threshold: float, confirm_days: int, weekly: bool) -> pd.DataFrame:
    df = _read_daily(index_csv)
    close = df["close"].to_numpy()
    n = len(close)
    close_us, week_end = _sessions(df["date"])

    ath = np.maximum.accumulate(close)  # highest close up to and including the session
    prior_high = np.full(n, np.nan)  # H(t): highest close strictly before t
    prior_high[1:] = ath[:-1]
    level = prior_high * (1.0 + threshold)  # B(t)
    is_break = np.zeros(n, dtype=bool)
    is_break[1:] = close[1:] > level[1:]

    confirm = np.zeros(n, dtype=bool)
    confirm_level = np.full(n, np.nan)  # B of the earliest break confirmed at that session
    for b in np.flatnonzero(is_break):
        B = level[b]
        s = b
        if weekly:
            confirmed_at = -1
            while s < n:
                if not close[s] > B:
                    break  # void
                if week_end[s]:
                    confirmed_at = s
                    break
                s += 1
        else:
            end = b + confirm_days - 1
            confirmed_at = end if end < n and bool(np.all(close[b : end + 1] > B)) else -1
        if confirmed_at >= 0:
            if not confirm[confirmed_at]:  # breaks are visited in order: first one = earliest
                confirm_level[confirmed_at] = B
            confirm[confirmed_at] = True

    return pd.DataFrame(
        {
            "close_stamp": pd.to_datetime(close_us, unit="us", utc=True).astype(US_UTC),
            "close": close,
            "ath": ath,
            "prior_high": prior_high,
            "level": level,
            "is_break": is_break,
            "week_end": week_end,
            "confirm": confirm,
            "confirm_level": confirm_level,
        },
        index=pd.DatetimeIndex(df["date"], name="session"),
    )


def index_signal(index_csv: str, params: dict | None = None) -> pd.DataFrame:
    """Per index session (tz-naive date index): close stamp, close, ath, H, B, break, confirmation."""
    p = _params(params)
    return _index_signal(str(index_csv), float(p["threshold"]), p["confirm_days"], p["confirm"] == "weekly")


def _crypto_window(crypto_csv: str, start, end) -> pd.DataFrame:
    cry = _read_daily(crypto_csv)
    gaps = np.diff(cry["date"].to_numpy().astype("int64"))
    if len(gaps) and (gaps != DAY_US).any():
        raise ValueError(f"{crypto_csv}: crypto bars must be consecutive daily bars")
    if start is not None:
        cry = cry[cry["date"] >= pd.Timestamp(start)]
    if end is not None:
        cry = cry[cry["date"] <= pd.Timestamp(end)]
    if cry.empty:
        raise ValueError(f"{crypto_csv}: no bars between start={start} and end={end}")
    return cry.reset_index(drop=True)


def _view(sig: pd.DataFrame, cry: pd.DataFrame, lag_hours: float) -> pd.DataFrame:
    """As-of join plus the event: per crypto bar, the session it sees and any newly visible confirmation."""
    sess_close = sig["close_stamp"].dt.tz_convert(None).to_numpy().astype("int64")
    bar_close = cry["date"].to_numpy().astype("int64") + DAY_US  # crypto close stamp = open + 1 day
    lag_us = int(round(float(lag_hours) * 3_600_000_000))
    seen = np.searchsorted(sess_close, bar_close - lag_us, side="right") - 1  # -1: sees nothing yet

    confirm = sig["confirm"].to_numpy()
    # last_conf[i] = position of the latest confirming session at or before session i (-1 if none)
    last_conf = np.where(confirm, np.arange(len(confirm)), -1)
    last_conf = np.maximum.accumulate(last_conf)

    m = len(cry)
    event = np.zeros(m, dtype=bool)
    event_session = np.full(m, -1, dtype=np.int64)
    for t in range(m):
        j = seen[t]
        if j < 0:
            continue
        prev = seen[t - 1] if t > 0 else j - 1  # the first bar sees only the session it carries
        lc = last_conf[j]
        if lc > prev:  # a confirming session in prev+1..j became visible on this bar
            event[t] = True
            event_session[t] = lc  # the latest newly visible confirming session
    return pd.DataFrame({"date": cry["date"].to_numpy(), "seen": seen, "event": event, "event_session": event_session})


def crypto_view(index_csv: str, crypto_csv: str, params: dict | None = None) -> pd.DataFrame:
    """Per crypto bar of the window: date, seen session date, idx_close, idx_ath, event, event session."""
    p = _params(params)
    sig = index_signal(index_csv, p | {"start": None, "end": None})
    cry = _crypto_window(str(crypto_csv), p["start"], p["end"])
    v = _view(sig, cry, p["lag_hours"])
    seen = v["seen"].to_numpy()
    ok = seen >= 0
    sess = np.full(len(v), np.datetime64("NaT"), dtype=US)
    sess[ok] = sig.index.to_numpy()[seen[ok]]
    ev = v["event_session"].to_numpy()
    ev_sess = np.full(len(v), np.datetime64("NaT"), dtype=US)
    ev_sess[ev >= 0] = sig.index.to_numpy()[ev[ev >= 0]]
    return pd.DataFrame(
        {
            "seen_session": sess,
            "idx_close": np.where(ok, sig["close"].to_numpy()[np.maximum(seen, 0)], np.nan),
            "idx_ath": np.where(ok, sig["ath"].to_numpy()[np.maximum(seen, 0)], np.nan),
            "event": v["event"].to_numpy(),
            "event_session": ev_sess,
        },
        index=pd.DatetimeIndex(v["date"]).tz_localize("UTC").astype(US_UTC),
    )


# ------------------------------------------------------------------------------------------- strategy
def _targets(crypto_csvs: list, start, end) -> tuple[list[str], np.ndarray, list[list[float]], list[list[float]], list]:
    """Master calendar and per-coin opens/closes on it (NaN outside a coin's bars) and bar ranges."""
    paths = [str(c) for c in crypto_csvs]
    if not paths:
        raise ValueError("no target files")
    names = [Path(c).stem for c in paths]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"target files listed twice: {dup}")
    frames = []
    for path in paths:
        cry = _read_daily(path)
        gaps = np.diff(cry["date"].to_numpy().astype("int64"))
        if len(gaps) and (gaps != DAY_US).any():
            raise ValueError(f"{path}: crypto bars must be consecutive daily bars")
        if start is not None:
            cry = cry[cry["date"] >= pd.Timestamp(start)]
        if end is not None:
            cry = cry[cry["date"] <= pd.Timestamp(end)]
        frames.append(cry.reset_index(drop=True))
    live = [f for f in frames if len(f)]
    if not live:
        raise ValueError(f"{paths}: no bars between start={start} and end={end}")
    d0 = min(int(f["date"].iloc[0].value // 1000) for f in live) // DAY_US  # first master day number
    d1 = max(int(f["date"].iloc[-1].value // 1000) for f in live) // DAY_US
    days = np.arange(d0, d1 + 1, dtype=np.int64)
    m = len(days)
    opens, closes, ranges = [], [], []
    for f in frames:
        o = np.full(m, np.nan)
        c = np.full(m, np.nan)
        if len(f):
            first = int(f["date"].iloc[0].value // 1000) // DAY_US - d0
            o[first : first + len(f)] = f["open"].to_numpy()
            c[first : first + len(f)] = f["close"].to_numpy()
            ranges.append((first, first + len(f) - 1))
        else:
            ranges.append((m, -1))  # never has a bar
        opens.append(o.tolist())
        closes.append(c.tolist())
    return names, days, opens, closes, ranges


def simulate_multi(index_csv: str, crypto_csvs: list, params: dict) -> tuple[pd.DataFrame, pd.Series]:
    """Run the backtest on one or several targets; returns (trades per leg, equity). See the docstring."""
    p = _params(params)
    crypto_csvs = list(crypto_csvs)
    if p["mode"] == "single" and len(crypto_csvs) != 1:
        raise ValueError(f"mode 'single' needs exactly one target file, got {len(crypto_csvs)}")
    sig = _index_signal(str(index_csv), float(p["threshold"]), p["confirm_days"], p["confirm"] == "weekly")
    names, day_arr, opens, closes, ranges = _targets(crypto_csvs, p["start"], p["end"])
    master = pd.DataFrame({"date": (day_arr * DAY_US).astype(US)})
    view = _view(sig, master, p["lag_hours"])

    fee, slip, frac = float(p["fee"]), float(p["slippage"]), float(p["fraction"])
    sizing, lookback = p["sizing"], int(p["vol_lookback"])
    trail, stop, take = p["trail"], p["stop"], p["take_profit"]
    max_hold, dd = p["max_hold_days"], p["index_exit_dd"]
    below_break, cooldown, delay = bool(p["index_exit_below_break"]), p["cooldown_days"], p["signal_delay"]
    mode, top_k, mom_days = p["mode"], p["k"], p["momentum_days"]

    n_coins = len(names)
    first_bar = [r[0] for r in ranges]
    last_bar = [r[1] for r in ranges]
    day = day_arr.tolist()  # calendar day numbers
    bar_time = pd.DatetimeIndex(master["date"].to_numpy()).tz_localize("UTC").astype(US_UTC)
    seen = view["seen"].tolist()
    event = view["event"].tolist()
    event_session = view["event_session"].tolist()
    idx_close = sig["close"].tolist()
    idx_ath = sig["ath"].tolist()
    conf_level = sig["confirm_level"].tolist()
    sessions = sig.index

    def has(c: int, t: int) -> bool:
        return first_bar[c] <= t <= last_bar[c]

    m = len(day)
    last = m - 1
    cash = float(p["cash"])
    legs: list[dict] = []  # legs of the open position (held or already sold by data end), list order
    pos_info: dict = {}  # entry day, break level, cost, peak of the open position
    n_positions = 0
    trades: list[dict] = []
    pending: dict | None = None  # entry waiting for its decision bar / fill bar
    exit_fill_bar = -1
    last_exit_day: int | None = None
    equity = np.empty(m)
    growth = _growth(bar_time, p["cash_rate"])

    for t in range(m):
        # ---- at the open: fills decided at the previous close
        if t == exit_fill_bar:
            for leg in legs:
                if leg["held"]:
                    price = opens[leg["coin"]][t] * (1.0 - slip)
                    notional = leg["size"] * price
                    cash += notional * (1.0 - fee)
                    leg.update(exit_time=bar_time[t], exit_price=price, exit_fee=notional * fee, open=False, held=False)
            trades.extend(legs)
            legs, pos_info, exit_fill_bar = [], {}, -1
            last_exit_day = day[t]
        if pending is not None and pending.get("fill_bar") == t:
            chosen = pending["chosen"]
            budget = pending["budget"]
            n = len(chosen)
            for c in chosen:  # list order
                price = opens[c][t] * (1.0 + slip)
                size = (budget / n) / (price * (1.0 + fee)) * (1.0 - 1e-9)
                notional = size * price
                cash -= notional * (1.0 + fee)
                legs.append(
                    {
                        "position": n_positions,
                        "asset": names[c],
                        "coin": c,
                        "held": True,
                        "proceeds": 0.0,
                        "signal_session": sessions[pending["session"]],
                        "decision_time": bar_time[pending["decision_bar"]],
                        "entry_time": bar_time[t],
                        "entry_price": price,
                        "size": size,
                        "entry_fee": notional * fee,
                    }
                )
            cost = 0.0
            for leg in legs:
                cost += leg["size"] * leg["entry_price"]
            pos_info = {"entry_day": day[t], "break_level": pending["level"], "cost": cost, "peak": -np.inf}
            n_positions += 1
            pending = None

        # ---- at the close: interest on the cash held through the bar first
        cash += cash * growth[t]
        j = seen[t]
        if legs:  # in position on this bar (the exit-decision bar and a data-end bar included)
            # (a) data end: a held coin whose last bar is this one, unless this is the last master bar
            if t < last:
                for leg in legs:
                    c = leg["coin"]
                    if leg["held"] and last_bar[c] == t:
                        price = closes[c][t]
                        notional = leg["size"] * price
                        proceeds = notional * (1.0 - fee)
                        cash += proceeds
                        leg.update(
                            held=False,
                            proceeds=proceeds,
                            exit_decision_time=bar_time[t],
                            exit_reason="data_end",
                            exit_time=bar_time[t],
                            exit_price=price,
                            exit_fee=notional * fee,
                            open=False,
                        )
                if not any(leg["held"] for leg in legs):
                    trades.extend(legs)
                    legs, pos_info = [], {}
                    last_exit_day = day[t]
            # (b) exits on the position value
            if legs:
                pv = 0.0
                for leg in legs:
                    if leg["held"]:
                        pv += leg["size"] * closes[leg["coin"]][t]
                for leg in legs:
                    if not leg["held"]:
                        pv += leg["proceeds"]
                peak = pos_info["peak"] = max(pos_info["peak"], pv)
                cost = pos_info["cost"]
                reason = None
                if trail is not None and pv < peak * (1.0 - trail):
                    reason = "trail"
                elif stop is not None and pv < cost * (1.0 - stop):
                    reason = "stop"
                elif take is not None and pv > cost * (1.0 + take):
                    reason = "take_profit"
                elif max_hold is not None and day[t] - pos_info["entry_day"] >= max_hold:
                    reason = "max_hold"
                elif dd is not None and j >= 0 and idx_close[j] < idx_ath[j] * (1.0 - dd):
                    reason = "index_dd"
                elif below_break and j >= 0 and idx_close[j] <= pos_info["break_level"]:
                    reason = "index_break"
                if reason is not None and exit_fill_bar < 0 and t < last:
                    exit_fill_bar = t + 1
                    for leg in legs:
                        if leg["held"]:
                            leg.update(exit_decision_time=bar_time[t], exit_reason=reason)
            # events seen while in position (exit-decision and data-end bars included) are ignored
        elif pending is None and event[t]:
            cooling = cooldown > 0 and last_exit_day is not None and day[t] - last_exit_day < cooldown
            if not cooling and t + delay < last:  # a decision on the last bar (or past it) cannot fill
                s = event_session[t]
                pending = {"decision_bar": t + delay, "session": s, "level": conf_level[s]}
        if pending is not None and pending["decision_bar"] == t:
            # (d) entry decision: coins with a bar now and at the next master bar
            eligible = [c for c in range(n_coins) if has(c, t) and has(c, t + 1)]
            if mode == "top_k":
                back = t - mom_days
                eligible = [c for c in eligible if back >= 0 and has(c, back)]
                momentum = {c: closes[c][t] / closes[c][back] - 1.0 for c in eligible}
                ranked = sorted(eligible, key=lambda c: -momentum[c])  # stable: ties keep list order
                eligible = sorted(ranked[:top_k])
            budget = None
            if eligible:  # flat: equity = cash
                if sizing == "notional":
                    budget = min(float(p["notional"]), cash)
                elif sizing == "vol_target" and all(has(c, t - lookback) for c in eligible):
                    window = np.array([closes[c][t - lookback : t + 1] for c in eligible])
                    basket = (window[:, 1:] / window[:, :-1] - 1.0).mean(axis=0)
                    vol = float(np.std(basket, ddof=1)) * np.sqrt(365.0)
                    budget = (min(p["vol_cap"], p["vol_target"] / vol) if vol > 0 else p["vol_cap"]) * cash
                elif sizing == "fraction":
                    budget = frac * cash
            if budget is not None:
                pending.update(budget=budget, fill_bar=t + 1, chosen=eligible)
            else:
                pending = None  # dropped: stays flat, later events can be taken

        eq = cash
        for leg in legs:
            if leg["held"]:
                eq += leg["size"] * closes[leg["coin"]][t]
        equity[t] = eq

    for leg in legs:  # legs still held on the last bar: marked at that close, no fee
        if leg["held"]:
            leg.update(
                exit_decision_time=pd.NaT,
                exit_time=bar_time[last],
                exit_price=closes[leg["coin"]][last],
                exit_fee=0.0,
                exit_reason="open",
                open=True,
            )
    trades.extend(legs)

    rows = []
    for tr in sorted(trades, key=lambda leg: (leg["position"], leg["coin"])):
        pnl = tr["size"] * tr["exit_price"] - tr["exit_fee"] - tr["size"] * tr["entry_price"] - tr["entry_fee"]
        rows.append({c: tr[c] for c in LEG_COLUMNS if c != "pnl"} | {"pnl": pnl})
    out = pd.DataFrame(rows, columns=LEG_COLUMNS)
    out["position"] = out["position"].astype("int64")
    out["asset"] = out["asset"].astype(object)
    out["signal_session"] = pd.to_datetime(out["signal_session"]).astype(US)
    for c in ("decision_time", "entry_time", "exit_decision_time", "exit_time"):
        out[c] = pd.to_datetime(out[c], utc=True).astype(US_UTC)
    for c in ("entry_price", "size", "entry_fee", "exit_price", "exit_fee", "pnl"):
        out[c] = out[c].astype("float64")
    out["exit_reason"] = out["exit_reason"].astype(object)
    out["open"] = out["open"].astype(bool)
    return out, pd.Series(equity, index=bar_time, name="equity")


def _growth(bar_time: pd.DatetimeIndex, rate) -> np.ndarray:
    """What one unit of cash earns through each master bar (see the module docstring)."""
    opens = bar_time.as_unit("us").asi8
    days = np.append(np.diff(opens), DAY_US) / DAY_US
    if isinstance(rate, pd.Series):
        stamps = rate.index.as_unit("us").asi8
        at = np.searchsorted(stamps, opens, side="right") - 1
        if (at < 0).any():
            raise ValueError("the cash rate series starts after the first bar")
        r = rate.to_numpy(dtype="float64")[at]
    else:
        r = np.full(len(opens), float(rate))
    return (1.0 + r) ** (days / 365.0) - 1.0


def simulate(index_csv: str, crypto_csv: str, params: dict) -> tuple[pd.DataFrame, pd.Series]:
    """Run the backtest on one target file; the same as ``simulate_multi(index_csv, [crypto_csv], params)``."""
    return simulate_multi(index_csv, [crypto_csv], params)


__all__ = ["DEFAULTS", "LEG_COLUMNS", "TRADE_COLUMNS", "crypto_view", "index_signal", "simulate", "simulate_multi"]


if __name__ == "__main__":  # pragma: no cover - quick manual look
    import sys
    import time

    t0 = time.perf_counter()
    tr, eq = simulate(sys.argv[1], sys.argv[2], {"fee": 0.001, "slippage": 0.0005, "max_hold_days": 30})
    print(tr.to_string(), eq.iloc[-1], f"{time.perf_counter() - t0:.3f}s", sep="\n")
