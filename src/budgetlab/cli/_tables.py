"""Tables of names and figures that fit the terminal, for every command that prints figures."""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

__all__ = ["Name", "fitted_tables", "wrap_name"]

# A name breaks only after these, where it can: a configuration, run or method name is a list of
# key=value pairs, a path or a hyphenated model name, which rich's wrapping folds mid-word
# ("temperat" / "ure=0.7"). A name breaks between its pairs and path parts first, and inside one
# ("top_p=" / "0.95") only where that does not fit a line alone.
_STRONG_BREAKS = re.compile(r"[^,:/ ]*(?:[,:/ ]+|$)")
_WEAK_BREAKS = re.compile(r"[^=\-_]*(?:[=\-_]+|$)")

# What each name column keeps at least when figures crowd it (the rest of a name wraps): enough
# for "planned" whole, so the docs' example fits 80 columns in one table.
_NAME_ROOM = 7


def fitted_tables(console: Console, titles: tuple[str, str], names: list[str], headers: list[str],
                   rows: list[list[str]]) -> list[Table]:
    """Tables of name columns then figure columns that fit the terminal: figures keep their width,
    headers wrap at spaces, names wrap at their break points (:class:`Name`, plain text). A
    figure column that would still not fit starts another table with the same names (titled
    ``titles[1]``) rather than be cut to "…": a forecast with many --budgets has many coverage
    columns, and dollars and minutes of a large run are wide. A name column of whole numbers (a
    rank) is right-aligned, as figures are."""
    lead = len(names)
    plain = [[Text.from_markup(cell).plain.split("\n") for cell in row[lead:]] for row in rows]
    need = [max([cell_len(line) for row in plain for line in row[i]] + [1]) for i in range(len(headers))]
    full = [max(n, cell_len(h)) for n, h in zip(need, headers)]
    wrapped = [max([n] + [cell_len(w) for w in h.split()]) for n, h in zip(need, headers)]
    longest = [max([cell_len(line) for row in rows for line in row[i].split("\n")] + [cell_len(names[i])]) for i in range(lead)]
    ranks = [bool(rows) and all(row[i].isdigit() for row in rows) for i in range(lead)]
    room = sum(min(n, _NAME_ROOM) for n in longest)
    tables = []
    for n, group in enumerate(_column_groups(wrapped, room, lead, console.width)):
        # Full headers when they fit beside whole names; wrapped ones only when they do not.
        widths = {i: full[i] for i in group}
        if sum(widths.values()) + sum(longest) + _frame(lead + len(group)) > console.width:
            widths = {i: wrapped[i] for i in group}
        table = Table(title=titles[min(n, 1)])
        for name, rank in zip(names, ranks):
            table.add_column(name, justify="right" if rank else "left")
        for i in group:
            table.add_column(headers[i], justify="right", width=widths[i])
        for row in rows:
            table.add_row(*[Name(cell) for cell in row[:lead]], *[row[lead + i] for i in group])
        tables.append(table)
    return tables


def _parts(breaks: re.Pattern[str], text: str) -> list[str]:
    """``text`` cut after each of its ``breaks``; the parts join back to it exactly."""
    return [part for part in breaks.findall(text) if part]


def _fits(text: str, width: int) -> bool:
    return cell_len(text.rstrip(" ")) <= width


def wrap_name(name: str, width: int) -> list[str]:
    """``name`` as lines of at most ``width`` cells, broken after a break point wherever one
    fits; a part with no break point in reach folds, on lines of its own. A space a line ends
    on is dropped, as a terminal's wrap drops it."""
    width = max(width, 1)
    lines: list[str] = []
    for paragraph in name.split("\n"):
        line = ""
        for strong in _parts(_STRONG_BREAKS, paragraph):
            if _fits(line + strong, width):
                line += strong
                continue
            if _fits(strong, width):
                lines.append(line.rstrip(" "))
                line = strong
                continue
            for part in _parts(_WEAK_BREAKS, strong):
                if _fits(line + part, width):
                    line += part
                    continue
                if line:
                    lines.append(line.rstrip(" "))
                while not _fits(part, width):
                    lines.append(_fold(part, width))
                    part = part[len(lines[-1]):]
                line = part
        lines.append(line.rstrip(" "))
    return lines


def _fold(text: str, width: int) -> str:
    """The longest start of ``text`` at most ``width`` cells wide (one character at least)."""
    end = 1
    while end < len(text) and cell_len(text[: end + 1]) <= width:
        end += 1
    return text[:end]


class Name:
    """A table cell holding a name (of a configuration, run, method, system or item) as plain
    text, wrapped with real line breaks at :func:`wrap_name`'s break points for the width the
    table gives it: the terminal's copy of a line is the name's own characters, and --json is
    untouched."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        parts = [weak for strong in _parts(_STRONG_BREAKS, self.text) for weak in _parts(_WEAK_BREAKS, strong)]
        narrowest = max((cell_len(part.strip()) for part in parts), default=1)
        return Measurement(narrowest, max(cell_len(line) for line in self.text.split("\n"))).with_maximum(options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text("\n".join(wrap_name(self.text, options.max_width)), no_wrap=True, overflow="crop")


def _column_groups(widths: list[int], room: int, lead: int, width: int) -> list[list[int]]:
    """The figure columns (by their narrowest ``widths``), in order, split into runs that each fit
    ``width`` beside ``lead`` name columns kept ``room`` wide; a column too wide even alone is a
    run of its own."""
    groups: list[list[int]] = [[]]
    for i, w in enumerate(widths):
        group = groups[-1]
        if group and room + sum(widths[j] for j in group) + w + _frame(lead + len(group) + 1) > width:
            groups.append([])
        groups[-1].append(i)
    if len(groups) > 1:
        # As many tables, with the columns spread evenly: a full first table beside a one-column
        # last one would squeeze the names there for nothing.
        size, extra = divmod(len(widths), len(groups))
        starts = [g * size + min(g, extra) for g in range(len(groups) + 1)]
        even = [list(range(starts[g], starts[g + 1])) for g in range(len(groups))]
        if all(room + sum(widths[j] for j in group) + _frame(lead + len(group)) <= width for group in even):
            return even
    return groups


def _frame(columns: int) -> int:
    """The cells a table's borders and padding take beside its columns' own."""
    return 3 * columns + 1
