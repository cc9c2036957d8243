"""Tables of names and figures that fit the terminal, for every command that prints figures."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["fitted_tables"]

# What each name column keeps at least when figures crowd it (the rest of a name folds): enough
# for "planned" whole, so the docs' example fits 80 columns in one table.
_NAME_ROOM = 7


def fitted_tables(console: Console, titles: tuple[str, str], names: list[str], headers: list[str],
                   rows: list[list[str]]) -> list[Table]:
    """Tables of name columns then figure columns that fit the terminal: figures keep their width,
    headers wrap at spaces, names fold. A figure column that would still not fit starts another
    table with the same names (titled ``titles[1]``) rather than be cut to "…": a forecast with
    many --budgets has many coverage columns, and dollars and minutes of a large run are wide."""
    plain = [[Text.from_markup(cell).plain.split("\n") for cell in row] for row in rows]
    lead = len(names)
    need = [max([cell_len(line) for row in plain for line in row[lead + i]] + [1]) for i in range(len(headers))]
    full = [max(n, cell_len(h)) for n, h in zip(need, headers)]
    wrapped = [max([n] + [cell_len(w) for w in h.split()]) for n, h in zip(need, headers)]
    longest = [max([cell_len(line) for row in plain for line in row[i]] + [cell_len(names[i])]) for i in range(lead)]
    room = sum(min(n, _NAME_ROOM) for n in longest)
    tables = []
    for n, group in enumerate(_column_groups(wrapped, room, lead, console.width)):
        # Full headers when they fit beside whole names; wrapped ones only when they do not.
        widths = {i: full[i] for i in group}
        if sum(widths.values()) + sum(longest) + _frame(lead + len(group)) > console.width:
            widths = {i: wrapped[i] for i in group}
        table = Table(title=titles[min(n, 1)])
        for name in names:
            table.add_column(name, overflow="fold")
        for i in group:
            table.add_column(headers[i], justify="right", width=widths[i])
        for row in rows:
            table.add_row(*row[:lead], *[row[lead + i] for i in group])
        tables.append(table)
    return tables


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
