"""The seed strategy in plain backtrader, with riskon's feed, strategy and tear sheet.

The same trades and equity as `riskon run runs/seed.toml` (docs/guides/backtrader.md):
    python examples/cerebro_seed.py [tearsheet.html]
"""

import sys

import backtrader as bt

import riskon.bt as rbt

out = sys.argv[1] if len(sys.argv) > 1 else "reports/cerebro_seed/tearsheet.html"

cerebro = bt.Cerebro()
cerebro.adddata(rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD"))  # ^RUT lines aligned onto BTC's days
cerebro.addstrategy(
    rbt.RiskOn,  # the seed's rule, exits and costs by their names in runs/seed.toml
    rule="ath_confirmed",
    confirm_days=3,
    trailing_stop=0.25,
    index_drawdown=0.10,
    fee_bps=10,
    slippage_bps=5,
)
cerebro.addanalyzer(rbt.QuantStatsAnalyzer, _name="quantstats", path=out)
cerebro.broker.setcash(100_000)
strategy = cerebro.run()[0]

stats = strategy.analyzers.quantstats.get_analysis()
print(f"final equity  {strategy.equity[-1]:.6f}")
print(f"entries       {sum(fill['side'] == 'buy' for fill in strategy.fills)}")
print(f"sharpe        {stats['metrics']['sharpe']:.6f}")
print(f"max drawdown  {stats['metrics']['max_drawdown']:.6f}")
print(f"tear sheet    {stats['path']}")
