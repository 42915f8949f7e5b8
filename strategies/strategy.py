"""The backtrader strategy: act on rule events, exit on the close, fill at the next open.

One feed per target coin, all on one daily master calendar (rows before a
coin's first bar and after its last are NaN and never traded). Decisions are
made at a bar's close (``next``); fills happen at the next bar's open
(``next_open`` with cheat-on-open), priced and sized exactly as the parity
contract (docs/reference/parity.md) says. backtrader drops a refused order silently, so any
order that ends Margin or Rejected raises and fails the run.

``RiskOn`` is also an ordinary strategy for a user's own ``bt.Cerebro``: on riskon's combined feed
(``riskon.bt.IndexCryptoFeed``) it takes the rule and the run-config names as parameters
(``rule="ath_confirmed", confirm_days=3, trailing_stop=0.25, fee_bps=10``), computes its entry
events itself and sets up the broker for its fills (``strategies.btsetup``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from feeds.btcompat import bt
from strategies.btsetup import SetupError, configure, internal_mode, user_mode
from strategies.cash import run_growth
from strategies.errors import OrderFailed
from strategies.sizing import SIZE_HAIRCUT, basket_volatility, vol_fraction


class RiskOnBroker(bt.brokers.BackBroker):
    """backtrader's broker, plus orders that fill at a given price: a coin's last close.

    Such an order is placed as a Limit at that price (so the cash check prices it
    there, not at the next bar's missing open) and filled at exactly that price,
    without slippage, on the next broker step.
    """

    def _try_exec(self, order):
        price = order.info.get("at_close")
        if price is not None:
            self._execute(order, ago=0, price=price)
            return
        super()._try_exec(order)


class RiskOn(bt.Strategy):
    """Long one coin or a basket on rule events; exits on the position's value, time or the index.

    In a user's Cerebro, on ``riskon.bt.IndexCryptoFeed``: ``rule`` (default ``ath_confirmed``) with the
    rule's parameters as further keywords, and the exits and costs by their run-config names
    (``trailing_stop``, ``stop``, ``take_profit``, ``max_hold_days``, ``index_drawdown``,
    ``index_below_break``, ``fee_bps`` = 10, ``slippage_bps`` = 5, ``signal_delay``, ``cooldown_days``,
    ``fraction``, the sizing rule (``sizing``, ``vol_target``, ``vol_lookback``, ``vol_cap``, ``notional``) and
    ``cash_rate`` (a constant or a yield series)): the same trades and equity as ``riskon run`` of that config.
    """

    params = (
        ("rule", None),  # entry rule by name (IndexCryptoFeed; default ath_confirmed); None on riskon's own feeds
        ("trailing_stop", None),  # IndexCryptoFeed: the config's exits.trailing_stop (sets trail)
        ("index_drawdown", None),  # IndexCryptoFeed: the config's exits.index_drawdown (sets index_exit_dd)
        ("index_below_break", False),  # IndexCryptoFeed: the config's exits.index_below_break
        ("fee_bps", 10.0),  # IndexCryptoFeed: basis points of notional per fill (sets fee)
        ("slippage_bps", 5.0),  # IndexCryptoFeed: basis points against the open per fill (sets slippage)
        ("signal_delay", 0),  # whole bars between the bar that sees a signal and the decision
        ("cooldown_days", 0.0),  # calendar days after an exit fill before a new signal is taken
        ("trail", None),  # exit when position value < its peak * (1 - trail)
        ("stop", None),  # exit when position value < cost * (1 - stop)
        ("take_profit", None),  # exit when position value > cost * (1 + take_profit)
        ("max_hold_days", None),  # exit when calendar days since the entry fill reach this
        ("index_exit_dd", None),  # exit when index close < index ATH * (1 - x)
        ("index_exit_below_break", False),  # exit when index close is at or below the broken level
        ("exit_rule", False),  # exit when the composed exit rule's line is true
        ("fraction", 1.0),  # share of equity put into each entry
        ("fee", 0.0),  # fee per fill, fraction of notional
        ("slippage", 0.0),  # fill at open * (1 +/- slippage)
        ("mode", "single"),  # single, basket or top_k
        ("k", 3),  # top_k: coins held
        ("momentum_days", 30),  # top_k: momentum lookback in bars
        ("liquidity_cap", None),  # an entry fill buys at most this fraction of the fill bar's volume
        ("intrabar", False),  # trailing and fixed stops as stop orders inside the next bar (single coin)
        ("spans", None),  # per feed: (first bar, last bar) indices on the master calendar
        ("sizing", "fraction"),  # fraction, vol_target or notional (strategies.sizing)
        ("vol_target", None),  # vol_target: target annual volatility of the position
        ("vol_lookback", 30),  # vol_target: bars of daily returns up to and including the decision bar
        ("vol_cap", 1.0),  # vol_target: the largest share of equity an entry buys
        ("notional", None),  # notional: cash per entry, capped at the equity
        ("cash_rate", 0.0),  # annual rate idle cash earns: a constant or a yield series (strategies.cash)
        ("cash_growth", None),  # riskon's own runs: g_i per bar, computed from the bars (overrides cash_rate)
    )

    def __init__(self, **rule_values: Any) -> None:
        d0 = self.datas[0]
        if getattr(d0, "sessions", None) is not None:  # riskon.bt.IndexCryptoFeed: events computed here
            self.entry_signal = user_mode(self, rule_values)
            self._event_line, self._level_line = self.entry_signal.signal, self.entry_signal.level
        else:  # riskon's own feeds carry the rule's events
            internal_mode(self, rule_values)
            self.entry_signal = None
            self._event_line, self._level_line = d0.event, d0.event_level
        configure(self)
        self.n_bars = self.datas[0].buflen()
        self.spans = self.p.spans or [(0, self.n_bars - 1)] * len(self.datas)
        self._growth = self.p.cash_growth if self.p.cash_growth is not None else self._feed_growth()
        self.n_skipped = 0  # vol_target entries skipped for lack of history
        self.n_capped = 0  # notional entries capped at the equity
        self.fills: list[dict] = []
        self.equity: list[float] = []
        self.cash_path: list[float] = []
        self.decisions: list[dict] = []
        self.log: list[str] = []
        self._decide_at: int | None = None  # bar index of a pending entry decision
        self._pending_event: tuple[int, float] | None = None
        self._entry: dict | None = None  # decided entry: equity and chosen feeds, filled at the next open
        self._exit_reason: str | None = None
        self._exit_bar = -1
        self._stop_order = None  # intrabar stop order working in the next bar
        self._legs: dict[int, float] = {}  # feed index -> size held
        self._cost = 0.0
        self._ended_proceeds = 0.0
        self._peak = -math.inf
        self._entry_level = math.nan
        self._entry_day = math.nan
        self._last_exit_day: float | None = None
        self._position_id = -1

    # -- fills -------------------------------------------------------------------------
    def next_open(self) -> None:
        """At the open: fill the exit or the entry decided at the previous close."""
        if self._exit_reason is not None:
            self._cancel_stop()
            for j, size in self._legs.items():
                self.sell(data=self.datas[j], size=size, exectype=bt.Order.Market)
        if self._entry is not None:
            budget = self._entry["budget"] / len(self._entry["feeds"])
            chosen = self._entry["feeds"]
            for j in chosen:
                d = self.datas[j]
                price = d.open[0] * (1.0 + self.p.slippage)
                size = budget / (price * (1.0 + self.p.fee)) * (1.0 - SIZE_HAIRCUT)
                if self.p.liquidity_cap is not None:
                    cap = self.p.liquidity_cap * d.volume[0]
                    if size > cap:
                        self.log.append(
                            f"{d._name}: entry capped at {cap:g} units ({self.p.liquidity_cap:g} of volume)"
                        )
                        size = cap
                if size > 0:
                    self.buy(data=d, size=size, exectype=bt.Order.Market, price=price)
            self._entry = None

    def notify_order(self, order) -> None:
        """Record fills; fail the run on any refused order."""
        if order.status in (order.Margin, order.Rejected):
            raise OrderFailed(
                f"backtrader refused a {'buy' if order.isbuy() else 'sell'} of {order.created.size:g} "
                f"{order.data._name} on {self.datas[0].datetime.date(0)} ({order.getstatusname()}); the run is invalid"
            )
        if order.status != order.Completed:
            return
        j = self.datas.index(order.data)
        at_close = order.info.get("at_close") is not None
        bar = len(self.datas[0]) - 1 - (1 if at_close else 0)  # a last-close sale belongs to the previous bar
        fill = {
            "bar": bar,
            "feed": j,
            "position": self._position_id,
            "side": "buy" if order.isbuy() else "sell",
            "price": order.executed.price,
            "size": abs(order.executed.size),
            "fee": order.executed.comm,
        }
        if order.isbuy():
            if not self._legs:
                self._peak = -math.inf
                self._entry_day = self.datas[0].t_days[0]
            self._legs[j] = abs(order.executed.size)
            self._cost += abs(order.executed.size) * order.executed.price
        elif self._stop_order is not None and order.ref == self._stop_order.ref:
            fill["reason"], fill["decision_bar"] = order.info["reason"], order.info["bar"]
            self._stop_order = None
            self._legs.pop(j, None)
            self._last_exit_day = self.datas[0].t_days[0]
        elif not at_close:
            fill["reason"] = self._exit_reason
            fill["decision_bar"] = self._exit_bar
            self._legs.pop(j, None)
            if not self._legs:
                self._exit_reason = None
                self._last_exit_day = self.datas[0].t_days[0]
        else:
            fill["reason"] = "data_end"
            fill["decision_bar"] = bar
        self.fills.append(fill)

    # -- decisions ---------------------------------------------------------------------
    def _close_ended_legs(self, i: int) -> float:
        """Sell legs whose coin has its last bar now at this close; return their proceeds (net of fees)."""
        proceeds = 0.0
        if i == self.n_bars - 1:
            return proceeds
        for j in [j for j in self._legs if self.spans[j][1] == i]:
            d, size = self.datas[j], self._legs.pop(j)
            price = d.close[0]
            self.sell(data=d, size=size, exectype=bt.Order.Limit, price=price, at_close=price)
            proceeds += size * price * (1.0 - self.p.fee)
            self.log.append(f"{d._name}: data ends {d.datetime.date(0)}; sold {size:g} at its last close {price:g}")
            self.decisions.append({"bar": i, "side": "sell", "reason": "data_end", "feed": j})
        if proceeds and not self._legs:
            self._last_exit_day = self.datas[0].t_days[0]
        return proceeds

    def _exit_reason_now(self) -> str | None:
        d0 = self.datas[0]
        value = sum(size * self.datas[j].close[0] for j, size in self._legs.items()) + self._ended_proceeds
        self._peak = max(self._peak, value)
        p = self.p
        if p.trail is not None and not p.intrabar and value < self._peak * (1.0 - p.trail):
            return "trail"
        if p.stop is not None and not p.intrabar and value < self._cost * (1.0 - p.stop):
            return "stop"
        if p.take_profit is not None and value > self._cost * (1.0 + p.take_profit):
            return "take_profit"
        if p.max_hold_days is not None and d0.t_days[0] - self._entry_day >= p.max_hold_days:
            return "max_hold"
        if p.index_exit_dd is not None and d0.idx_close[0] < d0.idx_ath[0] * (1.0 - p.index_exit_dd):
            return "index_dd"
        if p.index_exit_below_break and d0.idx_close[0] <= self._entry_level:
            return "index_break"
        if p.exit_rule and d0.exit_signal[0] > 0:
            return "rule"
        return None

    def _cancel_stop(self) -> None:
        if self._stop_order is not None and self._stop_order.alive():
            self.cancel(self._stop_order)
        self._stop_order = None

    def _place_stop(self, i: int) -> None:
        """Replace the working stop with one at today's level, valid in the next bar only.

        Level: the higher of entry price x (1 - stop) and peak close x (1 - trail);
        backtrader fills it at that level, or at the open when the bar gaps below it.
        """
        self._cancel_stop()
        ((j, size),) = self._legs.items()
        entry = self._cost / size
        levels = []
        if self.p.stop is not None:
            levels.append((entry * (1.0 - self.p.stop), "stop"))
        if self.p.trail is not None:
            levels.append((self._peak / size * (1.0 - self.p.trail), "trail"))
        if not levels:
            return
        level, reason = max(levels)
        self._stop_order = self.sell(
            data=self.datas[j], size=size, exectype=bt.Order.Stop, price=level, reason=f"{reason}_intrabar", bar=i
        )

    def _choose(self, i: int) -> list[int]:
        """The feeds an entry decided at bar ``i`` buys: coins with a bar now and at the fill bar."""
        eligible = [j for j, (a, b) in enumerate(self.spans) if a <= i and i + 1 <= b]
        if self.p.mode == "top_k":
            m = self.p.momentum_days
            ranked = [
                (-(self.datas[j].close[0] / self.datas[j].close[-m] - 1.0), j)
                for j in eligible
                if self.spans[j][0] <= i - m
            ]
            ranked.sort()
            return [j for _, j in ranked[: self.p.k]]
        return eligible

    def next(self) -> None:
        """At the close: data ends, exits, the bar's event, and a pending entry decision."""
        d0 = self.datas[0]
        i = len(d0) - 1
        last = i == self.n_bars - 1
        g = self._growth[i]
        if g != 0.0:  # interest on the cash held through the bar, credited at its close (strategies.cash)
            broker = self.broker
            broker.cash += broker.cash * g
            broker._get_value()  # the broker's value at this close includes it (add_cash would credit a bar late)
        held_before = bool(self._legs)
        ended = self._close_ended_legs(i) if held_before else 0.0
        self._ended_proceeds += ended
        if self._legs:
            reason = self._exit_reason_now()
            if reason is not None and not last:
                self._exit_reason, self._exit_bar = reason, i
                self.decisions.append({"bar": i, "side": "sell", "reason": reason})
            elif self.p.intrabar and not last:
                self._place_stop(i)
        elif not held_before and self._event_line[0] > 0 and self._decide_at is None:
            cooling = self._last_exit_day is not None and d0.t_days[0] - self._last_exit_day < self.p.cooldown_days
            if not cooling:
                self._decide_at = i + int(self.p.signal_delay)
                self._pending_event = (i, self._level_line[0])
        if self._decide_at == i:
            seen_bar, level = self._pending_event
            self._decide_at = self._pending_event = None
            chosen = self._choose(i) if not last else []
            budget = self._budget(i, chosen, self._equity(ended)) if chosen else None
            if budget is not None:
                self._position_id += 1
                self._entry = {"budget": budget, "feeds": chosen}
                self._entry_level = level
                self._cost = 0.0
                self._ended_proceeds = 0.0
                self.decisions.append({"bar": i, "side": "buy", "seen_bar": seen_bar, "level": level, "feeds": chosen})
            elif not last and not chosen:
                self.log.append(f"{d0.datetime.date(0)}: entry decided but no target has data; skipped")
        self.equity.append(self._equity(ended))
        self.cash_path.append(self.broker.getcash())

    def _budget(self, i: int, chosen: list[int], equity: float) -> float | None:
        """Cash an entry decided now spends over its legs (strategies.sizing); None: skipped (no volatility yet)."""
        p = self.p
        if p.sizing == "notional":
            if p.notional > equity:
                self.n_capped += 1
                return equity
            return p.notional
        if p.sizing == "vol_target":
            back = p.vol_lookback
            if any(self.spans[j][0] > i - back for j in chosen):
                self.n_skipped += 1
                return None
            window = [[self.datas[j].close[t - back] for t in range(back + 1)] for j in sorted(chosen)]
            return vol_fraction(basket_volatility(window), p.vol_target, p.vol_cap) * equity
        return p.fraction * equity

    def _feed_growth(self):
        """``g_i`` of every bar from the first feed's bar stamps and ``cash_rate`` (a user's own Cerebro)."""
        rate = self.p.cash_rate
        if not isinstance(rate, pd.Series) and rate == 0.0:
            return [0.0] * self.n_bars
        stamps = pd.DatetimeIndex([bt.num2date(x) for x in self.datas[0].lines.datetime.array]).tz_localize("UTC")
        return run_growth(stamps.round("us"), rate)

    def equity_curve(self) -> pd.Series:
        """Equity at each bar's close so far, indexed by the bar's open date (UTC): ``riskon run``'s equity."""
        d0 = self.datas[0]
        stamps = [bt.num2date(x) for x in d0.lines.datetime.array[: len(self.equity)]]
        return pd.Series(self.equity, index=pd.DatetimeIndex(stamps, name="time").tz_localize("UTC"), name="equity")

    def _equity(self, pending_proceeds: float) -> float:
        """Cash + held coins at this close (+ last-close sales that settle at the next bar)."""
        held = sum(size * self.datas[j].close[0] for j, size in self._legs.items())
        return self.broker.getcash() + held + pending_proceeds


__all__ = ["SIZE_HAIRCUT", "OrderFailed", "RiskOn", "RiskOnBroker", "SetupError"]
