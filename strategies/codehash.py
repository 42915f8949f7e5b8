"""What code a result depends on: the import closure of a module set, found with ``ast``, and its hash.

A run's identity must change when code that can change its numbers changes, and only then.
``module_closure`` reads the source files (nothing is imported) and follows every import
statement — function-level and ``TYPE_CHECKING`` ones included — into the project's packages
(``feeds``, ``strategies``, ``riskon``); third-party modules are not followed, the versions of
the libraries that can change the numbers are hashed instead (``LIBRARIES``).

Rules: ``from a.b import c`` names module ``a.b.c`` when that file exists, else ``a.b``; relative
imports resolve against the importing module. A package whose ``__init__`` only runs because one
of its submodules is imported (``riskon`` for ``riskon.runner``) contributes its file and the
imports at its top level, not those inside its functions: ``riskon/__init__.py`` resolves the
API lazily inside ``__getattr__``, and following that would put every page in every run's closure.
A module imported by name is followed whole. Rule files, which the registry loads dynamically, are
not in an engine's closure: ``rule_hash`` gives each rule's own.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from collections.abc import Iterable
from functools import lru_cache
from importlib import metadata
from pathlib import Path

#: Top-level packages of the project: imports into these are followed
PROJECT_PACKAGES = ("feeds", "strategies", "riskon")
#: Libraries whose version can change a run's numbers
LIBRARIES = ("numpy", "pandas", "numba", "backtrader", "pandas_market_calendars")
#: The checkout holding the project packages
ROOT = Path(__file__).resolve().parents[1]


def module_closure(modules: Iterable[str], root: str | Path | None = None) -> list[str]:
    """Sorted names of ``modules`` and every project module they import, directly or not.

    ``root`` is the folder holding the project packages (default: this checkout); tests point it
    at a copy of the tree. A name that is no project module (a plugin's) is resolved by Python's
    import system and kept, its project imports followed.
    """
    return list(_closure(tuple(sorted(set(modules))), _root(root)))


def closure_hash(modules: Iterable[str], root: str | Path | None = None) -> str:
    """SHA-256 hex digest of the closure's sorted (module name, file content) pairs and ``LIBRARIES``' versions.

    Cached per process (a long-lived process runs the code it imported, not later edits).
    """
    return _hash(tuple(sorted(set(modules))), _root(root))


def rule_hash(rule_name: str, root: str | Path | None = None) -> str:
    """``closure_hash`` of the module defining the registered rule ``rule_name`` (unknown names raise ValueError).

    Cached per process like ``closure_hash``: a sweep asks once per run.
    """
    return _rule_hash(rule_name, _root(root))


@lru_cache(maxsize=256)
def _rule_hash(rule_name: str, root: str) -> str:
    # the registry imports pandas; a hash of engine modules alone must not
    from strategies import rules

    return _hash((rules.get(rule_name).__module__,), root)


@lru_cache(maxsize=64)
def _root(root: str | Path | None) -> str:
    return str(Path(root or ROOT).resolve())


def library_versions() -> dict[str, str]:
    """Installed version of each of ``LIBRARIES`` ("absent" when not installed)."""
    return dict(_versions())


def clear_cache() -> None:
    """Forget every cached file, closure and hash (after editing source files in this process)."""
    for cached in (_parse, _closure, _hash, _versions, _rule_hash, _root):
        cached.cache_clear()


@lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    out = []
    for lib in LIBRARIES:
        try:
            out.append((lib, metadata.version(lib)))
        except metadata.PackageNotFoundError:
            out.append((lib, "absent"))
    return tuple(out)


@lru_cache(maxsize=256)
def _hash(modules: tuple[str, ...], root: str) -> str:
    h = hashlib.sha256()
    for name in _closure(modules, root):
        content = _parse(name, root)[0]
        h.update(f"module {name} {len(content)}\n".encode())
        h.update(content)
    for lib, version in _versions():
        h.update(f"library {lib} {version}\n".encode())
    return h.hexdigest()


@lru_cache(maxsize=256)
def _closure(modules: tuple[str, ...], root: str) -> tuple[str, ...]:
    seen: dict[str, bool] = {}  # module -> followed whole (False: only its top-level imports)
    todo = [(m, True) for m in modules]
    while todo:
        name, whole = todo.pop()
        if seen.get(name) is True or (name in seen and not whole):
            continue
        seen[name] = whole
        _, everywhere, top = _parse(name, root)
        todo += [(m, True) for m in (everywhere if whole else top)]
        parts = name.split(".")
        todo += [(".".join(parts[:i]), False) for i in range(1, len(parts)) if _is_project(parts[0])]
    return tuple(sorted(seen))


def _is_project(top: str) -> bool:
    return top in PROJECT_PACKAGES


def _file_of(name: str, root: str) -> tuple[str | None, bool]:
    """The source file of module ``name`` and whether it is a package; None when it has none."""
    if _is_project(name.split(".")[0]):
        base = Path(root, *name.split("."))
        if (base / "__init__.py").is_file():
            return str(base / "__init__.py"), True
        if base.with_suffix(".py").is_file():
            return str(base.with_suffix(".py")), False
        return None, False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None, False
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None, False
    return spec.origin, spec.submodule_search_locations is not None


@lru_cache(maxsize=1024)
def _parse(name: str, root: str) -> tuple[bytes, tuple[str, ...], tuple[str, ...]]:
    """(source, project modules named by any import, those named by top-level imports) of module ``name``.

    A name with no source file (an import that would fail) has empty source and no imports.
    """
    path, is_package = _file_of(name, root)
    if path is None:
        return b"", (), ()
    content = Path(path).read_bytes()
    tree = ast.parse(content, filename=path)
    package = name if is_package else name.rpartition(".")[0]
    everywhere: list[str] = []
    top: list[str] = []
    for node, in_function in _imports(tree):
        found = [m for m in _named(node, package, root) if _is_project(m.split(".")[0])]
        everywhere += found
        if not in_function:
            top += found
    return content, tuple(dict.fromkeys(everywhere)), tuple(dict.fromkeys(top))


def _imports(tree: ast.Module):
    """Every import statement of ``tree`` with whether it sits inside a function or class body.

    Imports are statements: only statement bodies are walked, not expressions (keeps it cheap).
    """
    stack = [(stmt, False) for stmt in tree.body]
    while stack:
        node, inside = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, inside
            continue
        nested = inside or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(node, field, ()):
                if isinstance(child, ast.stmt | ast.ExceptHandler | ast.match_case):
                    stack.append((child, nested))


def _named(node: ast.Import | ast.ImportFrom, package: str, root: str) -> list[str]:
    """The modules an import statement names (a ``from`` import of a submodule names the submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - (node.level - 1)] if package else []
        base = ".".join([*parent, base] if base else parent)
    if not base:
        return []
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        is_module = alias.name != "*" and _is_project(base.split(".")[0]) and _file_of(sub, root)[0] is not None
        out.append(sub if is_module else base)
    return out
