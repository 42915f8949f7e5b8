"""The house rules of docs/architecture.md, checked on the source with ``ast``.

Every import statement counts: at module level, inside functions and under ``TYPE_CHECKING``
(hiding an import in a function does not remove an arrow). The wings of ``riskon`` are ranked from
the top (``cli``) to the base (``runner``, ``config``, ``metrics``); an import may only point down
or sideways, and the graph of ``feeds``, ``strategies`` and ``riskon`` has no circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("feeds", "strategies", "riskon")
#: riskon's wings from the top; a module may import its own wing or any wing below it. A tuple is one rank:
#: the backtrader plugin ``riskon.bt`` is a facade beside ``riskon.api`` (its analyzer needs the pages).
WINGS = ["riskon.cli", ("riskon.api", "riskon.bt"), "riskon.pages", "riskon.analysis", "riskon.sweeps", "riskon"]
#: The public API names of ``riskon`` (no module or package may share one).
API_NAMES = {"compare", "events", "load", "null", "read_config", "results", "run", "status", "sweep", "walkforward"}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = f
    return mods


MODULES = _modules()


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The project modules an import statement loads (``from riskon import config`` loads ``riskon.config``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            pkg = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                pkg = pkg.rpartition(".")[0]
            base = f"{pkg}.{base}".strip(".")
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    out = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module and not module.startswith(name + "."):
            out.append(name)
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, f in MODULES.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                graph[m].update(_targets(m, node))
    return graph


GRAPH = _graph()


def _wing(module: str) -> int | None:
    for rank, wing in enumerate(WINGS):
        for name in wing if isinstance(wing, tuple) else (wing,):
            if module == name or module.startswith(name + "."):
                return rank
    return None


def test_the_graph_sees_function_level_and_type_checking_imports():
    """The checker itself: known arrows from inside a function and from a TYPE_CHECKING block are found."""
    assert "riskon.pages.run_page" in GRAPH["riskon.api"]  # imported inside Result.write
    assert "riskon.analysis.walk_forward" in GRAPH["riskon.cli.walkforward_cmd"]  # TYPE_CHECKING and in a function
    assert "riskon.config" in GRAPH["riskon.api"]  # `import riskon.config as config_mod`


def test_no_import_circles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert circles == []


def test_data_flows_one_way_feeds_strategies_riskon():
    bad = [
        (m, t)
        for m, ts in GRAPH.items()
        for t in ts
        if (m.startswith("feeds") and not t.startswith("feeds"))
        or (m.startswith("strategies") and t.startswith("riskon"))
    ]
    assert bad == []


def test_riskon_wings_import_only_downward():
    upward = []
    for m, ts in GRAPH.items():
        if not m.startswith("riskon.") or m == "riskon":
            continue
        for t in ts:
            if t.startswith("riskon") and t != "riskon" and _wing(t) < _wing(m):
                upward.append((m, t))
    assert upward == []
    assert all(t != "riskon" for m, ts in GRAPH.items() if m != "riskon" for t in ts), "import the wing, not riskon"


def test_only_the_cli_and_the_lazy_init_import_the_api():
    users = sorted(m for m, ts in GRAPH.items() if "riskon.api" in ts)
    assert all(m == "riskon" or m.startswith("riskon.cli") for m in users), users


def test_nothing_below_the_api_imports_the_backtrader_plugin():
    """``riskon.bt`` ranks with the API: only the CLI, the API and the lazy ``riskon/__init__`` may import it."""
    users = sorted(m for m, ts in GRAPH.items() if "riskon.bt" in ts)
    assert all(m == "riskon" or _wing(m) <= _wing("riskon.api") for m in users), users
    assert _wing("riskon.bt") == _wing("riskon.api") < _wing("riskon.pages")


def test_no_module_or_package_is_named_like_an_api_function():
    clashes = [m for m in MODULES if m.startswith("riskon.") and m.rpartition(".")[2] in API_NAMES]
    assert clashes == []
    assert "_Package" not in (ROOT / "riskon" / "__init__.py").read_text(encoding="utf-8")


def test_lookahead_core_lives_beside_the_rules():
    assert "strategies.lookahead" in MODULES
    assert not any(m.endswith("lookahead") for m in MODULES if m.startswith("riskon"))


def test_no_module_is_too_long():
    long = {m: n for m, f in MODULES.items() if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_function_level_import_says_why():
    """A function-local import keeps a heavy dependency lazy (or its import cost off a hot start): a comment says so."""
    silent = []
    for f in MODULES.values():
        lines = f.read_text(encoding="utf-8").splitlines()
        local = {
            node.lineno: node.end_lineno
            for fn in ast.walk(ast.parse("\n".join(lines)))
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(fn)
            if isinstance(node, ast.Import | ast.ImportFrom)
        }
        where = f.relative_to(ROOT)
        silent += [f"{where}:{a}" for a, b in sorted(local.items()) if not _has_reason(lines, a - 1, b - 1)]
    assert silent == [], f"{len(silent)} function-level imports without a reason: {silent[:20]}"


def _has_reason(lines: list[str], first: int, last: int) -> bool:
    """A comment on the import's own lines, or on a line above the run of imports it belongs to."""
    if any("#" in lines[i] for i in range(first, last + 1)):
        return True
    for i in range(first - 1, -1, -1):
        s = lines[i].strip()
        if s.startswith("#") or (s.startswith(("from ", "import ")) and "#" in s):
            return True
        if not (s.startswith(("from ", "import ")) or s.endswith(",") or s == ")" or s == ""):
            return False  # a blank line only separates import groups (isort) within one run of imports
    return False


@pytest.mark.parametrize("wing", ["cli", "pages", "analysis", "sweeps"])
def test_each_wing_is_a_package(wing):
    assert (ROOT / "riskon" / wing / "__init__.py").exists()


def test_tests_import_shared_helpers_never_another_test_module():
    """Shared helpers live in tests/support; a test module is never imported by another."""
    offenders = []
    for f in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{f.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert offenders == []


def test_every_test_starts_riskon_the_same_way():
    """Subprocesses start the command through support.clitools.riskon_cmd, never a bare `riskon` on PATH."""
    bare = []
    for f in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("run", "Popen", "check_output")):
                continue
            args = node.args[0] if node.args else None
            first = args.elts[0] if isinstance(args, ast.List) and args.elts else None
            if isinstance(first, ast.Constant) and first.value == "riskon":
                bare.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert bare == []
