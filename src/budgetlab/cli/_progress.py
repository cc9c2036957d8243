"""A rich progress bar fed by the run loop's progress reports."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from budgetlab.runner import Progress as RunProgress

__all__ = ["ProgressBar"]


class ProgressBar:
    def __init__(self, console: Console, description: str) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("samples · {task.fields[detail]}"),
            TimeElapsedColumn(),
            TextColumn("·"),
            # From the recent rate (the last 30 s), so it follows the machine's load as it changes.
            TimeRemainingColumn(),
            TextColumn("left"),
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
        detail = f"{p.spent.tokens:,} tokens · ${p.spent.dollars:.4f} · {p.in_flight} in flight"
        if p.failed:
            detail += f" · {p.failed} failed"
        self._progress.update(self._task, completed=p.finished + p.failed, total=p.planned, detail=detail)
