"""The samples a paced stream has drawn, one JSON line each, written as soon as they are judged.

A stream's answers file records whole requests. A request cut short by a crash has paid for the
samples it drew so far, but left no answer line. On resume, :class:`PacedSolver` takes those
samples from the journal instead of drawing them again; the stopping rule sees the same samples
in the same order, so the request ends as it would have, and its spend counts them once.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import IO

from budgetlab.core import Sample, SampleState
from budgetlab.errors import InputError

__all__ = ["SampleJournal"]


class SampleJournal:
    """Finished samples by (problem, config, index, seed), read from ``path`` if it exists and
    appended to it by :meth:`add`. ``skip``: problems whose samples are not needed any more (the
    answered ones), left out when reading. A last line cut off by a crash is ignored."""

    def __init__(self, path: str | Path, skip: Collection[str] = ()) -> None:
        self.path = Path(path)
        self._samples: dict[tuple[str, str, int, int], Sample] = {}
        if self.path.is_file():
            self._read(skip)
        self._file: IO[str] | None = None

    def _read(self, skip: Collection[str]) -> None:
        raw = self.path.read_bytes()
        lines = raw.decode("utf-8", errors="replace").splitlines()
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                sample = Sample(**{**row, "state": SampleState(row["state"])})
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                if lineno == len(lines) and not raw.endswith(b"\n"):  # written in part when the process died
                    os.truncate(self.path, raw.rfind(b"\n") + 1)  # so that the next line starts clean
                    break
                raise InputError(
                    f"{self.path}:{lineno}: not a sample line written by budgetlab pace; "
                    "move the file away to draw those samples again"
                ) from None
            if sample.problem not in skip:
                self._samples[_key(sample)] = sample

    def __len__(self) -> int:
        return len(self._samples)

    def recorded(self, sample: Sample) -> Sample | None:
        """The finished sample with ``sample``'s problem, configuration, index and seed, if any."""
        return self._samples.get(_key(sample))

    def add(self, samples: Iterable[Sample]) -> None:
        """Record the finished samples (failed ones are left to be drawn again), flushed at once."""
        done = [s for s in samples if s.state == SampleState.DONE]
        if not done:
            return
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        for sample in done:
            self._samples[_key(sample)] = sample
            row = dataclasses.asdict(sample) | {"state": sample.state.value, "details": dict(sample.details)}
            self._file.write(json.dumps(row, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> SampleJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _key(sample: Sample) -> tuple[str, str, int, int]:
    return sample.problem, sample.config, sample.index, sample.seed
