"""``RiskOn`` in a user's own ``bt.Cerebro``: parameters by their run-config names, a broker set up for its fills.

On riskon's combined feed (``riskon.bt.IndexCryptoFeed``) ``RiskOn`` speaks the language of a run
config: ``rule`` plus the rule's own parameters as keywords, ``trailing_stop``, ``index_drawdown``,
``index_below_break``, ``fee_bps``, ``slippage_bps`` (defaults as in a config: 10 and 5 bps), and
computes its entry events itself with ``strategies.btindicators.RuleSignal``. On the feeds riskon's own
runs build, the events are already in the feed's lines and the parameters are fractions (``trail``,
``fee``, ...), as ``strategies.backtest`` passes them.

Either way ``configure`` sets what the parity contract needs where backtrader allows a strategy to:
cheat-on-open, the percentage commission (``bt.CommissionInfo(percabs=True)``) and uncapped slippage on
the open. A setting of the user's that would change a fill is refused with one line naming it.
"""

from __future__ import annotations

from typing import Any

from feeds.btcompat import bt
from strategies import rules
from strategies.params import did_you_mean
from strategies.sizing import SIZING

#: Run-config names a user passes -> the fraction-valued parameters riskon's own runs pass.
CONFIG_NAMES = {
    "trailing_stop": "trail",
    "index_drawdown": "index_exit_dd",
    "index_below_break": "index_exit_below_break",
    "fee_bps": "fee",
    "slippage_bps": "slippage",
}
#: Parameters only riskon's own runs set (the user's feed has no precomputed exit line or spans).
_INTERNAL_ONLY = ("exit_rule", "spans", "cash_growth")
#: Valid values of the parameters a user sets: (low, high, interval as text); a bound may be open or closed.
_BOUNDS = {
    "trailing_stop": (0.0, 1.0, "(0, 1)"),
    "stop": (0.0, 1.0, "(0, 1)"),
    "take_profit": (0.0, None, "(0, inf)"),
    "max_hold_days": (0.0, None, "(0, inf)"),
    "index_drawdown": (0.0, 1.0, "(0, 1)"),
    "fee_bps": (0.0, 1000.0, "[0, 1000]"),
    "slippage_bps": (0.0, 1000.0, "[0, 1000]"),
    "fraction": (0.0, 1.0, "(0, 1]"),
    "cooldown_days": (0.0, None, "[0, inf)"),
    "signal_delay": (0.0, None, "[0, inf)"),
    "vol_target": (0.0, None, "(0, inf)"),
    "vol_lookback": (2.0, None, "[2, inf)"),
    "vol_cap": (0.0, 1.0, "(0, 1]"),
    "notional": (0.0, None, "(0, inf)"),
}
_DEFAULT_RULE = "ath_confirmed"


class SetupError(ValueError):
    """A parameter ``RiskOn`` does not have, or a Cerebro/broker setting that would change its fills."""


def _defaults(strategy: bt.Strategy) -> dict[str, Any]:
    params = type(strategy).params
    return dict(zip(params._getkeys(), params._getdefaults(), strict=True))


def _changed(strategy: bt.Strategy, names) -> list[str]:
    defaults = _defaults(strategy)
    return [n for n in names if getattr(strategy.p, n) != defaults[n]]


def _check_bounds(strategy: bt.Strategy) -> None:
    for name, (low, high, span) in _BOUNDS.items():
        value = getattr(strategy.p, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise SetupError(f"RiskOn.{name} must be a number, got {type(value).__name__} {value!r}")
        below = value < low if span[0] == "[" else value <= low
        above = high is not None and (value > high if span[-1] == "]" else value >= high)
        if below or above:
            raise SetupError(f"RiskOn.{name} must be in {span}, got {value!r}")


def check_sizing(strategy: bt.Strategy) -> None:
    """Refuse an unknown sizing rule, or one whose own parameter is missing (``vol_target``, ``notional``)."""
    p = strategy.p
    if p.sizing not in SIZING:
        raise SetupError(f"RiskOn.sizing must be one of {', '.join(SIZING)}, got {p.sizing!r}")
    if p.sizing in ("vol_target", "notional") and getattr(p, p.sizing) is None:
        raise SetupError(f"RiskOn.sizing = {p.sizing!r} needs {p.sizing} set")
    if p.sizing == "vol_target" and int(p.vol_lookback) != p.vol_lookback:
        raise SetupError(f"RiskOn.vol_lookback must be a whole number of bars, got {p.vol_lookback!r}")


def user_mode(strategy: bt.Strategy, values: dict[str, Any]):
    """Resolve the config-named parameters of ``strategy`` and return its entry ``RuleSignal`` indicator.

    ``values`` are the keywords ``RiskOn`` received beyond its own parameters: the rule's parameters.
    """
    # the indicator module imports the rule registry; only a user's own Cerebro needs it here
    from strategies.btindicators import RuleSignal

    p = strategy.p
    internal = _changed(strategy, (*CONFIG_NAMES.values(), *_INTERNAL_ONLY))
    if internal:
        name = internal[0]
        wanted = next((k for k, v in CONFIG_NAMES.items() if v == name), None)
        hint = f"pass {wanted} instead" if wanted else "riskon's own runs set it; leave it out"
        raise SetupError(f"RiskOn on an IndexCryptoFeed does not take {name}: {hint}")
    _check_bounds(strategy)
    check_sizing(strategy)
    rule = p.rule or _DEFAULT_RULE
    if not isinstance(rule, str):
        raise SetupError(f"RiskOn.rule must be a rule name, got {type(rule).__name__}; see `riskon rules`")
    cls = rules.get(rule)
    unknown = [k for k in values if k not in cls.params]
    if unknown:
        valid = [*_defaults(strategy), *cls.params]
        raise SetupError(
            f"RiskOn has no parameter {unknown[0]!r} (rule {rule} takes {', '.join(cls.params) or 'none'})"
            + did_you_mean(unknown[0], valid)
        )
    if cls.kind != "event":
        raise SetupError(f"RiskOn.rule must be an event rule; {rule} is a filter (it gates entries, it opens none)")
    if p.index_below_break and not cls.level:
        raise SetupError(f"RiskOn.index_below_break needs a rule that reports a break level; {rule} does not")
    first = strategy.datas[0]
    for d in strategy.datas[1:]:
        same = d.buflen() == first.buflen() and d.lines.datetime.array[:1] == first.lines.datetime.array[:1]
        if getattr(d, "sessions", None) is None or not same:
            raise SetupError(
                f"RiskOn trades every feed it is given on one calendar: {d._name or 'a feed'} is not an "
                "IndexCryptoFeed over the same dates as the first"
            )
    p.trail = p.trailing_stop
    p.index_exit_dd = p.index_drawdown
    p.index_exit_below_break = bool(p.index_below_break)
    p.fee = p.fee_bps / 1e4  # the same operation as riskon.runner.strategy_params: the same double
    p.slippage = p.slippage_bps / 1e4
    return RuleSignal(first, rule, **values)


def internal_mode(strategy: bt.Strategy, values: dict[str, Any]) -> None:
    """On riskon's own feeds (events precomputed) refuse what only an IndexCryptoFeed supports."""
    if values or strategy.p.rule is not None:
        given = ", ".join(["rule", *values] if strategy.p.rule is not None else list(values))
        raise SetupError(
            f"RiskOn got {given}, which needs riskon.bt.IndexCryptoFeed as its first data (it carries the index's "
            f"history), got {type(strategy.datas[0]).__name__}"
        )
    named = _changed(strategy, [k for k in CONFIG_NAMES if k not in ("fee_bps", "slippage_bps")])
    if named:
        raise SetupError(f"RiskOn.{named[0]} applies on an IndexCryptoFeed; here pass {CONFIG_NAMES[named[0]]}")


# -- the broker ---------------------------------------------------------------------------
def _fraction(info: bt.CommInfoBase) -> float | None:
    """The fee of ``info`` as a fraction of notional when it is a plain percentage on stock, else None."""
    p = info.p
    if info._commtype != bt.CommInfoBase.COMM_PERC or not info._stocklike:
        return None
    if p.mult != 1.0 or p.margin or p.interest or p.leverage != 1.0:
        return None
    return p.commission if p.percabs else p.commission / 100.0


def _check_commission(broker: bt.BrokerBase, fee: float, ours: set[int]) -> None:
    for key, info in broker.comminfo.items():
        if id(info) in ours:
            continue
        got = _fraction(info)
        if got is None or (got != 0.0 and got != fee):
            where = "cerebro.broker" if key is None else f"cerebro.broker for {key}"
            raise SetupError(
                f"{where} already charges its own commission ({type(info).__name__}, commission={info.p.commission!r});"
                f" RiskOn charges fee_bps itself: remove setcommission/addcommissioninfo"
            )


def _check_slippage(broker: bt.BrokerBase, slippage: float, ours: tuple | None) -> None:
    p = broker.p
    now = (p.slip_perc, p.slip_fixed, p.slip_open, p.slip_match, p.slip_out)
    if now == ours or (p.slip_perc == 0.0 and p.slip_fixed == 0.0):
        return
    if now[:2] == (slippage, 0.0) and p.slip_open and p.slip_match and p.slip_out:
        return
    raise SetupError(
        f"cerebro.broker already slips fills (slip_perc={p.slip_perc!r}, slip_fixed={p.slip_fixed!r}, slip_open="
        f"{p.slip_open!r}); RiskOn slips the open by slippage_bps itself: remove set_slippage_perc/fixed"
    )


def configure(strategy: bt.Strategy) -> None:
    """Set cheat-on-open, the commission and the slippage ``strategy`` needs; refuse settings that change fills.

    Called from ``RiskOn.__init__``: the broker has started (its cash is set) and no bar has been seen.
    What ``configure`` set itself is remembered on the broker, so the runs of ``optstrategy`` (which
    reuse one broker) may each set their own costs.
    """
    env, broker, p = strategy.env, strategy.broker, strategy.p
    if not isinstance(broker, bt.brokers.BackBroker):
        raise SetupError(
            f"RiskOn needs backtrader's BackBroker (the default cerebro.broker), got {type(broker).__name__}"
        )
    if len(env.strats) > 1:
        raise SetupError("RiskOn would share cerebro.broker's cash with another strategy: give it a Cerebro of its own")
    if not getattr(env, "_dopreload", True):  # set by Cerebro.run: preload=False or exactbars disable it
        raise SetupError(
            "RiskOn needs preloaded data (it must know the last bar): use Cerebro(preload=True, exactbars=0)"
        )
    if broker.p.coc:
        raise SetupError(
            "cerebro.broker.set_coc(True) fills orders at the close; RiskOn fills at the next open: remove it"
        )
    if broker.p.filler is not None:
        raise SetupError("cerebro.broker.set_filler caps fills by volume; use RiskOn's liquidity_cap instead")
    ours = getattr(broker, "riskon_settings", {})
    _check_commission(broker, p.fee, {ours.get("commission", 0)})
    _check_slippage(broker, p.slippage, ours.get("slippage"))
    info = bt.CommissionInfo(commission=p.fee, percabs=True)  # percabs: the fee is a fraction, not a percent
    for key in [None, *broker.comminfo]:
        broker.comminfo[key] = info
    # slip the open too, and never cap the fill at the bar's high/low
    broker.set_slippage_perc(p.slippage, slip_open=True, slip_limit=True, slip_match=True, slip_out=True)
    broker.set_coo(True)
    broker.set_coc(False)
    env.p.cheat_on_open = True  # read by Cerebro at every bar: next_open runs from the first bar on
    pp = broker.p
    broker.riskon_settings = {
        "commission": id(info),
        "slippage": (pp.slip_perc, pp.slip_fixed, pp.slip_open, pp.slip_match, pp.slip_out),
    }
