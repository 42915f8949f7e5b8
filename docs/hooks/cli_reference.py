"""MkDocs hook: render the CLI reference from the live click command tree at build time.

The page ``reference/cli.md`` holds the marker ``<!-- riskon-cli-reference -->``; the hook
replaces it with every command's ``--help`` text, so the reference can never drift from the code.
"""

from __future__ import annotations

MARKER = "<!-- riskon-cli-reference -->"


def _walk(cmd, path: list[str]):
    yield path, cmd
    commands = getattr(cmd, "commands", None)  # typer ships its own click: duck-type the group
    if commands:
        for name in sorted(commands):
            yield from _walk(commands[name], [*path, name])


def _help_text(cmd, ctx) -> str:
    """The help exactly as the terminal shows it (plain text: the command tree has rich markup off)."""
    return "\n".join(line.rstrip() for line in cmd.get_help(ctx).splitlines()).strip("\n")


def render() -> str:
    """Markdown for every command: a heading and its help text."""
    import typer.main

    from riskon.cli import app

    root = typer.main.get_command(app)
    parts = []
    for path, cmd in _walk(root, ["riskon"]):
        if cmd.hidden:
            continue
        with root.context_class(cmd, info_name=" ".join(path)) as ctx:
            text = _help_text(cmd, ctx)
        level = "#" * min(len(path) + 1, 4)
        parts.append(f"{level} `{' '.join(path)}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace the marker on the CLI reference page."""
    if MARKER in markdown:
        return markdown.replace(MARKER, render())
    return markdown
