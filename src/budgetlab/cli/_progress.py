"""A rich progress bar fed by the run loop's progress reports."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text

from budgetlab.runner import Progress as RunProgress

__all__ = ["ProgressBar"]

# The counts, the time and one line of detail take about this many columns; the bar gets what
# is left (10 to 40), and the run name (printed on the line above) only a terminal this wide.
_COUNTS_WIDTH = 95
_NAME_FROM_WIDTH = 160


class _TimeLeft(ProgressColumn):
    """"~0:42 left" while the total is known and work remains, else nothing (a finished line
    stays short). Rich estimates it from the recent rate (the last 30 s), so it follows the
    machine's load as it changes."""

    max_refresh = 0.5

    def render(self, task: Task) -> Text:
        left = task.time_remaining
        if left is None or task.finished:
            return Text("")
        minutes, seconds = divmod(int(left), 60)
        hours, minutes = divmod(minutes, 60)
        clock = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
        return Text(f"~{clock} left", style="progress.remaining")


class ProgressBar:
    def __init__(self, console: Console, description: str) -> None:
        name = [TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", max_width=40))]
        self._progress = Progress(
            *(name if console.width >= _NAME_FROM_WIDTH else []),
            BarColumn(bar_width=min(40, max(10, console.width - _COUNTS_WIDTH)), table_column=Column(no_wrap=True)),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            # the one column that wraps onto a second line when space runs out
            TextColumn("samples · {task.fields[detail]}", table_column=Column(no_wrap=False)),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
            _TimeLeft(table_column=Column(no_wrap=True)),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task(description, total=None, detail="")

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()

    def __call__(self, p: RunProgress) -> None:
        detail = f"{p.spent.tokens:,} tokens" + (f" · {p.failed:,} failed" if p.failed else "")
        detail += f" · ${p.spent.dollars:.4f} · {p.in_flight} in flight"
        self._progress.update(self._task, completed=p.finished + p.failed, total=p.planned, detail=detail)
