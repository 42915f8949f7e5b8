"""Every ``riskon ...`` command line in a fenced block of the README and the docs parses against the real tree.

Each line is taken from any fenced block that is not Python or TOML (bash, console, plain ones), with its
``\\`` continuations joined, a ``$ `` prompt, ``NAME=value`` environment prefixes and comments dropped, and
cut at a pipe, ``&&``, ``;`` or a redirection. The words are then parsed by click itself (``make_context``
on the resolved subcommand, resilient parsing off): an unknown subcommand or option, an option without its
value, a value of the wrong type (``--top abc``) or one argument too many fails, naming the file and line.
Nothing is run: only eager ``--help``/``--version`` callbacks fire, and their exit counts as a parse.
Placeholders (``RUN_ID``, ``CONFIG``, ``FILE``) are fine wherever the command takes text.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "hooks" not in p.parts)]
FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([\w+-]*)[^\n]*$")
#: Fenced blocks whose lines are never shell commands.
NOT_SHELL = {"python", "py", "pycon", "toml", "json", "yaml", "yml", "ini", "csv", "sql", "html", "css"}
ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
#: Shell tokens that end a command (the rest is another command, or output handling).
ENDS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", ">&", "2>&1", "<<", "(", ")"}


class Line(NamedTuple):
    """One documented command: where it is (``docs/guides/run.md:12``), its text, and its words after ``riskon``."""

    where: str
    text: str
    words: list[str]


def fenced_blocks(text: str) -> list[list[tuple[int, str]]]:
    """Every fenced block that may hold shell commands, as (line number, line) pairs dedented by its fence."""
    blocks, block, fence, indent, shell = [], [], None, "", False
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence, indent, shell, block = m.group(2), m.group(1), m.group(3).lower() not in NOT_SHELL, []
            continue
        if m and not m.group(3) and m.group(2)[0] == fence[0] and len(m.group(2)) >= len(fence):
            if shell:
                blocks.append(block)
            fence = None
            continue
        block.append((n, line[len(indent) :] if line.startswith(indent) else line.lstrip()))
    return blocks


def joined(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Lines ending in ``\\`` joined with the next (numbered by their first line).

    In a block that shows ``$ `` prompts only the prompted lines are commands: the rest is their output.
    """
    if any(line.startswith("$ ") for _, line in lines):
        prompted, keep = [], False
        for n, line in lines:
            keep = line.startswith("$ ") or (keep and prompted and prompted[-1][1].rstrip().endswith("\\"))
            if keep:
                prompted.append((n, line))
        lines = prompted
    out, start, buf = [], None, ""
    for n, line in lines:
        if start is None:
            start, buf = n, ""
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        start = None
    if start is not None:
        out.append((start, buf))
    return out


def commands_in(line: str) -> list[list[str]]:
    """The words of every ``riskon`` command on one shell line (prompt, env prefixes, comments dropped)."""
    text = line.strip()
    if text.startswith("$ "):
        text = text[2:]
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: prose or output, not a command
        return []
    found, words = [], []
    for tok in [*tokens, ";"]:
        if tok in ENDS or set(tok) <= set(";&|<>()"):
            while words and ENV.match(words[0]):
                words.pop(0)  # RISKON_DATA=... riskon ...
            if words and words[0] == "riskon":
                found.append(words[1:])
            words = []
            if tok not in {";", "&&", "||", "|", "&"}:  # a redirection: skip its target
                words = [">"]
            continue
        if words == [">"]:
            words = []
            continue
        words.append(tok)
    return found


def documented() -> list[Line]:
    """Every ``riskon`` command line in a fenced block of the README or a docs page."""
    found = []
    for path in SOURCES:
        rel = path.relative_to(ROOT).as_posix()
        for block in fenced_blocks(path.read_text(encoding="utf-8")):
            for n, line in joined(block):
                for words in commands_in(line):
                    found.append(Line(f"{rel}:{n}", line.strip(), words))
    return found


def parse(words: list[str]) -> None:
    """Parse ``riskon <words>`` against the real command tree, running nothing; raise on a bad line.

    typer ships its own click (``typer._click``): its errors are ``TyperException``s, its exit ``typer.Exit``.
    """
    from typer.exceptions import TyperException
    from typer.main import get_command

    from riskon.cli import app

    root = get_command(app)
    cmd = root
    ctx = root.make_context("riskon", list(words), resilient_parsing=False)
    while getattr(cmd, "commands", None):  # a group: the next word names a subcommand
        rest = [*ctx._protected_args, *ctx.args]  # what a group left for its subcommand
        if not rest:
            if cmd is root:
                return  # plain ``riskon`` (or ``riskon --version``) prints help or the version
            raise TyperException(f"`{ctx.command_path}` needs a subcommand: {', '.join(sorted(cmd.commands))}")
        name, cmd, rest = cmd.resolve_command(ctx, rest)
        ctx = cmd.make_context(name, rest, parent=ctx, resilient_parsing=False)


def check(words: list[str]) -> str | None:
    """None when the words parse (a ``--help``/``--version`` exit counts), else the parser's one-line complaint."""
    from typer.exceptions import Exit, TyperException

    try:
        parse(words)
    except Exit:
        return None
    except TyperException as e:
        return e.format_message().replace("\n", " ")
    return None


LINES = documented()


@pytest.mark.parametrize("line", LINES, ids=[f"{ln.where} {ln.text[:50]}" for ln in LINES])
def test_documented_command_line_parses(line):
    """Each documented command parses against the real command tree, as written."""
    problem = check(line.words)
    assert problem is None, f"{line.where}: `{line.text}`: {problem}"


def test_every_page_with_commands_is_read():
    """The extraction sees the main commands in several pages (a broken fence pattern would see none)."""
    shown = {ln.words[0] for ln in LINES if ln.words}
    assert {"run", "sweep", "results", "report", "compare", "events", "walkforward", "status"} <= shown
    assert len({ln.where.split(":")[0] for ln in LINES}) >= 8


@pytest.mark.parametrize(
    ("words", "complaint"),
    [
        (["runn", "runs/seed.toml"], "No such command 'runn'"),
        (["run", "runs/seed.toml", "--nope"], "No such option: --nope"),
        (["results", "--top"], "Option '--top' requires an argument."),
        (["results", "--top", "abc"], "Invalid value for '--top': Input should be a valid integer"),
        (["run", "runs/seed.toml", "extra"], "Got unexpected extra argument(s) (extra)"),
        (["data"], "Usage: riskon data [OPTIONS] COMMAND"),  # help instead of a command: exit 2
        (["data", "fetchh", "BTC-USD"], "No such command 'fetchh'"),
        (["sweep", "runs/seed_sweep.toml", "--max-combinations", "0"], "Invalid value for '--max-combinations'"),
    ],
)
def test_a_broken_line_is_caught(words, complaint):
    """The checker itself fails each kind of broken line, with click's own message."""
    problem = check(words)
    assert problem is not None and complaint in problem, problem


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("$ riskon run runs/seed.toml --out x", [["run", "runs/seed.toml", "--out", "x"]]),
        ("RISKON_DATA=/data riskon data show BTC-USD  # a comment", [["data", "show", "BTC-USD"]]),
        ("riskon results --top 5 | head -3 && riskon status", [["results", "--top", "5"], ["status"]]),
        ("riskon results --export csv > out.txt 2>&1", [["results", "--export", "csv"]]),
        ("pip install riskon", []),
    ],
)
def test_command_extraction(line, expected):
    """Prompts, environment prefixes, comments, pipes, chains and redirections are handled."""
    assert commands_in(line) == expected


def test_blocks_continuations_and_prompts():
    """Continuations join; in a block with prompts only the prompted lines count; Python blocks are skipped."""
    text = (
        "intro\n```bash\nriskon sweep runs/seed_sweep.toml \\\n    --workers 2\n```\n"
        "```console\n$ riskon --version\nriskon 0.1.0\n```\n"
        "```python\nriskon.run('runs/seed.toml')\n```\n"
    )
    blocks = fenced_blocks(text)
    assert [joined(b) for b in blocks] == [
        [(3, "riskon sweep runs/seed_sweep.toml      --workers 2")],
        [(7, "$ riskon --version")],
    ]
