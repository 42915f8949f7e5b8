"""A run's identity hashes the code it uses, found by ``ast`` (``strategies.codehash``), and nothing else.

Closures are checked on a small hand-made tree whose answer is written out here, then on copies of the
real tree: adding a rule file or editing a page module changes no run id of ``runs/seed_sweep.toml``;
editing a module inside the runs' closure (``strategies/fastsim.py``, the ``prior_high`` helper the rule
uses) changes every one. The real checkout is never edited, except for one rule file dropped into
``strategies/rules/`` for a moment and removed again.
"""

from __future__ import annotations

import hashlib
import shutil
import tomllib
import uuid
from importlib import metadata
from pathlib import Path

import pytest

from riskon.sweeps import keys
from riskon.sweeps.keys import ENGINE_MODULES, code_version, engine_hash, rules_used, run_id
from riskon.sweeps.spec import combinations, parse_sweep
from strategies import codehash, rules
from strategies.codehash import closure_hash, module_closure, rule_hash

ROOT = Path(__file__).resolve().parents[2]
FPS = {"^RUT@1d": "rut-fingerprint", "BTC-USD@1d": "btc-fingerprint"}

TREE = {
    "feeds/__init__.py": "from feeds.errors import DataError\n",
    "feeds/errors.py": "class DataError(Exception):\n    pass\n",
    "feeds/unused.py": "import feeds.errors\n",
    "strategies/__init__.py": '"""docstring only"""\n',
    "strategies/a.py": (
        "import numpy as np\nfrom strategies import b\nfrom . import c as see\n\n"
        "def f():\n    from strategies.d import thing  # function-level: followed\n    return thing\n"
    ),
    "strategies/b.py": "from strategies.sub import helper\n",
    "strategies/c.py": "try:\n    import feeds.errors\nexcept ImportError:\n    pass\n",
    "strategies/d.py": "thing = 1\n",
    "strategies/sub/__init__.py": "from .leaf import helper\n",
    "strategies/sub/leaf.py": "def helper():\n    return 1\n",
    "strategies/sub/other.py": "import riskon.page\n",
    "riskon/__init__.py": (
        "from riskon.version import V\n\ndef __getattr__(name):\n    from riskon import page  # lazy\n    return page\n"
    ),
    "riskon/version.py": "V = '1'\n",
    "riskon/page.py": "import strategies.sub.other\n",
    "riskon/runner.py": "from strategies.a import f\nfrom pandas import DataFrame\n",
}


@pytest.fixture
def tree(tmp_path):
    """The hand-made tree above, written to a temporary folder."""
    for rel, text in TREE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    codehash.clear_cache()
    yield tmp_path
    codehash.clear_cache()


def test_closure_follows_every_import_of_a_module_named_by_import(tree):
    # riskon.runner -> strategies.a (top level) -> b, c (relative), d (function level) -> sub -> sub.leaf;
    # c -> feeds.errors (inside try). Parents run implicitly: feeds (its top-level import: feeds.errors),
    # strategies, strategies.sub, riskon (its top-level import riskon.version, not the lazy riskon.page).
    assert module_closure(["riskon.runner"], tree) == [
        "feeds", "feeds.errors", "riskon", "riskon.runner", "riskon.version", "strategies", "strategies.a",
        "strategies.b", "strategies.c", "strategies.d", "strategies.sub", "strategies.sub.leaf",
    ]  # fmt: skip
    # named by import, riskon.page is followed whole, and brings strategies.sub.other with it
    assert "strategies.sub.other" in module_closure(["riskon.page"], tree)


def test_closure_hash_is_the_sorted_name_and_content_pairs_plus_library_versions(tree):
    h = hashlib.sha256()
    for name in module_closure(["strategies.b"], tree):  # strategies, strategies.b, strategies.sub, sub.leaf
        rel = name.replace(".", "/")
        path = tree / f"{rel}/__init__.py" if (tree / rel).is_dir() else tree / f"{rel}.py"
        content = path.read_bytes()
        h.update(f"module {name} {len(content)}\n".encode())
        h.update(content)
    for lib in ("numpy", "pandas", "numba", "backtrader", "pandas_market_calendars"):
        h.update(f"library {lib} {metadata.version(lib)}\n".encode())
    assert closure_hash(["strategies.b"], tree) == h.hexdigest()


def test_only_edits_inside_the_closure_change_the_hash(tree, monkeypatch):
    before = closure_hash(["riskon.runner"], tree)
    (tree / "riskon/page.py").write_text("import strategies.sub.other\nX = 2\n", encoding="utf-8")
    (tree / "strategies/sub/other.py").write_text("X = 3\n", encoding="utf-8")
    (tree / "strategies/new_rule.py").write_text("import strategies.a\n", encoding="utf-8")
    codehash.clear_cache()
    assert closure_hash(["riskon.runner"], tree) == before
    (tree / "strategies/d.py").write_text("thing = 2\n", encoding="utf-8")  # reached through a function
    codehash.clear_cache()
    assert closure_hash(["riskon.runner"], tree) != before
    (tree / "strategies/d.py").write_text("thing = 1\n", encoding="utf-8")
    codehash.clear_cache()
    assert closure_hash(["riskon.runner"], tree) == before
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda lib: "0.0" if lib == "numba" else real(lib))
    codehash.clear_cache()
    assert closure_hash(["riskon.runner"], tree) != before


def test_engine_closures_hold_no_page_and_no_rule_file():
    for engine, modules in ENGINE_MODULES.items():
        closure = module_closure(modules)
        assert "strategies.rules" in closure, engine  # the registry itself is used
        assert not [m for m in closure if m.startswith(("riskon.pages", "riskon.cli", "riskon.api", "riskon.analysis"))]
        assert not [m for m in closure if m.startswith("strategies.rules.")], engine
    rule = module_closure(["strategies.rules.ath_confirmed"])
    assert {"strategies.indicators", "strategies.rules", "strategies.rules.ath_confirmed"} <= set(rule)
    assert [m for m in rule if m.startswith("strategies.rules.")] == ["strategies.rules.ath_confirmed"]
    assert all(m.split(".")[0] == "strategies" for m in rule)  # a rule reads no data layer and no riskon
    assert "strategies.indicators" not in module_closure(["strategies.rules.idx_age_max"])


def seed_configs():
    text = (ROOT / "runs" / "seed_sweep.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    combos, _ = combinations(raw, parse_sweep(raw))
    return [cfg for _, cfg in combos]


def ids(configs) -> dict[str, list[str]]:
    return {engine: [run_id(c, FPS, engine) for c in configs] for engine in ENGINE_MODULES}


@pytest.fixture
def copy_root(tmp_path, monkeypatch):
    """A copy of feeds/, strategies/ and riskon/ that the hasher reads instead of the checkout."""
    for pkg in ("feeds", "strategies", "riskon"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nb*"))
    monkeypatch.setattr(codehash, "ROOT", tmp_path)
    codehash.clear_cache()
    yield tmp_path
    codehash.clear_cache()


def test_a_new_rule_file_and_a_page_edit_change_no_run_id(copy_root):
    configs = seed_configs()
    assert len(configs) == 48 and {tuple(rules_used(c)) for c in configs} == {("ath_confirmed",)}
    before = ids(configs)
    assert len(set(before["fast"])) == 48 and not set(before["fast"]) & set(before["backtrader"])
    sweep_code = code_version("fast", configs)
    (copy_root / "strategies/rules/a_new_rule.py").write_text(
        (copy_root / "strategies/rules/n_day_high.py").read_text().replace("n_day_high", "a_new_rule"), "utf-8"
    )
    for page in ("riskon/pages/sweep_page.py", "riskon/pages/html.py", "riskon/analysis/robustness.py"):
        with (copy_root / page).open("a", encoding="utf-8") as f:
            f.write("\nEDITED = True\n")
    with (copy_root / "strategies/rules/n_day_high.py").open("a", encoding="utf-8") as f:
        f.write("\n# a rule the runs do not use\n")
    codehash.clear_cache()
    assert ids(configs) == before
    assert code_version("fast", configs) == sweep_code


@pytest.mark.parametrize(
    ("module", "changed"),
    [
        ("strategies/fastsim.py", {"fast", "backtrader"}),  # riskon.runner imports it inside a function
        ("strategies/strategy.py", {"fast", "backtrader"}),  # strategies.backtest imports it inside a function
        ("riskon/sweeps/chunks.py", {"fast"}),  # only the fast engine's sweeps run through it
        ("strategies/indicators.py", {"fast", "backtrader"}),  # prior_high, used by ath_confirmed
        ("strategies/rules/ath_confirmed.py", {"fast", "backtrader"}),
    ],
)
def test_an_edit_inside_the_closure_changes_every_run_id(copy_root, module, changed):
    configs = seed_configs()
    before = ids(configs)
    with (copy_root / module).open("a", encoding="utf-8") as f:
        f.write("\n# edited\n")
    codehash.clear_cache()
    after = ids(configs)
    for engine in ENGINE_MODULES:
        if engine in changed:
            assert not set(after[engine]) & set(before[engine]), engine
        else:
            assert after[engine] == before[engine], engine


def test_a_rule_file_dropped_into_the_checkout_changes_no_run_id():
    configs = seed_configs()[:4]
    codehash.clear_cache()
    before = ids(configs), engine_hash("fast"), rule_hash("ath_confirmed")
    name = f"zz_identity_{uuid.uuid4().hex[:8]}"
    path = ROOT / "strategies" / "rules" / f"{name}.py"
    try:
        path.write_text(
            (ROOT / "strategies/rules/n_day_high.py").read_text(encoding="utf-8").replace("n_day_high", name), "utf-8"
        )
        assert name in rules.available()
        codehash.clear_cache()
        assert rule_hash(name) != rule_hash("n_day_high")
        assert (ids(configs), engine_hash("fast"), rule_hash("ath_confirmed")) == before
    finally:
        path.unlink(missing_ok=True)
        rules.refresh()
        codehash.clear_cache()


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="unknown engine 'auto'; valid: backtrader, fast"):
        keys.engine_hash("auto")
