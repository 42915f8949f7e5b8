"""Where the results store lives unless a command is told otherwise.

Apart from ``riskon.sweeps.store`` so that a command can name the default file in its options without
importing DuckDB, pandas and pyarrow when it starts (``riskon compare``, ``riskon walkforward``).
"""

from __future__ import annotations

from pathlib import Path

#: The default results store, relative to the folder the command runs in.
DEFAULT_DB = Path("runs") / "riskon.duckdb"
