"""Symbols: what a file name means, which clock a symbol trades on, how exchange pairs are spelt.

Yahoo symbols are used as Yahoo spells them (``^RUT``, ``IWM``, ``BTC-USD``);
exchange pairs as ``exchange:BASE/QUOTE`` (``binance:BTC/USDT``).
"""

from __future__ import annotations

import re
from pathlib import Path

from feeds.errors import DataError

#: Index symbols whose ``^`` file systems and snapshots drop (``RUT.csv`` means ``^RUT``).
KNOWN_INDEXES = {
    "RUT": "^RUT",
    "RUJ": "^RUJ",
    "RUO": "^RUO",
    "RUA": "^RUA",
    "RUI": "^RUI",
    "GSPC": "^GSPC",
    "SPX": "^SPX",
    "DJI": "^DJI",
    "IXIC": "^IXIC",
    "NDX": "^NDX",
    "VIX": "^VIX",
    "NYA": "^NYA",
}

_EXCHANGE_FILE = re.compile(r"^(?P<ex>[a-z0-9]+)_(?P<base>[A-Za-z0-9]+)-(?P<quote>[A-Za-z0-9]+)_(?P<tf>\d+[mhdw])$")
_EXCHANGE_SYMBOL = re.compile(r"^(?P<ex>[a-z0-9]+):(?P<base>[A-Za-z0-9]+)/(?P<quote>[A-Za-z0-9]+)$")
_YAHOO_CRYPTO = re.compile(r"^[A-Z0-9]+-(USD|USDT|USDC|EUR|GBP|JPY|BTC|ETH)$")

NEW_YORK = "America/New_York"


def symbol_from_filename(path: str | Path) -> tuple[str, str | None]:
    """Map a CSV file name to ``(symbol, timeframe)``; timeframe is None when the name has none.

    ``RUT.csv`` → ``^RUT``; ``BTC-USD.csv`` → ``BTC-USD``;
    ``binance_BTC-USDT_1d.csv`` → ``binance:BTC/USDT`` at ``1d``.
    """
    stem = Path(path).stem
    m = _EXCHANGE_FILE.match(stem)
    if m:
        return f"{m['ex']}:{m['base'].upper()}/{m['quote'].upper()}", m["tf"]
    if not stem:
        raise DataError(f"{path}: cannot tell the symbol from the file name; pass --symbol")
    return KNOWN_INDEXES.get(stem.upper(), stem), None


def filename_for(symbol: str, timeframe: str = "1d") -> str:
    """The CSV file name the snapshot uses for ``symbol`` (inverse of ``symbol_from_filename``)."""
    m = _EXCHANGE_SYMBOL.match(symbol)
    if m:
        return f"{m['ex']}_{m['base']}-{m['quote']}_{timeframe}.csv"
    return f"{symbol.lstrip('^')}.csv"


def split_exchange_symbol(symbol: str) -> tuple[str, str] | None:
    """``binance:BTC/USDT`` → ``("binance", "BTC/USDT")``; None for a Yahoo symbol."""
    m = _EXCHANGE_SYMBOL.match(symbol)
    return (m["ex"], f"{m['base']}/{m['quote']}") if m else None


def is_crypto(symbol: str) -> bool:
    """True for exchange pairs and Yahoo crypto pairs (``BTC-USD``): they trade around the clock."""
    return bool(_EXCHANGE_SYMBOL.match(symbol) or _YAHOO_CRYPTO.match(symbol))


def exchange_tz(symbol: str) -> str:
    """The time zone a symbol's daily dates are written in: UTC for crypto, New York otherwise."""
    return "UTC" if is_crypto(symbol) else NEW_YORK
