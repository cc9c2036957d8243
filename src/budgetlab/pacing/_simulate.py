"""Replay a paced stream over recorded samples: the offline check of a pacer (and the bench's).

Each request is a recorded problem with its pool of samples; it draws them in a given order
while its priced stopping rule asks for more and its allowance lasts, answers by majority vote,
and reports its spend (in samples) to the pacer before the next request comes.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from budgetlab.analysis._majority import majority_answer
from budgetlab.analysis._stopping import _group_scores
from budgetlab.pacing._base import Pacer
from budgetlab.pacing._priced import priced

__all__ = ["PacedStream", "simulate_paced_stream"]


@dataclass(frozen=True)
class PacedStream:
    """One replayed stream, per request in stream order."""

    scores: npt.NDArray[np.float64]  # 1 right, 0 wrong (1/2: an answer judged half right)
    samples: npt.NDArray[np.int64]
    prices: npt.NDArray[np.float64]  # the price the request was drawn at
    capped: npt.NDArray[np.bool_]  # whether its allowance stopped it before its rule did

    @property
    def accuracy(self) -> float:
        return float(self.scores.mean()) if self.scores.size else math.nan

    @property
    def spent(self) -> int:
        return int(self.samples.sum())


def simulate_paced_stream(
    stopping: Any,
    pacer: Pacer,
    problems: Sequence[tuple[Sequence[Hashable | None], Sequence[bool | None]]],
    *,
    order: Sequence[int] | None = None,
    sample_orders: Sequence[Sequence[int]] | None = None,
    seed: int = 0,
) -> PacedStream:
    """Serve ``problems`` (``(answers, correct)`` per recorded sample) as a stream in ``order``
    (default: as given), each drawing its samples in ``sample_orders[i]`` (default: a random
    order from ``seed``) under ``stopping`` priced by ``pacer``, one sample costing 1."""
    rng = np.random.default_rng(seed)
    order = list(range(len(problems))) if order is None else list(order)
    scores, samples, prices, capped = [], [], [], []
    for i in order:
        answers, correct = problems[i]
        draw_order = list(sample_orders[i]) if sample_orders is not None else rng.permutation(len(answers)).tolist()
        price = pacer.price
        rule = priced(stopping, price)
        allowance = math.floor(pacer.allowance() + 1e-9)
        picked: list[Hashable | None] = []
        hit_cap = False
        while len(picked) < len(draw_order):
            want = rule.next_count(picked)
            if want <= 0:
                break
            room = min(want, allowance - len(picked), len(draw_order) - len(picked))
            if room <= 0:
                hit_cap = True
                break
            batch = draw_order[len(picked) : len(picked) + room]
            picked.extend(answers[j] for j in batch)
        winner = majority_answer(picked)
        scores.append(_group_scores(answers, correct).get(winner, 0.0) if winner is not None else 0.0)
        samples.append(len(picked))
        prices.append(price)
        capped.append(hit_cap)
        pacer.record(len(picked))
    return PacedStream(np.array(scores, float), np.array(samples, np.int64), np.array(prices, float), np.array(capped, bool))
