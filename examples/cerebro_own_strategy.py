"""Your own backtrader strategy on riskon's combined feed: index lines, the confirmed-high signal, a tear sheet.

The strategy reads `idx_close` and `idx_ath` (the Russell 2000's close and all-time high as BTC's bar sees
them) and `ConfirmedHigh` (the seed's signal, computed on the index's full history), and keeps its own
rules: buy 95% of the account on a confirmed record, sell when the index falls 10% below its record.
    python examples/cerebro_own_strategy.py [tearsheet.html]
"""

import sys

import backtrader as bt

import riskon.bt as rbt


class RecordBreaker(bt.Strategy):
    """Long BTC from a confirmed ^RUT record until the index is 10% below its all-time high."""

    params = (("confirm_days", 3), ("drawdown", 0.10))

    def __init__(self):
        self.record = rbt.ConfirmedHigh(self.data, confirm_days=self.p.confirm_days)
        self.signals = []
        self.refused = 0

    def notify_order(self, order):
        if order.status in (order.Margin, order.Rejected):  # backtrader drops these silently: count them
            self.refused += 1

    def next(self):
        d = self.data
        if self.record.signal[0] > 0:
            self.signals.append(d.datetime.date(0))
            if not self.position:
                self.order_target_percent(target=0.95)  # filled at the next bar's open
        elif self.position and d.idx_close[0] < d.idx_ath[0] * (1 - self.p.drawdown):
            self.close()


out = sys.argv[1] if len(sys.argv) > 1 else "reports/cerebro_own_strategy/tearsheet.html"
cerebro = bt.Cerebro()
cerebro.adddata(rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD"))
cerebro.addstrategy(RecordBreaker)
cerebro.addanalyzer(rbt.QuantStatsAnalyzer, _name="quantstats", path=out)
cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")
cerebro.broker.setcash(100_000)
strategy = cerebro.run()[0]

stats = strategy.analyzers.quantstats.get_analysis()
print(f"signals       {len(strategy.signals)} ({strategy.signals[0]} .. {strategy.signals[-1]})")
trades = strategy.analyzers.trades.get_analysis().total
print(f"trades        {trades.get('closed', 0)} closed, {trades.get('open', 0)} open")
print(f"refused       {strategy.refused}")
print(f"final value   {cerebro.broker.getvalue():.2f}")
print(f"sharpe        {stats['metrics']['sharpe']:.6f}")
print(f"tear sheet    {stats['path']}")
