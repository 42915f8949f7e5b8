"""The example notebook runs end to end on the snapshot, so it can never rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def test_example_notebook_executes(data_dir, tmp_path, monkeypatch):
    """Every cell runs without error and shows the data, the sweep, the robustness block and the rich result."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel makes its scratch folder here
    nb = nbformat.read(ROOT / "examples" / "claim.ipynb", as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "examples")}}
    )
    client.execute()  # the kernel inherits RISKON_DATA and the session's RISKON_CACHE
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = "\n".join(
        o.get("text", "") or o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert "^RUT" in text and "BTC-USD" in text
    assert "48 combinations" in text
    assert "PSR(0)" in text and "DSR" in text and "PBO" in text
    html = "\n".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))
    assert "<img" in html and "buy &amp; hold BTC-USD" in html and "Sharpe (365)" in html
    assert "-0.04%" in html and "53.60%" in html  # the seed run's CAGR and buy-and-hold's, as `riskon run` prints
    assert "removed " in text and not list(tmp_path.glob("riskon-notebook-*"))  # the scratch folder is gone
