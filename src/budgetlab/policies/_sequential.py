"""What every stopping policy shares: draw each problem's samples a few at a time, and stop it
as soon as its own answers say so.

A stopping policy is a pure rule over one (problem, configuration) pair's finished samples in
index order: :meth:`SequentialStopping.next_count` says how many more to draw now (0: settled).
The live policy (:meth:`propose`) and the offline simulator
(:func:`budgetlab.analysis._stopping.simulate_stopping`) both call that one method, so a
simulated run and a real one over the same recordings in the same order draw the same samples.

The rule reads only the pair's samples, so it is stateless: a resumed run decides as before. A
pair with samples still pending or running proposes nothing until they are back, because its
decision depends on them; failed samples count as drawn (towards ``max_samples``) with no answer.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Hashable, Sequence
from typing import Any

from budgetlab.calibration import sample_confidence
from budgetlab.core import SampleState
from budgetlab.core.view import RunView
from budgetlab.errors import InputError
from budgetlab.stores import Proposal

__all__ = ["SequentialStopping", "check_count", "check_not_above_max", "check_probability"]


def check_count(policy: str, field: str, value: Any, minimum: int, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"policy {policy} needs {field} >= {minimum} (a whole number), got {field}={value!r}; write e.g. {example}")


def check_probability(policy: str, field: str, value: Any, example: str, *, closed: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (0 <= value <= 1 if closed else 0 < value < 1)
    if not ok:
        bounds = "0 <= {0} <= 1" if closed else "0 < {0} < 1"
        raise InputError(f"policy {policy} needs {bounds.format(field)}, got {field}={value!r}; write e.g. {example}")


def check_not_above_max(policy: str, field: str, value: int, max_samples: int, example: str) -> None:
    """A first decision after ``max_samples`` never comes: the rule would never apply, and the
    policy would silently be fixed k = max_samples."""
    if value > max_samples:
        raise InputError(f"policy {policy} never applies its rule with {field}={value} > max_samples={max_samples} (it would draw "
                         f"max_samples everywhere); give {field} <= max_samples, e.g. {example}")  # fmt: skip


class SequentialStopping:
    """Mixin for the stopping policies (frozen dataclasses with ``name``, ``max_samples``,
    ``min_samples`` and a chunk size ``step``): each subclass supplies :meth:`should_stop`."""

    name: str
    max_samples: int
    min_samples: int = 1
    step: int = 1
    uses_confidence: bool = False  # whether should_stop reads per-sample confidences
    confidence_source: str = "auto"

    def should_stop(self, answers: Sequence[Hashable | None], confidences: Sequence[float | None] | None = None) -> bool:
        """Whether the answers so far (``None``: unparsed or failed) settle the problem."""
        raise NotImplementedError

    def next_count(self, answers: Sequence[Hashable | None], confidences: Sequence[float | None] | None = None) -> int:
        """How many more samples the pair needs now, given its answers in draw order; 0 when it
        is settled. Draws go in chunks of ``step``; the rule is checked at each chunk's end once
        ``min_samples`` are in, and never more than ``max_samples`` are drawn."""
        n = len(answers)
        room = self.max_samples - n
        if room <= 0:
            return 0
        if n % self.step:
            return min(self.step - n % self.step, room)
        if n >= max(self.min_samples, 1) and self.should_stop(answers, confidences):
            return 0
        return min(self.step, room)

    # ---- the Policy protocol ----------------------------------------------------------------
    def propose(self, view: RunView, limit: int) -> list[Proposal]:
        out: list[Proposal] = []
        room = limit
        if room <= 0:
            return out
        # Pairs found settled, with their sample count then: finished samples never change and a
        # settled pair gets no new ones from this policy, so the verdict holds while the count does.
        settled: dict[tuple[str, str], int] = view.memo.setdefault(self._memo_key(), {})  # type: ignore[assignment]
        for problem in view.problems:
            for config in view.configs:
                key = (problem.id, config.id)
                samples = view.samples(*key)
                if settled.get(key) == len(samples):
                    continue
                if any(s is None or not s.state.finished for s in samples):
                    continue  # its decision waits for the samples in flight
                answers = [s.answer if s.state is SampleState.DONE else None for s in samples]
                confidences = None
                if self.uses_confidence:
                    confidences = [
                        sample_confidence(s, self.confidence_source) if s.state is SampleState.DONE else None for s in samples
                    ]
                count = self.next_count(answers, confidences)
                if count == 0:
                    settled[key] = len(samples)
                    continue
                take = min(count, room)
                out.append(Proposal(problem.id, config.id, take))
                room -= take
                if room == 0:
                    return out
        return out

    def planned(self, view: RunView) -> int | None:
        return None  # how many samples a problem needs is known only once it settles

    def _memo_key(self) -> str:
        args = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} if dataclasses.is_dataclass(self) else {}
        return "stopping:" + json.dumps(args, sort_keys=True, default=str)
