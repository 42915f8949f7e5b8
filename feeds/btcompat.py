"""The one door to backtrader: every riskon module imports ``bt`` from here.

backtrader 1.9.78.123 still refers to ``collections.Iterable`` and friends,
which Python 3.10 removed (``LineIterator.bindlines`` and ``optstrategy`` crash
with ``AttributeError``). Importing this module restores those names from
``collections.abc`` before backtrader loads. backtrader's plotting module
forces the TkAgg backend when it is imported; riskon never imports it and
draws its own charts on a plain Agg canvas, so nothing needs a display.
"""

from __future__ import annotations

import collections
import collections.abc

for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable", "OrderedDict"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import backtrader as bt  # noqa: E402  (must follow the patch above)

__all__ = ["bt"]
