"""Plain-text tables for the commands that print them (``metarena eval``, ``race``, ``tournament``).

A table is a header and rows of cells. On a terminal narrower than the table it is cut into
several tables, one under another, each led by the same first columns (the episode, or the rank
and the agent), so that no line folds; in a file or a pipe it prints whole.

>>> print("\\n".join(grid(["ep", "score", "return"], [["1", "0.50", "3.25"]], width=12)))
ep  score
 1   0.50
<BLANKLINE>
ep  return
 1    3.25
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from typing import Sequence


def terminal_width() -> int | None:
    """The terminal's width in columns where stdout is one; None where it goes to a file or pipe."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def grid(header: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None, *, lead: int = 1,
         left: Sequence[int] = (), rule: bool = False) -> list[str]:
    """The lines of a table: each column as wide as its widest cell, right-aligned but the columns
    ``left``, two spaces apart, under a line of dashes if ``rule``. Wider than ``width``, several
    tables one under another (a blank line between), each led by the first ``lead`` columns; a
    column wider than ``width`` on its own still gets a table of its own."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    parts, part = [], list(range(lead))
    for i in range(lead, len(header)):
        if width and part[lead:] and sum(widths[j] + 2 for j in (*part, i)) - 2 > width:
            parts.append(part)
            part = list(range(lead))
        part.append(i)
    rules = [["-" * w for w in widths]] if rule else []
    lines = []
    for n, part in enumerate((*parts, part)):
        lines += [""] if n else []
        lines += ["  ".join(cells[j].ljust(widths[j]) if j in left else cells[j].rjust(widths[j])
                            for j in part).rstrip() for cells in (header, *rules, *rows)]
    return lines


def wrapped(lines: Sequence[str], width: int | None) -> list[str]:
    """``lines`` with each one longer than ``width`` wrapped at spaces (as they are, without one)."""
    if not width:
        return list(lines)
    return [part for line in lines for part in (textwrap.wrap(line, width) if len(line) > width else [line])]
