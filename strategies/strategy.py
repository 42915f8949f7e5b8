"""The backtrader strategy: act on rule events, exit on the close, fill at the next open.

Decisions are made at a bar's close (``next``); fills happen at the next bar's
open (``next_open`` with cheat-on-open), priced and sized exactly as the parity
contract in the README says. backtrader drops a rejected order silently, so
any order that ends Margin or Rejected raises and fails the run.
"""

from __future__ import annotations

import math

from feeds.btcompat import bt

#: Size haircut so rounding can never make a full-equity buy exceed the cash.
SIZE_HAIRCUT = 1e-9


class OrderFailed(RuntimeError):
    """backtrader refused an order (Margin or Rejected): the run's numbers would be wrong."""


class RiskOn(bt.Strategy):
    """Long one asset on rule events; exits by trailing stop, max holding days or the index."""

    params = (
        ("signal_delay", 0),  # whole bars between the bar that sees a signal and the decision
        ("cooldown_days", 0.0),  # calendar days after an exit fill before a new signal is taken
        ("trail", None),  # trailing stop: exit when close < peak close * (1 - trail)
        ("max_hold_days", None),  # exit when calendar days since the entry fill reach this
        ("index_exit_dd", None),  # exit when index close < index ATH * (1 - x)
        ("index_exit_below_break", False),  # exit when index close is at or below the broken level
        ("fraction", 1.0),  # share of equity put into each entry
        ("fee", 0.0),  # fee per fill, fraction of notional
        ("slippage", 0.0),  # fill at open * (1 +/- slippage)
    )

    def __init__(self) -> None:
        self.n_bars = self.data.buflen()
        self.fills: list[dict] = []
        self.equity: list[float] = []
        self.cash_path: list[float] = []
        self.decisions: list[dict] = []
        self._decide_at: int | None = None  # bar index of a pending entry decision
        self._pending_event: tuple[int, float] | None = None
        self._entry_equity: float | None = None  # equity at the close of the entry decision bar
        self._exit_reason: str | None = None
        self._peak = -math.inf
        self._entry_level = math.nan
        self._entry_day = math.nan
        self._last_exit_day: float | None = None

    # -- fills -------------------------------------------------------------------------
    def next_open(self) -> None:
        """At the open: fill the exit or entry decided at the previous close."""
        if self._exit_reason is not None:
            size = self.position.size
            self.sell(size=size, exectype=bt.Order.Market)
        if self._entry_equity is not None:
            price = self.data.open[0] * (1.0 + self.p.slippage)
            size = self.p.fraction * self._entry_equity / (price * (1.0 + self.p.fee)) * (1.0 - SIZE_HAIRCUT)
            self.buy(size=size, exectype=bt.Order.Market, price=price)
            self._entry_equity = None

    def notify_order(self, order) -> None:
        """Record fills; fail the run on any refused order."""
        if order.status in (order.Margin, order.Rejected):
            raise OrderFailed(
                f"backtrader refused a {'buy' if order.isbuy() else 'sell'} of {order.created.size:g} on "
                f"{self.data.datetime.date(0)} ({order.getstatusname()}); the run is invalid"
            )
        if order.status != order.Completed:
            return
        day = self.data.t_days[0]
        fill = {
            "bar": len(self.data) - 1,
            "t_days": day,
            "side": "buy" if order.isbuy() else "sell",
            "price": order.executed.price,
            "size": abs(order.executed.size),
            "fee": order.executed.comm,
        }
        if order.isbuy():
            self._peak = -math.inf
            self._entry_day = day
        else:
            fill["reason"] = self._exit_reason
            self._exit_reason = None
            self._last_exit_day = day
        self.fills.append(fill)

    # -- decisions ---------------------------------------------------------------------
    def _exit_reason_now(self) -> str | None:
        d = self.data
        self._peak = max(self._peak, d.close[0])
        if self.p.trail is not None and d.close[0] < self._peak * (1.0 - self.p.trail):
            return "trail"
        if self.p.max_hold_days is not None and d.t_days[0] - self._entry_day >= self.p.max_hold_days:
            return "max_hold"
        if self.p.index_exit_dd is not None and d.idx_close[0] < d.idx_ath[0] * (1.0 - self.p.index_exit_dd):
            return "index_dd"
        if self.p.index_exit_below_break and d.idx_close[0] <= self._entry_level:
            return "index_break"
        return None

    def next(self) -> None:
        """At the close: check exits, take or lose the bar's event, decide a pending entry."""
        i = len(self.data) - 1
        last = i == self.n_bars - 1
        in_position = self.position.size > 0
        if in_position:
            reason = self._exit_reason_now()
            if reason is not None and not last:
                self._exit_reason = reason
                self.decisions.append({"bar": i, "side": "sell", "reason": reason})
        elif self.data.event[0] > 0 and self._decide_at is None:
            cooling = (
                self._last_exit_day is not None and self.data.t_days[0] - self._last_exit_day < self.p.cooldown_days
            )
            if not cooling:
                self._decide_at = i + int(self.p.signal_delay)
                self._pending_event = (i, self.data.event_level[0])
        if self._decide_at == i:
            seen_bar, level = self._pending_event
            self._decide_at = self._pending_event = None
            if not last:
                self._entry_equity = self.broker.getvalue()
                self._entry_level = level
                self.decisions.append({"bar": i, "side": "buy", "seen_bar": seen_bar, "level": level})
        self.equity.append(self.broker.getvalue())
        self.cash_path.append(self.broker.getcash())
