"""Every command's help renders as written: no swallowed brackets, no stray backticks, no value on a flag."""

from __future__ import annotations

import re

import pytest
import typer.main

from riskon.cli import app


def commands():
    """Every command of the tree, with its path."""
    root = typer.main.get_command(app)
    found = []

    def walk(cmd, path):
        found.append((path, cmd))
        for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
            walk(sub, [*path, name])

    walk(root, ["riskon"])
    return root, found


ROOT, COMMANDS = commands()


@pytest.mark.parametrize("path", [" ".join(p) for p, _ in COMMANDS])
def test_help_renders_as_written(path):
    cmd = dict((" ".join(p), c) for p, c in COMMANDS)[path]
    with ROOT.context_class(cmd, info_name=path) as ctx:
        text = cmd.get_help(ctx)
    assert "<bool>" not in text  # a flag takes no value
    assert "``" not in text and "\\[" not in text  # no reST quotes, no markup escapes left
    assert not re.search(r"\[/?(bold|red|green|yellow|italic|dim)\]", text)
    assert "has a  table" not in text and "a  section" not in text  # a bracketed word was not swallowed


def test_brackets_in_help_are_kept():
    texts = {}
    for p, cmd in COMMANDS:
        with ROOT.context_class(cmd, info_name=" ".join(p)) as ctx:
            texts[" ".join(p)] = cmd.get_help(ctx)
    assert "A config with a [sweep] section." in texts["riskon sweep"]
    assert "[walkforward] table" in texts["riskon walkforward"]
    assert "--no-report" in texts["riskon run"] and "--version" in texts["riskon"]
