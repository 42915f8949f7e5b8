"""The docs site as a reader gets it: built with ``mkdocs build --strict``, then the built HTML checked.

`--strict` catches broken Markdown links and missing pages, not what the browser shows: a quote in
``site_description`` once closed the ``<meta>`` tag early and printed its tail above every page, and
lists pulled in without a blank line before them rendered as one run-on paragraph. These tests read
the built pages the way a browser would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIG = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
#: Markdown pages written by hand (the CLI and API references are generated into theirs).
SOURCES = sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+\S")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once for this module from the project root, exactly as CI builds it."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-4000:]
    return out


def pages(site: Path) -> list[Path]:
    found = sorted(site.rglob("*.html"))
    assert len(found) >= len(SOURCES)
    return found


def built(site: Path, source: Path) -> Path:
    """The HTML page a Markdown page becomes (the offline plugin turns directory URLs off)."""
    return site / source.relative_to(DOCS).with_suffix(".html")


class Page(HTMLParser):
    """One built page: stray text in <head>, the article's paragraphs and list items, links, ids."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.stray_in_head: list[str] = []
        self.meta: dict[str, str] = {}
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.styles: list[str] = []
        self.ids: set[str] = set()
        self.article_depth: int | None = None
        self.paragraphs: list[str] = []
        self.items = 0
        self.mermaid = False
        self._para: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta" and a.get("name"):
            self.meta[a["name"]] = a.get("content") or ""
        for key in ("href", "src", "srcset", "data", "poster", "action", "formaction"):
            if a.get(key):
                self.refs.append((tag, key, a[key]))
        if a.get("style"):
            self.styles.append(a["style"])
        if a.get("id"):
            self.ids.add(a["id"])
        if "mermaid" in (a.get("class") or "").split():
            self.mermaid = True
        if tag in VOID:
            return
        self.stack.append(tag)
        if (tag == "article" or a.get("role") == "main") and self.article_depth is None:  # the page's content
            self.article_depth = len(self.stack)
        if self.article_depth is not None:
            if tag == "p":
                self._para = []
            elif tag == "li":
                self.items += 1

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag not in self.stack:
            return
        while self.stack:
            top = self.stack.pop()
            if top == "p" and self._para is not None:
                self.paragraphs.append("".join(self._para))
                self._para = None
            if self.article_depth is not None and len(self.stack) < self.article_depth:
                self.article_depth = None
            if top == tag:
                break

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "head" and data.strip():
            self.stray_in_head.append(data.strip())
        if self.stack and self.stack[-1] == "style":
            self.styles.append(data)
        if self._para is not None:
            self._para.append(data)


def parse(page: Path) -> Page:
    return Page(page.read_text(encoding="utf-8"))


def test_nothing_stray_before_the_content(site):
    """No text node in <head> or before <body>'s first element; the description survives intact."""
    for page in pages(site):
        text = page.read_text(encoding="utf-8")
        doc = parse(page)
        where = page.relative_to(site)
        assert doc.stray_in_head == [], f"{where}: text inside <head>: {doc.stray_in_head}"
        body = re.search(r"<body[^>]*>(.*?)<", text, re.S)
        assert body and not body.group(1).strip(), f"{where}: text before the first element of <body>"
        assert doc.meta.get("description") == CONFIG["site_description"], where
    assert not re.search(r'["<>&]', CONFIG["site_description"]), "the theme writes site_description unescaped"


def test_every_markdown_list_is_rendered_as_a_list(site):
    """A list needs a blank line before it: otherwise its items run on inside the paragraph above."""
    for source in SOURCES:
        doc = parse(built(site, source))
        where = source.relative_to(DOCS)
        run_on = [p for p in doc.paragraphs if any(LIST_ITEM.match(line) for line in p.splitlines())]
        assert run_on == [], f"{where}: a list rendered as text inside a paragraph: {run_on[0][:200]!r}"
        assert doc.items >= count_list_items(source), f"{where}: fewer <li> than Markdown list items"


def count_list_items(source: Path) -> int:
    """List items in a Markdown page, outside fenced code blocks."""
    n, fence = 0, None
    for line in source.read_text(encoding="utf-8").splitlines():
        mark = re.match(r"^\s*(```|~~~)", line)
        if mark:
            fence = None if fence == mark.group(1) else fence or mark.group(1)
            continue
        if fence is None and LIST_ITEM.match(line):
            n += 1
    return n


def test_no_broken_internal_link(site):
    """Every relative href/src resolves to a file in the built site, and every #anchor to an id."""
    ids: dict[Path, set[str]] = {}
    broken = []
    for page in pages(site):
        if page.name == "404.html" and page.parent == site:
            continue  # served by a web server at any depth, so MkDocs links it from the site root; not for file://
        for tag, attr, value in parse(page).refs:
            if attr == "srcset" or re.match(r"^[a-z][a-z0-9+.-]*:", value, re.I):
                continue  # http(s):, mailto:, data: -- remote ones are test_nothing_loaded_from_the_network's
            if value.startswith("//") or value.startswith("/"):
                broken.append((page.relative_to(site), value, "absolute path: the site must open from file://"))
                continue
            url = urlsplit(value)
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append((page.relative_to(site), value, "missing"))
            elif url.fragment and target.suffix == ".html" and tag == "a":
                if target not in ids:
                    ids[target] = parse(target).ids
                if unquote(url.fragment) not in ids[target]:
                    broken.append((page.relative_to(site), value, "no such anchor"))
    assert broken == []


REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)
REMOTE_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*(?:https?:)?//""", re.I)


def test_nothing_loaded_from_the_network(site):
    """Fonts, scripts, styles, images and frames are all local; only plain outbound <a href> links leave."""
    remote = []
    for page in pages(site):
        doc = parse(page)
        where = page.relative_to(site)
        for tag, attr, value in doc.refs:
            urls = [v.split()[0] for v in value.split(",")] if attr == "srcset" else [value]
            if tag != "a" and any(REMOTE.match(u) for u in urls):
                remote.append((where, tag, value))
        remote += [(where, "style", s[:80]) for s in doc.styles if REMOTE_URL.search(s)]
        if doc.mermaid:
            remote.append((where, "mermaid", "the theme loads mermaid.js from a CDN"))
    for css in site.rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        remote += [(css.relative_to(site), "css", m.group(0)) for m in REMOTE_URL.finditer(text)]
    assert remote == []


def test_no_snippet_left_unresolved(site):
    """Pages hold their own text: a leftover ``--8<--`` include would print as text."""
    for page in pages(site):
        assert "--8&lt;--" not in page.read_text(encoding="utf-8") and "--8<--" not in page.read_text(
            encoding="utf-8"
        ), page


def test_every_page_is_in_the_nav(site):
    def nav_files(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [f for v in node.values() for f in nav_files(v)]
        return [f for v in node for f in nav_files(v)]

    assert sorted(nav_files(CONFIG["nav"])) == sorted(str(p.relative_to(DOCS)) for p in SOURCES)


def test_the_generated_references_cover_the_code(site):
    """The CLI reference lists every command; the API reference and the concepts page are there."""
    from typer.main import get_command

    from riskon.cli import app

    cli = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    group = get_command(app)
    for name, cmd in group.commands.items():
        assert f"riskon {name}" in cli, f"CLI reference lacks `riskon {name}`"
        for sub in getattr(cmd, "commands", {}) or {}:
            assert f"riskon {name} {sub}" in cli
    api = (site / "reference" / "api.html").read_text(encoding="utf-8")
    assert "riskon.api" in api and "riskon.runner" in api
    concepts = (site / "concepts.html").read_text(encoding="utf-8")
    assert "<svg" in concepts and "as-of" in concepts.lower()
    assert "confirmed" in concepts and "365" in concepts
