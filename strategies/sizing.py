"""The one sizing constant every engine shares (backtrader, the vectorised simulator, buy-and-hold, the null).

Kept free of backtrader so the fast engine's driver and workers never import it.
"""

from __future__ import annotations

#: Size haircut so rounding can never make a full-equity buy exceed the cash.
SIZE_HAIRCUT = 1e-9

__all__ = ["SIZE_HAIRCUT"]
