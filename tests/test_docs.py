"""The docs site builds with warnings as errors, and the CLI reference it renders covers every command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path):
    """`mkdocs build --strict`: a broken link, a missing page, a README snippet or docstring gone, fails."""
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    cli = (site / "reference" / "cli" / "index.html").read_text()
    from typer.main import get_command

    from riskon.cli import app

    group = get_command(app)
    for name, cmd in group.commands.items():
        assert f"riskon {name}" in cli, f"CLI reference lacks `riskon {name}`"
        for sub in getattr(cmd, "commands", {}) or {}:
            assert f"riskon {name} {sub}" in cli
    concepts = (site / "concepts" / "index.html").read_text()
    assert "<svg" in concepts and "as-of" in concepts.lower()
    assert "confirmed" in concepts and "365" in concepts
    api = (site / "reference" / "api" / "index.html").read_text()
    assert "riskon.run.run" in api or "riskon.api" in api
    # every page opens offline: the theme must not pull scripts or styles from a CDN
    for page in site.rglob("*.html"):
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', page.read_text())
        assert not remote, f"{page.relative_to(site)} loads {remote}"
