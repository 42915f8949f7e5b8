"""The backtrader engine's tasks: each run's config with its bars already built, rule signals included.

Both engines compute a setting's signals in the sweep process and ship arrays (the fast engine's
``riskon.sweeps.chunks.plan`` does the same for its chunks). A worker receives a plain ``RunConfig``
and the bars, with the rule's events as columns, and never loads rule code: a rule from a user's
``rules/`` folder or ``RISKON_RULES`` is imported in the sweep process only, and nothing is ever
unpickled from a user's file in a worker.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator

from riskon.config import RunConfig
from riskon.sweeps.keys import bars_key

#: Settings whose bars are kept while their runs are handed out (combinations of one setting come together).
KEEP = 16


def build_setting(cfg: RunConfig, frames: dict):
    """Sessions, bars (rule events included) and target prices of ``cfg`` from the loaded ``frames``."""
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.runner import _cut, build_bars

    index = frames[(cfg.data["index"], "1d")]
    raw = {
        a: _cut(frames[(a, cfg.data["timeframe"])], cfg.data["start"], cfg.data["end"], a) for a in cfg.target["assets"]
    }
    return build_bars(cfg, index, raw)


def prepared_tasks(tasks: Iterable, frames: dict, sweep_id: str) -> Iterator[tuple]:
    """``(overrides, run id, sweep id, config, prepared)`` per task ``(overrides, config, run id)``.

    ``prepared`` is ``(sessions, bars, prices)`` (sessions emptied: a worker computes no session
    statistics), built once per data/rule setting, or the one-line error building them hit: every run
    of that setting then becomes an error row and the sweep goes on.
    """
    built: OrderedDict[str, object] = OrderedDict()
    for overrides, cfg, rid in tasks:
        key = bars_key(cfg)
        if key not in built:
            try:
                sessions, bars, assets = build_setting(cfg, frames)
                built[key] = (sessions.iloc[:0], bars, assets)
            except Exception as e:  # the setting fails: every run of it is an error row, the sweep goes on
                built[key] = f"{type(e).__name__}: {e}".splitlines()[0][:500]
            if len(built) > KEEP:
                built.popitem(last=False)
        else:
            built.move_to_end(key)
        yield overrides, rid, sweep_id, cfg, built[key]
