"""Offline evaluation of stopping policies over recorded answers.

Each problem's recorded samples are replayed in ``R`` random orders (draws without replacement,
like the replay backend); for each order the policy is asked, exactly as in a live run, how many
more samples the problem needs given the answers drawn so far
(:meth:`~budgetlab.policies.SequentialStopping.next_count`, the very method the live policy's
``propose`` calls), until it settles. The selected answer is the majority vote of the drawn
samples (ties: the answer that reached the top count first), or a selector's choice.

Decisions depend only on the drawn prefix, so each problem's prefixes are kept in a trie and the
policy is asked once per distinct prefix: orders that share a prefix (all of them, on a unanimous
problem) cost one decision. 200 orders of 500 problems take about a second for a rule that looks
only at answers.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from budgetlab.analysis._curves import bootstrap_ci
from budgetlab.analysis._majority import majority_answer
from budgetlab.core import Sample, SampleState
from budgetlab.errors import InvalidArgument

__all__ = ["StoppingSimulation", "simulate_stopping", "stopping_orders"]


@dataclass(frozen=True)
class StoppingSimulation:
    """Outcome of :func:`simulate_stopping`: ``drawn[r, i]`` samples and ``correct[r, i]`` (1, 0,
    or 1/2 for an answer whose samples are judged half right) for order ``r`` of problem ``i``."""

    drawn: npt.NDArray[np.int64]
    correct: npt.NDArray[np.float64]
    exhausted: int  # walks that wanted more samples than the problem has recorded (they use them all)
    n_boot: int = 1000
    seed: int = 0

    @property
    def orderings(self) -> int:
        return int(self.drawn.shape[0])

    @property
    def per_problem_accuracy(self) -> npt.NDArray[np.float64]:
        return self.correct.mean(axis=0)

    @property
    def per_problem_samples(self) -> npt.NDArray[np.float64]:
        return self.drawn.mean(axis=0)

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def mean_samples(self) -> float:
        return float(self.drawn.mean())

    def accuracy_ci(self, alpha: float = 0.05) -> tuple[float, float, float]:
        """(mean, lo, hi) over problems (bootstrap of the per-problem mean over orders)."""
        return bootstrap_ci(self.per_problem_accuracy, n_boot=self.n_boot, alpha=alpha, seed=self.seed)

    def samples_ci(self, alpha: float = 0.05) -> tuple[float, float, float]:
        return bootstrap_ci(self.per_problem_samples, n_boot=self.n_boot, alpha=alpha, seed=self.seed)

    def ordering_spread(self) -> tuple[float, float]:
        """Standard deviation over orders of the benchmark accuracy and of the mean samples."""
        return float(self.correct.mean(axis=1).std()), float(self.drawn.mean(axis=1).std())

    def difference_ci(self, baseline: npt.ArrayLike, alpha: float = 0.05) -> tuple[float, float, float]:
        """Accuracy minus a per-problem baseline (e.g. exact maj@40), paired over problems."""
        base = np.asarray(baseline, dtype=np.float64)
        if base.shape != self.per_problem_accuracy.shape:
            raise InvalidArgument(f"baseline needs one value per problem ({self.per_problem_accuracy.size}), got shape {base.shape}")
        return bootstrap_ci(self.per_problem_accuracy - base, n_boot=self.n_boot, alpha=alpha, seed=self.seed)

    def subset(self, problems: Sequence[int] | npt.NDArray[np.int64]) -> StoppingSimulation:
        """The same simulation restricted to some problems (e.g. a held-out split)."""
        idx = np.asarray(problems, dtype=np.int64)
        return StoppingSimulation(self.drawn[:, idx], self.correct[:, idx], self.exhausted, self.n_boot, self.seed)


def stopping_orders(sizes: Sequence[int], orderings: int = 200, seed: int = 0) -> list[npt.NDArray[np.int64]]:
    """``orderings`` random permutations of each problem's ``sizes[i]`` samples, as an
    ``(orderings, sizes[i])`` array per problem; the same seed gives the same orders, so policies
    compared with one seed see the very same draws."""
    if orderings < 1:
        raise InvalidArgument(f"stopping_orders needs orderings >= 1, got orderings={orderings}")
    rng = np.random.default_rng(seed)
    return [np.argsort(rng.random((orderings, int(n))), axis=1) for n in sizes]


def _group_scores(answers: Sequence[Hashable | None], correct: Sequence[bool | None]) -> dict[Hashable, float]:
    tally: dict[Hashable, list[int]] = {}
    for answer, ok in zip(answers, correct):
        if answer is not None and ok is not None:
            tally.setdefault(answer, [0, 0])[0 if ok else 1] += 1
    return {a: 1.0 if yes > no else 0.5 if yes == no else 0.0 for a, (yes, no) in tally.items()}


def simulate_stopping(
    policy: Any,
    problems: Sequence[tuple[Sequence[Hashable | None], Sequence[bool | None]]],
    *,
    orderings: int = 200,
    seed: int = 0,
    orders: Sequence[npt.ArrayLike] | None = None,
    confidences: Sequence[Sequence[float | None]] | None = None,
    selector: Any = None,
    n_boot: int = 1000,
) -> StoppingSimulation:
    """Replay ``policy`` (a stopping policy: it has ``next_count``) over recorded problems.

    ``problems[i]`` is ``(answers, correct)`` for every recorded sample of problem ``i`` (``None``
    answers: unparsed). ``orders`` gives each problem's draw orders explicitly (an
    ``(R, n_i)`` array of sample indexes, or one order as a 1-D array), else
    :func:`stopping_orders` draws ``orderings`` of them from ``seed``. ``confidences`` (per sample)
    feed policies that read confidences and the selector. ``selector`` (from
    :mod:`budgetlab.selectors`) replaces the majority vote; its selection's ``correct`` is scored
    1/0 (``None``: 0). A problem scores 1/2 for an answer whose samples are judged half right.
    """
    next_count = getattr(policy, "next_count", None)
    if next_count is None:
        raise InvalidArgument(f"simulate_stopping needs a stopping policy (one with next_count), got {type(policy).__name__}")
    if confidences is not None and len(confidences) != len(problems):
        raise InvalidArgument(f"confidences needs one list per problem ({len(problems)}), got {len(confidences)}")
    if orders is None:
        order_list = stopping_orders([len(a) for a, _ in problems], orderings, seed)
    else:
        if len(orders) != len(problems):
            raise InvalidArgument(f"orders needs one entry per problem ({len(problems)}), got {len(orders)}")
        order_list = [np.atleast_2d(np.asarray(o, dtype=np.int64)) for o in orders]
    n_orders = order_list[0].shape[0] if order_list else 0
    if any(o.shape[0] != n_orders for o in order_list):
        raise InvalidArgument("every problem needs the same number of orders")
    uses_confidence = bool(getattr(policy, "uses_confidence", False))
    by_index = uses_confidence or selector is not None  # prefixes differ by sample, not by answer
    drawn = np.zeros((n_orders, len(problems)), dtype=np.int64)
    scored = np.zeros((n_orders, len(problems)), dtype=np.float64)
    exhausted = 0
    for i, (answers, correct) in enumerate(problems):
        if len(answers) != len(correct):
            raise InvalidArgument(f"problem {i}: {len(answers)} answers but {len(correct)} verdicts")
        conf = list(confidences[i]) if confidences is not None else None
        if conf is not None and len(conf) != len(answers):
            raise InvalidArgument(f"problem {i}: {len(answers)} answers but {len(conf)} confidences")
        order = order_list[i]
        if order.shape[1] > len(answers) or (order.size and (order.min() < 0 or order.max() >= len(answers))):
            raise InvalidArgument(f"problem {i}: an order indexes past its {len(answers)} samples")
        scores = _group_scores(answers, correct)
        answer_list = list(answers)
        # trie node: [next_count or None, score at stop or None, children]
        root: list[Any] = [None, None, {}]
        for r in range(n_orders):
            seq = order[r].tolist()
            node, n = root, 0
            while True:
                if node[0] is None:
                    picked = seq[:n]
                    prefix = [answer_list[j] for j in picked]
                    node[0] = next_count(prefix, [conf[j] for j in picked] if uses_confidence and conf is not None else None)
                k = node[0]
                if k and n == len(seq):  # wants more than was recorded: it got them all
                    exhausted += 1
                    k = 0
                if not k:
                    if node[1] is None:
                        node[1] = _score(seq[:n], answer_list, correct, scores, conf, selector)
                    drawn[r, i] = n
                    scored[r, i] = node[1]
                    break
                for _ in range(min(k, len(seq) - n)):
                    j = seq[n]
                    key = j if by_index else answer_list[j]
                    child = node[2].get(key)
                    if child is None:
                        child = node[2][key] = [None, None, {}]
                    node = child
                    n += 1
    return StoppingSimulation(drawn, scored, exhausted, n_boot, seed)


def _score(picked: list[int], answers: list[Any], correct: Sequence[bool | None], scores: dict[Hashable, float], conf: list[Any] | None, selector: Any) -> float:
    if selector is None:
        winner = majority_answer([answers[j] for j in picked])
        return scores.get(winner, 0.0) if winner is not None else 0.0
    samples = [
        Sample("sim", "p", "c", k, 0, state=SampleState.DONE, answer=answers[j], correct=correct[j],
               score=None if conf is None else conf[j])
        for k, j in enumerate(picked)
    ]  # fmt: skip
    chosen = selector.select(samples)
    return 1.0 if chosen.correct is True else 0.0
