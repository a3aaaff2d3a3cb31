"""Help text at 80 columns: argparse's own parts wrap there, and hand-laid-out descriptions are re-flowed.

Descriptions and epilogs are written as plain text blocks; this formatter keeps their layout but fits it in 80
columns: a paragraph is re-filled; a two-column line ("  name   what it is", "source:   ...") or a list item
("  1. ...", "  - ...") hangs its continuation under its text; a command line ("  fedchem ...") is broken at
spaces with a shell " \\" continuation, so that it still runs when pasted; a trailing "# comment" that does not
fit goes on the line above.
"""

from __future__ import annotations

import argparse
import re
import textwrap

WIDTH = 80
_TWO_COLUMNS = re.compile(r"^(\s*\S.*?\s{2,})\S")
_LIST_ITEM = re.compile(r"^(\s*(?:\d+[.)]|[-*])\s+)\S")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_command(line: str) -> bool:
    """An indented example command line."""
    return line[:1] == " " and line.strip().startswith(("fedchem ", "make "))


def _command(lines: list[str], width: int) -> list[str]:
    """A command (one logical line, continuations already joined) wrapped with ' \\' continuations."""
    text = lines[0]
    ind = " " * _indent(text)
    body, _, comment = text.strip().partition("  #")
    out = []
    if comment and len(text) > width:
        out.append(f"{ind}# {comment.strip().lstrip('#').strip()}")
        comment = ""
    words = body.split()
    line = ind
    for w in words:
        extra = (" " if line.strip() else "") + w
        if line.strip() and len(line) + len(extra) + 2 > width:
            out.append(line + " \\")
            line = ind + "    " + w
        else:
            line += extra
    if comment:
        line = f"{line}  #{comment}"
    out.append(line)
    return out


def reflow(text: str, width: int = WIDTH) -> str:
    """Fit a hand-laid-out block of text into `width` columns (see the module docstring)."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            out.append("")
            i += 1
            continue
        if _is_command(line):
            logical = line
            while logical.endswith("\\") and i + 1 < len(lines):
                i += 1
                logical = logical[:-1].rstrip() + " " + lines[i].strip()
            out += _command([logical], width) if len(logical) > width else [logical]
            i += 1
            continue
        ind = _indent(line)
        m = _LIST_ITEM.match(line) or _TWO_COLUMNS.match(line)
        hang = m.end(1) if m else ind
        parts = [line.strip()] if not m else [line[hang:].strip()]
        prefix = line[:hang] if m else " " * ind
        j = i + 1
        while j < len(lines):  # continuation lines: same hang column, not a new item or command
            nxt = lines[j].rstrip()
            if not nxt.strip() or _is_command(nxt) or _indent(nxt) != hang:
                break
            if _LIST_ITEM.match(nxt) or (m is None and _TWO_COLUMNS.match(nxt)):  # a new item starts
                break
            parts.append(nxt.strip())
            j += 1
        body = " ".join(parts)
        if len(prefix) + len(body) <= width and j == i + 1:
            out.append(line)
        else:
            out += textwrap.wrap(body, width, initial_indent=prefix, subsequent_indent=" " * hang,
                                 break_long_words=False, break_on_hyphens=False) or [prefix.rstrip()]
        i = j
    return "\n".join(out)


class Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter at 80 columns, re-flowing descriptions and epilogs with `reflow`."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 28, width=None):
        super().__init__(prog, indent_increment, max_help_position, width=WIDTH)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line if line else "" for line in reflow(text, WIDTH - len(indent)).splitlines())
