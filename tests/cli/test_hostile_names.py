"""Text with rich-markup or mathtext characters is printed and drawn as written, never parsed.

Config names and symbols are restricted to plain characters, but a data folder may be called
``data[red] $x$``: the console lines show it literally (no style applied, no crash). A figure whose labels
hold ``$`` draws them as text.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap

from support.clitools import riskon_cmd

BODY = """\
    name = "{name}"
    [data]
    start = "2020-01-01"
    end = "2021-12-31"
    [strategy]
    rule = "ath_confirmed"
    [exits]
    trailing_stop = {trail}
    [report]
    tearsheet = false
    chart = true
    """


def test_markup_and_mathtext_in_names_are_literal(tmp_path, data_dir):
    data = tmp_path / "data[red] $x$"
    data.mkdir()
    for name in ("RUT.csv", "BTC-USD.csv"):
        shutil.copy(data_dir / name, data / name)
    env = {**os.environ, "RISKON_DATA": str(data), "RISKON_CACHE": str(tmp_path / "cache"),
           "RISKON_REPORTS": str(tmp_path / "reports"), "COLUMNS": "250"}  # fmt: skip
    names = ["plain-a", "plain-b"]
    cfgs = []
    for i, name in enumerate(names):
        cfg = tmp_path / f"c{i}.toml"
        cfg.write_text(textwrap.dedent(BODY.format(name=name, trail=0.1 + 0.1 * i)), encoding="utf-8")
        cfgs.append(cfg)
    run = subprocess.run([*riskon_cmd(), "run", str(cfgs[0])], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"cache: filled ^RUT from {data / 'RUT.csv'}" in run.stderr  # the folder name printed as it is
    assert run.stdout.startswith("plain-a: ^RUT")
    assert (tmp_path / "reports" / "plain-a" / "signals.png").stat().st_size > 10_000
    comp = subprocess.run([*riskon_cmd(), "compare", *map(str, cfgs), "--null", "0"], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert comp.returncode == 0, comp.stderr
    assert "Traceback" not in comp.stderr
    assert "plain-b" in comp.stdout


def test_figure_labels_with_dollars_draw_as_text():
    """Unbalanced or TeX-looking ``$`` in a label would make matplotlib's mathtext raise; it is plain text."""
    from riskon.pages.html import figure, new_figure

    fig = new_figure(4, 3)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], label=r"cost $\frac{a}{$ [x]")
    ax.set_title(r"$\notacommand$ $")
    ax.legend()
    img = figure(fig, "dollars")
    assert img.startswith('<img alt="dollars" src="data:image/png;base64,')
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_parse_math")) if "$" in t.get_text()]
    assert {t.get_text() for t in texts} >= {r"cost $\frac{a}{$ [x]", r"$\notacommand$ $"}
    assert all(not t.get_parse_math() for t in texts)  # text from names is plain; numeric tick labels keep math
