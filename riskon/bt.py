"""riskon as a backtrader plugin: the combined feed, the rule signals, the strategy and the tear sheet.

``import riskon.bt`` is all a backtrader script needs (it activates riskon's compatibility shim, so
``cerebro.optstrategy`` works on Python 3.11+, whatever was imported first)::

    import backtrader as bt
    import riskon.bt as rbt

    cerebro = bt.Cerebro()
    cerebro.adddata(rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD"))
    cerebro.addstrategy(rbt.RiskOn, rule="ath_confirmed", confirm_days=3, trailing_stop=0.25,
                        index_drawdown=0.10, fee_bps=10, slippage_bps=5)
    cerebro.addanalyzer(rbt.QuantStatsAnalyzer, path="reports/seed_bt/tearsheet.html")
    cerebro.broker.setcash(100_000)
    strategy = cerebro.run()[0]

gives the trades and equity of ``riskon run runs/seed.toml``. ``IndexCryptoFeed`` is a backtrader
data feed whose index lines are aligned exactly as in a run (``riskon.runner.prepare``: the same
code); ``RuleSignal``/``ConfirmedHigh`` are indicators for any strategy; ``QuantStatsAnalyzer``
writes riskon's corrected tear sheet for any strategy. The guide is ``docs/guides/backtrader.md``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

import riskon.config as config_mod
from feeds.btcompat import bt
from feeds.btfeed import ArrayCryptoData, feed_frame
from riskon.config import ConfigError
from riskon.given import given_frames
from riskon.metrics import PERIODS, returns_metrics
from riskon.pages.tearsheet import write_returns_tearsheet
from riskon.runner import prepare
from strategies.btindicators import ConfirmedHigh, RuleSignal
from strategies.btsetup import SetupError
from strategies.strategy import RiskOn

__all__ = ["ConfirmedHigh", "IndexCryptoFeed", "QuantStatsAnalyzer", "RiskOn", "RuleSignal", "SetupError", "bt"]

#: Columns of the aligned bars the feed keeps (the rule events of a run are computed by the indicators).
_ALIGNED = ("open", "high", "low", "close", "volume", "idx_close", "idx_ath", "idx_week_end", "idx_session",
            "idx_pos", "idx_age")  # fmt: skip
#: Periods a year of a trading-day (five-day) calendar.
TRADING_DAYS = 252


def _date_text(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    try:
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    except (ValueError, TypeError):
        raise ConfigError(f"IndexCryptoFeed: {what} must be a date (YYYY-MM-DD), got {value!r}") from None


class IndexCryptoFeed(ArrayCryptoData):
    """A crypto (or any asset's) daily OHLCV feed with the index lines a ``riskon run`` aligns onto it.

    ``index`` and ``asset`` are symbols read from riskon's cache (filled from ``RISKON_DATA`` on first
    use), or DataFrames you already have, validated exactly as an import of ``index_symbol`` /
    ``asset_symbol`` is (a frame from ``riskon.load`` names itself). Lines beside OHLCV:
    ``idx_close`` and ``idx_ath`` (the index close and all-time high seen, the high over the index's
    full history), ``idx_age`` (days from that index close to the bar's close), ``idx_session`` (the
    session seen, as backtrader's ``date2num``: ``bt.num2date(d.idx_session[0]).date()``; NaN before
    the first) and ``t_days`` (the bar's open in days since 1970). ``start``/``end`` cut the traded
    bars only; the index keeps its full history (``feed.sessions``) for the indicators.
    """

    params = (
        ("index", "^RUT"),  # index symbol, or a DataFrame of its daily bars
        ("asset", "BTC-USD"),  # traded symbol, or a DataFrame of its daily bars
        ("index_symbol", "^RUT"),  # what an index DataFrame without attrs["symbol"] is (time zone, checks)
        ("asset_symbol", "BTC-USD"),  # what an asset DataFrame without attrs["symbol"] is
        ("start", None),  # first traded bar date (YYYY-MM-DD); None: the asset's first bar
        ("end", None),  # last traded bar date, inclusive; None: the asset's last bar
        ("publication_lag_hours", 0.0),  # hours after the index close before a bar may see it
        ("index_price", "close"),  # index column the lines and rules use: close or adj_close
        ("cache", None),  # a feeds.cache.Cache (default: RISKON_CACHE)
    )

    def __init__(self) -> None:
        p = self.p
        if p.fromdate is not None or p.todate is not None:
            raise ConfigError("IndexCryptoFeed: use start/end, not fromdate/todate (those would cut bars away "
                              "from under the index lines)")  # fmt: skip
        index_sym, index_df = _named(p.index, p.index_symbol, "index")
        asset_sym, asset_df = _named(p.asset, p.asset_symbol, "asset")
        data = {"index": index_sym, "asset": asset_sym, "start": _date_text(p.start, "start"),
                "end": _date_text(p.end, "end"), "publication_lag_hours": p.publication_lag_hours,
                "index_price": p.index_price}  # fmt: skip
        cfg = config_mod.parse({"name": "feed", "data": data}, "IndexCryptoFeed")
        given = given_frames(cfg, index=index_df, asset=asset_df)
        sessions, bars, assets, fingerprints = prepare(cfg, cache=p.cache, given=given)
        self.symbols = {"index": index_sym, "asset": asset_sym}
        self.fingerprints = fingerprints
        self.sessions = sessions[["idx_close", "idx_ath", "idx_week_end", "idx_close_time"]]
        self.aligned = bars[list(_ALIGNED)]
        self.aligned.attrs = dict(bars.attrs)
        p.frame = feed_frame(assets[asset_sym], self.aligned)
        if not p.name:
            p.name = asset_sym
            self._name = asset_sym

    @property
    def index_history(self) -> pd.DataFrame:
        """The index's sessions (full history): ``idx_close``, ``idx_ath``, week ends, close stamps."""
        return self.sessions


def _named(value: Any, default_symbol: str, what: str) -> tuple[str, pd.DataFrame | None]:
    """(symbol, frame or None) of an ``index``/``asset`` argument: a symbol, or a DataFrame and its name."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, pd.DataFrame):
        return str(value.attrs.get("symbol") or default_symbol), value
    raise ConfigError(f"IndexCryptoFeed: {what} must be a symbol or a DataFrame, got {type(value).__name__}")


class QuantStatsAnalyzer(bt.Analyzer):
    """Daily returns of any strategy and riskon's corrected quantstats tear sheet of them.

    Collects the broker's value at every bar's close (from the first bar, warm-up included) as daily
    returns on the first data's calendar, the first against the starting cash, and a benchmark on the
    same dates (default: buy-and-hold of the first data, bought at its first open, no costs). With
    ``path`` it writes the tear sheet there when the run ends: quantstats annualised over 365 periods
    for a 7-day (crypto) calendar, the benchmark aligned to the strategy's dates, offline. On a feed
    without weekend bars (an equity, an ETF) it keeps that feed's own trading-day calendar, annualises
    over 252 periods, and says so in ``note`` and in the tear sheet's title.

    ``get_analysis()``: ``returns`` and ``benchmark`` (Series by date), ``periods``, ``calendar``
    (``"7-day"`` or ``"trading-day"``), ``note`` (None or one line), ``metrics`` (riskon's
    ``returns_metrics``: CAGR, Sharpe, ...; on the 7-day calendar only) and ``path``.
    """

    params = (
        ("path", None),  # write the tear sheet here at the end of the run (None: collect only)
        ("title", None),  # the tear sheet's title (default: strategy and data names)
        ("benchmark", None),  # a Series of daily returns to compare with (aligned by compounding); None: buy-and-hold
    )

    def start(self) -> None:
        """Start from empty lists (an analyzer object serves one run)."""
        self._stamps: list[float] = []
        self._values: list[float] = []
        self._opens: list[float] = []
        self._closes: list[float] = []

    def next(self) -> None:
        """Record the broker's value and the first data's open and close at this bar's close."""
        d0 = self.strategy.datas[0]
        self._stamps.append(d0.datetime[0])
        self._values.append(self.strategy.broker.getvalue())
        self._opens.append(d0.open[0])
        self._closes.append(d0.close[0])

    def stop(self) -> None:
        """Turn the records into daily returns, a benchmark and (with ``path``) the tear sheet."""
        d0 = self.strategy.datas[0]
        name = d0._name or "data0"
        stamps = pd.DatetimeIndex([bt.num2date(x) for x in self._stamps], name="date")
        values = pd.Series(self._values, index=stamps, dtype="float64")
        cash = self.strategy.broker.startingcash
        returns = _daily(values, cash).rename("returns")
        weekend = bool(len(returns)) and bool((returns.index.day_of_week >= 5).any())
        periods = PERIODS if weekend or len(returns) < 3 else TRADING_DAYS
        calendar = "7-day" if periods == PERIODS else "trading-day"
        note = None
        if calendar == "trading-day":
            note = (f"{name} has no weekend bars: returns stay on its own trading-day calendar and are "
                    f"annualised over {TRADING_DAYS} periods, not {PERIODS}")  # fmt: skip
        if self.p.benchmark is None:
            first = self._opens[0] if self._opens else math.nan
            held = pd.Series(self._closes, index=stamps, dtype="float64") / first
            benchmark = _daily(held, 1.0).rename(f"buy & hold {name}")
            bench_text = f"buy-and-hold of {name} from its first open, without costs"
        else:
            benchmark = _aligned(self.p.benchmark, returns.index)
            bench_text = f"{benchmark.name}, compounded onto the strategy's dates"
        self.rets["returns"] = returns
        self.rets["benchmark"] = benchmark
        self.rets["periods"] = periods
        self.rets["calendar"] = calendar
        self.rets["note"] = note
        self.rets["metrics"] = returns_metrics(returns) if calendar == "7-day" else None
        self.rets["path"] = None
        if self.p.path is not None:
            title = self.p.title or f"riskon: {type(self.strategy).__name__} on {name}"
            if note:
                title += f" (trading-day calendar, {TRADING_DAYS} periods a year)"
            self.rets["path"] = write_returns_tearsheet(
                returns, benchmark, Path(self.p.path), title, benchmark_label=str(benchmark.name),
                benchmark_text=bench_text, periods=periods,
            )  # fmt: skip


def _daily(values: pd.Series, start: float) -> pd.Series:
    """Returns per date of a value series (its last value of each date), the first against ``start``."""
    if len(values) and values.index.normalize().has_duplicates:  # intraday bars: the value at each day's last bar
        values = values.groupby(values.index.normalize()).last()
    else:
        values = values.set_axis(values.index.normalize())
    prev = values.shift(1)
    if len(prev):
        prev.iloc[0] = start
    return values / prev - 1.0


def _aligned(benchmark: pd.Series, dates: pd.DatetimeIndex) -> pd.Series:
    """A benchmark's daily returns on ``dates``: compounded over the dates it skips, 0 before it starts."""
    if not isinstance(benchmark, pd.Series):
        raise ConfigError(f"QuantStatsAnalyzer: benchmark must be a pandas Series of returns, got "
                          f"{type(benchmark).__name__}")  # fmt: skip
    b = benchmark.astype("float64")
    index = pd.DatetimeIndex(b.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    wealth = pd.Series((1.0 + b.fillna(0.0).to_numpy()).cumprod(), index=index.normalize().as_unit("us"))
    wealth = wealth[~wealth.index.duplicated(keep="last")]
    dates = dates.as_unit("us")
    union = wealth.index.union(dates)
    full = wealth.reindex(union).ffill().fillna(1.0)  # before the benchmark starts it is flat
    on = full.reindex(dates)
    prev = on.shift(1)
    first = union.get_loc(dates[0]) if len(dates) else 0
    if len(prev):
        prev.iloc[0] = full.iloc[first - 1] if first > 0 else 1.0
    return (on / prev - 1.0).rename(benchmark.name or "benchmark")
