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

_EXCHANGE_FILE = re.compile(
    r"^(?P<ex>[a-z0-9]+)_(?P<base>[A-Za-z0-9]+)-(?P<quote>[A-Za-z0-9]+)_(?P<tf>(?-i:\d+[mhdw]))$", re.IGNORECASE
)
_EXCHANGE_SYMBOL = re.compile(r"^(?P<ex>[a-z0-9]+):(?P<base>[A-Za-z0-9]+)/(?P<quote>[A-Za-z0-9]+)$")
_EXCHANGE_ANY_CASE = re.compile(_EXCHANGE_SYMBOL.pattern, re.IGNORECASE)
#: A Yahoo symbol: letters, digits and ``. - = & _``, an optional leading ``^`` (``^RUT``, ``BRK-B``, ``EURUSD=X``).
_YAHOO_SYMBOL = re.compile(r"^\^?[A-Z0-9][A-Z0-9.=&_-]*$")
_YAHOO_CRYPTO = re.compile(r"^[A-Z0-9]+-(USD|USDT|USDC|EUR|GBP|JPY|BTC|ETH)$")
#: Longer symbols are refused: no real one comes close, and a key must fit a file name.
MAX_SYMBOL_LENGTH = 64

NEW_YORK = "America/New_York"


def canonical_symbol(symbol: str) -> str:
    """The one spelling of ``symbol`` the cache and the sources use; ``DataError`` if it is not a symbol.

    Yahoo is case-insensitive, so Yahoo symbols are upper-cased (``eth-usd`` → ``ETH-USD``,
    ``^rut`` → ``^RUT``); an exchange pair gets a lower-case exchange and an upper-case pair
    (``Binance:btc/usdt`` → ``binance:BTC/USDT``). Anything with path separators, ``..``,
    spaces or control characters is refused, so a symbol can never name a path.
    """
    if not isinstance(symbol, str):
        raise DataError(f"{symbol!r} is not a symbol")
    text = symbol.strip()
    m = _EXCHANGE_ANY_CASE.match(text)
    if m and len(text) <= MAX_SYMBOL_LENGTH:
        return f"{m['ex'].lower()}:{m['base'].upper()}/{m['quote'].upper()}"
    upper = text.upper()
    if _YAHOO_SYMBOL.match(upper) and ".." not in upper and len(upper) <= MAX_SYMBOL_LENGTH:
        return upper
    raise DataError(
        f"symbol {symbol!r} is not valid: use a Yahoo symbol (^RUT, IWM, BTC-USD) or an exchange pair "
        "(binance:BTC/USDT), without path separators, '..', spaces or control characters"
    )


def canonical_timeframe(timeframe: str) -> str:
    """``timeframe`` checked to be a number and one of m, h, d, w (``1d``, ``4h``); ``DataError`` otherwise."""
    if isinstance(timeframe, str) and re.fullmatch(r"[1-9]\d{0,3}[mhdw]", timeframe.strip()):
        return timeframe.strip()
    raise DataError(f"unknown timeframe {timeframe!r}: use a number and one of m, h, d, w (e.g. 1h, 1d)")


def parse_filename(path: str | Path) -> tuple[str, str | None]:
    """The raw ``(symbol, timeframe)`` a file name spells, not yet checked (see ``symbol_from_filename``)."""
    stem = Path(path).stem
    m = _EXCHANGE_FILE.match(stem)
    if m:
        return f"{m['ex'].lower()}:{m['base'].upper()}/{m['quote'].upper()}", m["tf"]
    return KNOWN_INDEXES.get(stem.upper(), stem), None


def symbol_from_filename(path: str | Path) -> tuple[str, str | None]:
    """Map a CSV file name to ``(symbol, timeframe)``; timeframe is None when the name has none.

    ``RUT.csv`` → ``^RUT``; ``BTC-USD.csv`` and ``btc-usd.csv`` → ``BTC-USD``;
    ``binance_BTC-USDT_1d.csv`` → ``binance:BTC/USDT`` at ``1d``. A name that is no
    symbol raises ``DataError`` asking for ``--symbol``.
    """
    raw, tf = parse_filename(path)
    if not raw:
        raise DataError(f"{path}: cannot tell the symbol from the file name; pass --symbol")
    try:
        return canonical_symbol(raw), tf
    except DataError:
        raise DataError(
            f"{path}: the file name {Path(path).stem!r} is not a symbol (e.g. BTC-USD.csv, RUT.csv, "
            "binance_BTC-USDT_1d.csv); rename the file or pass --symbol"
        ) from None


def filename_for(symbol: str, timeframe: str = "1d") -> str:
    """The CSV file name the snapshot uses for ``symbol`` (inverse of ``symbol_from_filename``).

    Always a bare file name: the symbol is checked first, so it can never climb out of a folder.
    """
    symbol = canonical_symbol(symbol)
    m = _EXCHANGE_SYMBOL.match(symbol)
    if m:
        return f"{m['ex']}_{m['base']}-{m['quote']}_{canonical_timeframe(timeframe)}.csv"
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
