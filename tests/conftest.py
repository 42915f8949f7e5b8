"""Test configuration: the snapshot folder, a fresh cache per test session, no network.

``RISKON_DATA`` defaults to ``../shared/data`` (beside the project) and tests
that need it fail loudly when it is missing — never skip silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("RISKON_DATA", str(ROOT.parent / "shared" / "data"))
DATA = Path(os.environ["RISKON_DATA"])
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The snapshot folder; fails (not skips) when it is missing."""
    if not (DATA / "RUT.csv").exists():
        pytest.fail(f"RISKON_DATA={DATA} has no RUT.csv: point RISKON_DATA at the shared snapshot folder")
    return DATA


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory) -> Path:
    """Every test session starts from an empty cache of its own."""
    root = tmp_path_factory.mktemp("riskon-cache")
    os.environ["RISKON_CACHE"] = str(root)
    return root


@pytest.fixture
def cache(tmp_path):
    """A fresh, empty cache for one test."""
    from feeds.cache import Cache

    return Cache(tmp_path / "cache")
