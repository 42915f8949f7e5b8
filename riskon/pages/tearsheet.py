"""quantstats HTML tear sheets, set up so their numbers match riskon's table.

Traps handled here: quantstats annualises over 252 periods unless told 365;
it aligns the benchmark to the strategy's dates unless ``match_dates=False``;
a ticker string as benchmark makes it download (or report zeros offline), so
the benchmark is always a Series on the strategy's own calendar; importing it
floods the log with matplotlib font lookups; its HTML links a remote favicon and pastes the
title unescaped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import warnings
from html import escape
from pathlib import Path

import pandas as pd

from riskon.metrics import PERIODS
from riskon.pages.html import write_page


@contextlib.contextmanager
def _quiet_quantstats():
    """Silence quantstats' third-party noise (font lookups, pandas deprecations) while it runs."""
    loggers = [logging.getLogger(n) for n in ("matplotlib", "matplotlib.font_manager", "quantstats")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.filterwarnings("ignore", module="quantstats")
            warnings.filterwarnings("ignore", module="seaborn")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def _naive(series: pd.Series) -> pd.Series:
    s = series.copy()
    if isinstance(s.index, pd.DatetimeIndex) and s.index.tz is not None:
        s.index = s.index.tz_convert("UTC").tz_localize(None)
    return s.astype("float64")


_REMOTE = r"[\"']\s*(?:https?:)?//"  # an attribute value starting with http://, https:// or //


def strip_remote_links(html: str) -> str:
    """Remove every reference to a remote resource so the page opens offline and asks the network for nothing.

    quantstats writes a remote favicon ``<link>``, a link to its website and ``onload="save()"`` (a function
    its template never defines). Remote ``<link>``/``<script>``/``<img>``/``<iframe>`` elements and CSS
    ``@import``/``url()`` of remote files are dropped; a remote ``<a>`` keeps its text without the link.
    SVG namespace declarations (``xmlns=...``) are names, not requests, and stay.
    """
    html = re.sub(r"<link[^>]+rel=[\"'](?:shortcut )?icon[\"'][^>]*>", "", html, flags=re.I)
    html = re.sub(rf"<link[^>]+href={_REMOTE}[^>]*>", "", html, flags=re.I)
    html = re.sub(rf"<script[^>]+src={_REMOTE}[^>]*>\s*</script>", "", html, flags=re.I)
    html = re.sub(rf"<(?:img|iframe|source|embed)[^>]+src={_REMOTE}[^>]*>", "", html, flags=re.I)
    html = re.sub(rf"<a[^>]+href={_REMOTE}[^>]*>(.*?)</a>", r"\1", html, flags=re.I | re.S)
    html = re.sub(r"@import\s+(?:url\()?[\"']?\s*(?:https?:)?//[^;]*;", "", html, flags=re.I)
    html = re.sub(r"url\(\s*[\"']?\s*(?:https?:)?//[^)]*\)", "none", html, flags=re.I)
    return re.sub(r"\s+onload=[\"']save\(\)[\"']", "", html, flags=re.I)


def _set_title(html: str, title: str) -> str:
    """Name the page after the run (quantstats titles every tear sheet alike): the index lists this title."""
    return re.sub(r"<title>.*?</title>", lambda _: f"<title>{escape(title)}</title>", html, count=1, flags=re.S)


def _title(result) -> str:
    title = f"riskon: {result.config.name}"
    if result.config.target["mode"] != "single":
        title += " (survivorship bias: coin list chosen today)"
    return title


def write_tearsheet(result, path: str | Path, title: str | None = None) -> Path:
    """Write the quantstats tear sheet of a run ``Result`` against buy-and-hold to ``path``."""
    return write_returns_tearsheet(result.returns, result.benchmark_returns, path, title or _title(result))


def write_returns_tearsheet(returns: pd.Series, benchmark: pd.Series, path: str | Path, title: str) -> Path:
    """Write a quantstats tear sheet from daily returns and a benchmark already on the same calendar."""
    path = Path(path)
    fd, raw = tempfile.mkstemp(prefix="riskon-tearsheet-", suffix=".html")  # outside the reports folder
    os.close(fd)  # quantstats writes here; the page appears only once its remote links are gone
    try:
        _write_quantstats(returns, benchmark, Path(raw), path.name, title)
        text = Path(raw).read_text(encoding="utf-8")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(raw)
    return write_page(path, _set_title(strip_remote_links(text), title))


def _write_quantstats(returns: pd.Series, benchmark: pd.Series, out: Path, filename: str, title: str) -> None:
    with _quiet_quantstats():
        # matplotlib loads only when a chart is drawn
        import matplotlib

        matplotlib.use("Agg", force=False)
        # quantstats loads only for a tear sheet
        import quantstats as qs

        qs.reports.html(
            _naive(returns).rename("Strategy"),
            benchmark=_naive(benchmark).rename("Buy & hold"),
            rf=0.0,
            periods_per_year=PERIODS,
            match_dates=False,
            output=str(out),
            title=escape(title),  # quantstats pastes the title into its HTML as it is
            download_filename=filename,
        )
