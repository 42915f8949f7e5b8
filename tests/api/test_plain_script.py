"""``riskon.sweep(..., workers=2)`` in a plain script without ``if __name__ == "__main__":``.

A spawn worker re-imports its parent's main script; riskon's workers need none of it, so they start without
it. The script's top-level line must print once, the sweep must store every run, and no traceback appears.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = """\
    import riskon

    print("script top level")
    sw = riskon.sweep(
        {{
            "name": "noguard_{engine}",
            "data": {{"start": "2020-01-01", "end": "2021-12-31"}},
            "strategy": {{"rule": "ath_confirmed"}},
            "exits": {{"trailing_stop": 0.2}},
            "sweep": {{"params": {{"exits.trailing_stop": [0.1, 0.15, 0.2, 0.25]}}}},
        }},
        db={db!r},
        workers=2,
        engine={engine!r},
    )
    print("stored", len(sw.runs), int((sw.runs["status"] == "ok").sum()))
    """


@pytest.mark.parametrize("engine", ["fast", "backtrader"])
def test_a_script_without_a_main_guard_sweeps_on_two_workers(tmp_path, data_dir, engine):
    script = tmp_path / f"sweep_{engine}.py"
    script.write_text(textwrap.dedent(SCRIPT.format(engine=engine, db=str(tmp_path / "s.duckdb"))), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=dict(os.environ)
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.splitlines() == ["script top level", "stored 4 4"]
