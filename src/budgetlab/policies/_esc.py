"""Early-Stopping Self-Consistency (Li et al., ICLR 2024): sample in windows, stop at the first
window whose answers all agree."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from budgetlab.policies._sequential import SequentialStopping, check_count, check_not_above_max

__all__ = ["EarlyStoppingSC"]


@dataclass(frozen=True)
class EarlyStoppingSC(SequentialStopping):
    """Draw ``window`` samples at a time; stop a problem when every answer of the latest window
    is the same (zero entropy: the paper's rule; an unparsed answer never agrees), else go on up
    to ``max_samples``. The answer is then the majority vote over all samples drawn."""

    window: int = 5
    max_samples: int = 40
    name: str = "esc"

    def __post_init__(self) -> None:
        check_count("esc", "window", self.window, 1, "esc:window=5,max_samples=40")
        check_count("esc", "max_samples", self.max_samples, 1, "esc:window=5,max_samples=40")
        check_not_above_max("esc", "window", self.window, self.max_samples, "esc:window=5,max_samples=40")

    @property
    def step(self) -> int:  # type: ignore[override]
        return self.window

    @property
    def min_samples(self) -> int:  # type: ignore[override]
        return self.window

    def should_stop(self, answers: Sequence[Hashable | None], confidences: Sequence[float | None] | None = None) -> bool:
        last = answers[-self.window :]
        return len(last) == self.window and last[0] is not None and all(a == last[0] for a in last)
