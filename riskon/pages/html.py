"""Self-contained HTML pages for every riskon report, and the ``reports/index.html`` that links them.

Every page opens offline: inline CSS, pictures embedded as base64 PNG, no
scripts, fonts or icons from the network. Every string that came from a
config or the data goes through ``esc`` (a run named ``<script>`` shows as
text), and tables are rendered with escaping on.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pandas as pd

from riskon.pages.files import ensure_folder, write_text
from riskon.pages.paths import inside

if TYPE_CHECKING:  # matplotlib loads with the first figure: the CLI and sweep workers import this module
    from matplotlib.figure import Figure

#: The environment variable naming the reports folder (default ``reports``).
REPORTS_ENV = "RISKON_REPORTS"

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;
padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.sub{color:#666;margin-top:0}.note{color:#555;font-size:.9em;background:#f6f6f6;padding:.6em .8em;
border-left:3px solid #bbb}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
.table{max-width:100%;overflow-x:auto}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f3f3f3}
td{white-space:nowrap}
td:first-child,th:first-child{text-align:left}.text td{text-align:left;white-space:normal}
img{max-width:100%;height:auto;border:1px solid #eee}
pre,code{white-space:pre-wrap;overflow-wrap:anywhere}p,li{overflow-wrap:anywhere}
a{color:#1f4e79}
"""


def reports_dir() -> Path:
    """The folder reports are written under: ``$RISKON_REPORTS`` or ``./reports``."""
    return Path(os.environ.get(REPORTS_ENV) or "reports")


def report_path(*names: object) -> Path:
    """A default report path ``reports/<name>/.../<file>`` from sanitised names, checked to stay in the folder.

    Sweep names and run ids come from the store, which anyone may have written: ``../../x`` becomes
    ``_.._x`` and can never lead outside ``reports_dir()`` (``riskon.pages.paths``).
    """
    return inside(reports_dir(), *names)


def esc(value: object) -> str:
    """HTML-escape any value's text (quotes included)."""
    return html.escape(str(value), quote=True)


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None, index: bool = True) -> str:
    """An escaped HTML table; ``formats`` maps a column or index label to a format string like ``{:.2%}``.

    Cells do not wrap (a date stays ``2017-09-15``, a number on one line); the table sits in a
    ``<div class="table">`` that scrolls sideways when it is wider than the page, so no table
    widens the page itself.
    """
    formats = formats or {}
    shown = frame.copy().astype(object)
    for col in shown.columns:
        fmt = formats.get(str(col))
        if fmt:
            shown[col] = [_fmt(v, fmt) for v in frame[col]]
    if index and formats and any(str(i) in formats for i in shown.index):  # row-wise formats (metric tables)
        for i in shown.index:
            fmt = formats.get(str(i))
            if fmt:
                shown.loc[i] = [_fmt(v, fmt) for v in frame.loc[i]]
    shown = shown.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else v)
    return f'<div class="table">{shown.to_html(index=index, escape=True, border=0)}</div>'


def _fmt(value: object, fmt: str) -> object:
    try:
        if value is None or (isinstance(value, float) and value != value):
            return ""
        return fmt.format(value)
    except (ValueError, TypeError):
        return value


def figure(fig: Figure, alt: str) -> str:
    """A matplotlib figure as an inline ``<img>`` (base64 PNG)."""
    # matplotlib loads only when a chart is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    literal_text(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def literal_text(fig: Figure) -> Figure:
    """Draw every text of ``fig`` as written: a name holding ``$`` (a symbol, a folder) is not TeX math.

    Matplotlib parses text between two ``$`` as mathtext and fails on what isn't; none of riskon's labels
    are meant as math, so every text artist is set to plain before the figure is drawn. Tick labels that a
    number formatter writes (a log axis's ``10^6`` is mathtext) keep their math: only labels given as text
    (a ``FixedFormatter``: parameter values, symbols) come from the data.
    """
    # matplotlib loads only when a chart is drawn
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter

    formatted = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for formatter, ticks in ((axis.get_major_formatter(), axis.get_major_ticks()),
                                     (axis.get_minor_formatter(), axis.get_minor_ticks())):  # fmt: skip
                if not isinstance(formatter, FixedFormatter):
                    formatted.update(id(label) for t in ticks for label in (t.label1, t.label2))
    for text in fig.findobj(Text):
        if id(text) not in formatted:
            text.set_parse_math(False)
    return fig


def new_figure(width: float = 12, height: float = 5) -> Figure:
    """A figure on an Agg canvas: no pyplot, no display."""
    # matplotlib loads only when a chart is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def page(title: str, sections: Iterable[str], subtitle: str = "") -> str:
    """A whole page; ``title`` and ``subtitle`` are escaped, ``sections`` are trusted HTML built with ``esc``."""
    sub = f'<p class="sub">{esc(subtitle)}</p>' if subtitle else ""
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
        f"<body><h1>{esc(title)}</h1>{sub}\n{body}\n"
        f'<p class="sub">written by riskon {esc(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))}</p>'
        "</body></html>\n"
    )


def write_page(path: str | Path, html_text: str, update_index: bool = True) -> Path:
    """Write a page atomically, then refresh the index of the reports folder it lies in (if any)."""
    path = write_text(path, html_text)
    if update_index:
        refresh_index(path)
    return path


def refresh_index(path: str | Path) -> Path | None:
    """Rewrite ``index.html`` of the reports folder when ``path`` lies inside it; None when it does not.

    Every writer of a report (pages, tear sheets, ``riskon run``'s outputs) calls this, so the
    index always lists what is on disk.
    """
    root = reports_dir()
    try:
        Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return write_index(root)


_TITLE = re.compile(r"<title>(.*?)</title>", re.S | re.I)


#: Files the index links: HTML reports and the PNG charts written beside them.
INDEXED = ("*.html", "*.png")


def write_index(root: str | Path | None = None) -> Path:
    """Write ``index.html`` in the reports folder, linking every report (and chart) under it, newest first."""
    root = ensure_folder(Path(root) if root is not None else reports_dir())
    rows = []
    for p in sorted({f for pattern in INDEXED for f in root.rglob(pattern)}):
        if p.name == "index.html" and p.parent == root:
            continue
        rel = p.relative_to(root)
        if p.suffix == ".html":
            head = p.read_text(encoding="utf-8", errors="replace")[:4000]
            m = _TITLE.search(head)
            title = html.unescape(m.group(1)).strip() if m else p.stem
        else:
            title = f"{rel.parent.as_posix()}: {p.stem} chart" if rel.parent.parts else f"{p.stem} chart"
        rows.append((p.stat().st_mtime, rel.as_posix(), title or p.stem))
    rows.sort(key=lambda r: (-r[0], r[1]))
    items = "\n".join(
        f'<tr><td><a href="{esc(_href(rel))}">{esc(title)}</a></td><td>{esc(rel)}</td>'
        f"<td>{esc(time.strftime('%Y-%m-%d %H:%M', time.gmtime(mtime)))}</td></tr>"
        for mtime, rel, title in rows
    )
    body = (
        f'<table id="reports" class="text"><tr><th>report</th><th>file</th><th>written (UTC)</th></tr>{items}</table>'
        if rows
        else "<p>No reports yet: run <code>riskon run runs/seed.toml</code>.</p>"
    )
    return write_page(root / "index.html", page("riskon reports", [body], f"{len(rows)} reports, newest first"),
                      update_index=False)  # fmt: skip


def _href(rel: str) -> str:
    """A relative link to a file: each path part percent-encoded (names may hold '#', '?', '%' or spaces)."""

    return "/".join(quote(part) for part in rel.split("/"))
