"""quantstats HTML tear sheets, set up so their numbers match riskon's table and every figure is drawn right.

Traps handled here: quantstats annualises over 252 periods unless told 365;
it aligns the benchmark to the strategy's dates unless ``match_dates=False``;
a ticker string as benchmark makes it download (or report zeros offline), so
the benchmark is always a Series on the strategy's own calendar; importing it
floods the log with matplotlib font lookups; its HTML links a remote favicon and pastes the
title unescaped.

quantstats 0.0.86 (the newest release) misdraws on pandas 3 and matplotlib 3.11. Every workaround
lives in this module, and the page stays quantstats' own (its functions draw every figure and table):

- **EOY bars** (``_positional_bars``, inside ``drawing_fixes``): pandas 3 bar-plots a fixed-frequency
  yearly index at period numbers (years since 1970) while quantstats puts its ticks at 0..n-1, so the
  year labels pile up at the left (more than 10 years) or sit one year late (10 or fewer). pandas'
  ``x_compat`` plotting option restores positional bars.
- **-1000 % tick** (``_SymlogRescaled``, inside ``drawing_fixes``): the log-returns chart fixes its
  y-limits while the axis is still linear, then switches to symlog, which does not rescale; the view
  is rescaled after the switch. The same stand-in for pyplot saves each figure without pyplot's redraw
  after the save (a render quantstats throws away when it closes the figure).
- **"CAGR" glyph box** (``_plain_percent``): the metric key holds U+FE6A (small percent sign), which
  common fonts lack; it is written as a plain ``%``.
- **"Recovered" on an open drawdown** (``drawdown_table``): quantstats gives an unrecovered drawdown
  the series' last date as its end, and its recovered dates are the last day still underwater (one
  day early). The table is rebuilt from quantstats' own drawdown details with the first day back at
  the peak, and "not recovered" for a drawdown still open at the end.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile
import types
import warnings
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from riskon.metrics import PERIODS
from riskon.pages.html import write_page
from strategies.cash import rate_per_bar


class _LoadedOnUse(types.ModuleType):
    """Stands in for a module in ``sys.modules`` until one of its attributes is used; then imports the module
    (unchanged) and defers to it. Dunder lookups (``__file__``, ``__path__``: tools probing modules) load nothing.

    ``importlib.util.LazyLoader`` cannot serve here: on Python 3.11 the ``import`` statement that finds it
    in ``sys.modules`` reads its ``__spec__``, which loads it at once.
    """

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        real = self.__dict__.get("_real")
        if real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = self.__dict__["_real"] = importlib.import_module(self.__name__)
        return getattr(real, name)


def import_quantstats():
    """quantstats, imported with its yfinance module left unloaded until something of it is used.

    quantstats imports yfinance when it loads (~0.3 s of CPU, with requests and its HTTP stack) only to
    download a ticker given as a benchmark; riskon always hands it the benchmark as a Series, so yfinance
    is a stand-in (``_LoadedOnUse``) that loads the real module on its first use.
    """
    if "quantstats" not in sys.modules and "yfinance" not in sys.modules:
        sys.modules["yfinance"] = _LoadedOnUse("yfinance")
    # quantstats loads only for a tear sheet
    import quantstats

    return quantstats


@contextlib.contextmanager
def quiet_quantstats():
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


#: Where figure number ``i`` waits in a page whose figures are drawn by worker processes (``riskon.pages.sheet_pool``).
FIGURE_PLACEHOLDER = "<!--riskon:figure:{}-->"
#: What the drawdown table says of a drawdown still open on the last day.
NOT_RECOVERED = "not recovered"
#: quantstats' glyph after "CAGR" (U+FE6A SMALL PERCENT SIGN), missing from common fonts.
SMALL_PERCENT = "\ufe6a"


@contextlib.contextmanager
def _positional_bars():
    """pandas' ``x_compat`` plotting option: bar charts of a yearly index at positions 0..n-1, as quantstats expects."""
    with pd.plotting.plot_params.use("x_compat", True):
        yield


class _SymlogRescaled:
    """pyplot as quantstats' plotting modules see it, except that switching an axis to symlog rescales its view
    and that saving a figure does not redraw it afterwards.

    quantstats sets its limits on the linear axis (margins of a linear scale: the seed's lower limit
    was -1397 %) and then calls ``yscale("symlog")``; recomputing the data limits after the switch
    gives margins in the symlog scale, so no tick appears below the lowest value plotted.

    ``pyplot.savefig`` renders the whole figure once more with Agg after writing the file (``draw_idle``, for
    interactive windows); quantstats closes the figure right after, so that render is thrown away: ~1/5 of
    the tear sheet's drawing time. ``savefig`` here writes the same file without it.
    """

    def __init__(self, pyplot) -> None:
        self._pyplot = pyplot

    def __getattr__(self, name: str):
        return getattr(self._pyplot, name)

    def yscale(self, value, **kwargs) -> None:
        """``pyplot.yscale``, then (for symlog) the view rescaled to the data in the new scale."""
        self._pyplot.yscale(value, **kwargs)
        if value == "symlog":
            ax = self._pyplot.gca()
            ax.relim()
            ax.autoscale_view()

    def savefig(self, *args, **kwargs) -> None:
        """``pyplot.savefig`` (the current figure written to the file) without the redraw that follows it."""
        self._pyplot.gcf().savefig(*args, **kwargs)


@contextlib.contextmanager
def _rescaled_symlog():
    """quantstats' plotting modules draw with ``_SymlogRescaled`` instead of pyplot while the tear sheet is made."""
    import_quantstats()
    # quantstats loads only for a tear sheet (just above, with yfinance lazy)
    from quantstats._plotting import core, wrappers

    modules = (core, wrappers)
    pyplots = [m._plt for m in modules]
    for m, pyplot in zip(modules, pyplots, strict=True):
        m._plt = _SymlogRescaled(pyplot)
    try:
        yield
    finally:
        for m, pyplot in zip(modules, pyplots, strict=True):
            m._plt = pyplot


@contextlib.contextmanager
def drawing_fixes():
    """quantstats' charts drawn right on pandas 3 / matplotlib 3.11: positional EOY bars, symlog views rescaled.

    Every tear sheet is drawn inside it; a quantstats plotting function called inside it draws the
    same figure the tear sheet embeds.
    """
    with _positional_bars(), _rescaled_symlog():
        yield


def _plain_percent(html: str) -> str:
    """The small percent sign quantstats puts in the "CAGR" key, as a plain ``%``."""
    return html.replace(SMALL_PERCENT, "%")


def drawdown_table(returns: pd.Series, n: int = 10) -> pd.DataFrame:
    """The ``n`` worst drawdowns as the tear sheet lists them: Started, Recovered, Drawdown (%), Days.

    From quantstats' own ``to_drawdown_series`` and ``drawdown_details``, ordered as quantstats orders
    them, with two fixes: "Recovered" is the first day back at the previous peak (quantstats gives the
    last day still underwater), and a drawdown still open on the last day says ``NOT_RECOVERED``
    (quantstats gives it the series' last date). "Days" stays quantstats' count of days underwater
    (to the last day for an open one).
    """
    qs = import_quantstats()
    prepared = qs.utils._prepare_returns(_naive(returns))
    dd = qs.stats.to_drawdown_series(prepared)
    details = qs.stats.drawdown_details(dd).sort_values(by="max drawdown", ascending=True)[:n]
    days = [f"{d:%Y-%m-%d}" for d in dd.index]
    position = {d: i for i, d in enumerate(days)}
    recovered = []
    for end in details["end"]:
        i = position[end]
        recovered.append(NOT_RECOVERED if i == len(days) - 1 and dd.iloc[-1] < 0 else days[i + 1])
    table = details[["start", "max drawdown", "days"]].copy()
    table.insert(1, "end", recovered)
    table.columns = ["Started", "Recovered", "Drawdown", "Days"]
    return table


_DD_TABLE = re.compile(r'(<div id="ddinfo">\s*<h3>[^<]*</h3>\s*)<table>.*?</table>', re.S)


def drawdown_rows(returns: pd.Series) -> str:
    """``drawdown_table`` rendered by quantstats' own table writer: the rows the page's drawdown table gets."""
    qs = import_quantstats()
    return qs.reports._html_table(drawdown_table(returns), False)


def put_drawdowns(html: str, rows: str) -> str:
    """The page with quantstats' drawdown table replaced by ``rows`` (``drawdown_rows``)."""
    fixed, found = _DD_TABLE.subn(lambda m: m.group(1) + rows, html, count=1)
    if found != 1:
        # quantstats' version is only named when the page lacks the table (its import is then paid for once)
        from importlib.metadata import version

        raise RuntimeError(
            f"quantstats {version('quantstats')}: the tear sheet's drawdown table was not found; riskon's fix of its "
            "Recovered column (riskon.pages.tearsheet) needs updating for this version"
        )
    return fixed


def _fix_drawdowns(html: str, returns: pd.Series) -> str:
    """Replace quantstats' drawdown table with ``drawdown_table``, rendered by quantstats' own table writer."""
    return put_drawdowns(html, drawdown_rows(returns))


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
    if getattr(result, "signal_supplied", False):  # riskon.run(signal=...): the signal was not lookahead-checked
        title += " (signal supplied, not checked)"
    if getattr(result, "lookahead_failed", None):  # run on purpose with --allow-lookahead
        title += " (lookahead check FAILED, run allowed by --allow-lookahead)"
    if result.config.target["mode"] != "single":
        title += " (survivorship bias: coin list chosen today)"
    return title


def quantstats_rf(returns: pd.Series, rate: float | pd.Series) -> float | pd.Series:
    """The ``rf`` to hand quantstats so that its Sharpe and Sortino equal riskon's (``riskon.metrics``).

    quantstats turns an annual ``rf`` into a per-period one as ``(1 + rf) ** (1 / periods) - 1`` (a float
    as it is; a Series after reindexing it on the return dates), riskon's convention at one bar a day and
    ``periods = 365``. A constant goes as it is; a yield series goes as the annual rate in force on each
    return's bar (the last value known at the bar's open, ``strategies.cash.rate_per_bar``), on the
    returns' own dates, so quantstats' forward fill never has to guess.
    """
    if not isinstance(rate, pd.Series):
        return float(rate)
    index = pd.DatetimeIndex(returns.index)
    on_bars = rate_per_bar(index if index.tz is not None else index.tz_localize("UTC"), rate, "risk_free")
    return pd.Series(on_bars, index=_naive(returns).index, name="rf")


def _run_rf(result) -> float | pd.Series:
    """A run's ``rf`` for quantstats: its constant ``risk_free``, or the annual rate in force on each day that
    gives back exactly the per-day ``result.rf`` the run's metrics used (one-day bars: ``(1 + rf)^365 - 1``)."""
    rate = result.config.portfolio.get("risk_free", 0.0)
    if not isinstance(rate, str):
        return float(rate)
    return pd.Series(np.power(1.0 + result.rf, float(PERIODS)) - 1.0, index=_naive(result.returns).index, name="rf")


class TearsheetError(ValueError):
    """A tear sheet that cannot be drawn from these returns (the reason is the message)."""


def tearsheet_skip_reason(returns: pd.Series) -> str | None:
    """Why a run gets no tear sheet, or None: quantstats regresses the strategy on its benchmark (R², beta),
    which cannot be done when every daily return is the same (a run without trades)."""
    r = returns.to_numpy(dtype="float64")
    if len(r) < 2 or float(r.max() - r.min()) == 0.0:
        return (
            "no tear sheet: the strategy's daily returns are all the same (no trades), and quantstats' "
            "regression on the benchmark needs them to vary"
        )
    return None


def write_tearsheet(result, path: str | Path, title: str | None = None) -> Path:
    """Write the quantstats tear sheet of a run ``Result`` against its benchmark (named on the page) to ``path``.

    Sharpe, Sortino and the other excess-return ratios are in excess of the run's ``[portfolio] risk_free``
    (``quantstats_rf``); the page states the cash and risk-free rates under its heading.
    """
    return write_returns_tearsheet(
        result.returns,
        result.benchmark_returns,
        path,
        title or _title(result),
        benchmark_label=result.benchmark_label,
        benchmark_text=result.benchmark_text,
        rf=_run_rf(result),
        rates=result.rates_text,
    )


def write_returns_tearsheet(
    returns: pd.Series,
    benchmark: pd.Series,
    path: str | Path,
    title: str,
    benchmark_label: str = "buy & hold",
    benchmark_text: str = "buy-and-hold of the run's targets",
    periods: int = PERIODS,
    rf: float | pd.Series = 0.0,
    rates: str = "",
) -> Path:
    """Write a quantstats tear sheet from daily returns and a benchmark already on the same calendar.

    ``benchmark_label`` names the benchmark's column, legends and heading; ``benchmark_text`` says
    in words what it is, under the heading. ``periods`` a year: 365 on riskon's calendar-day
    returns, 252 on a trading-day calendar (``riskon.bt.QuantStatsAnalyzer`` on an equity feed).
    ``rf``: quantstats' risk-free rate (``quantstats_rf``); ``rates``: the rates in words, under the heading.
    """
    reason = tearsheet_skip_reason(returns)
    if reason is not None:
        raise TearsheetError(reason)
    path = Path(path)
    fd, raw = tempfile.mkstemp(prefix="riskon-tearsheet-", suffix=".html")  # outside the reports folder
    os.close(fd)  # quantstats writes here; the page appears only once its remote links are gone
    try:
        heading = f"{title} vs {benchmark_label}"
        _write_quantstats(returns, benchmark, Path(raw), path.name, heading, benchmark_label, benchmark_text, periods,
                          rf, rates)  # fmt: skip
        text = Path(raw).read_text(encoding="utf-8")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(raw)
    text = _fix_drawdowns(_plain_percent(text), returns)
    return write_page(path, _set_title(strip_remote_links(text), title))


def run_sheet_arguments(result, path: str | Path) -> tuple[dict, str]:
    """What ``write_tearsheet(result, path)`` hands ``quantstats.reports.html`` (``html_arguments``) and the page's
    title: the parallel page (``riskon.pages.sheet_pool``) is built from exactly these."""
    title = _title(result)
    label = result.benchmark_label
    arguments = html_arguments(result.returns, result.benchmark_returns, Path(path).name, f"{title} vs {label}", label,
                               result.benchmark_text, PERIODS, _run_rf(result), result.rates_text)  # fmt: skip
    return arguments, title


def html_arguments(
    returns: pd.Series,
    benchmark: pd.Series,
    filename: str,
    title: str,
    label: str,
    text: str,
    periods: int = PERIODS,
    rf: float | pd.Series = 0.0,
    rates: str = "",
) -> dict:
    """What riskon hands ``quantstats.reports.html`` (all but ``output``), for the serial and parallel pages."""
    return {
        "returns": _naive(returns).rename("Strategy"),
        "benchmark": _naive(benchmark).rename(label),
        "rf": rf,
        "periods_per_year": periods,
        "match_dates": False,
        "title": escape(title),  # quantstats pastes the title and parameters into its HTML as they are
        "parameters": {"Benchmark is": escape(text), **({"Rates": escape(rates)} if rates else {})},
        "download_filename": filename,
    }


def finish_page(text: str, drawdowns: str, title: str) -> str:
    """quantstats' page as riskon writes it: plain "%" in CAGR, the fixed drawdown table, no remote links, its title."""
    return _set_title(strip_remote_links(put_drawdowns(_plain_percent(text), drawdowns)), title)


def _write_quantstats(
    returns: pd.Series,
    benchmark: pd.Series,
    out: Path,
    filename: str,
    title: str,
    label: str,
    text: str,
    periods: int = PERIODS,
    rf: float | pd.Series = 0.0,
    rates: str = "",
) -> None:
    with quiet_quantstats():
        # matplotlib loads only when a chart is drawn
        import matplotlib

        matplotlib.use("Agg", force=False)
        qs = import_quantstats()
        with drawing_fixes():
            qs.reports.html(
                **html_arguments(returns, benchmark, filename, title, label, text, periods, rf, rates), output=str(out)
            )
