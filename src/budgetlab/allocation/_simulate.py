"""Simulate a run policy on recorded success counts, fast enough for many random orders.

Each (problem, configuration) pair's recorded outcomes (``c`` correct among ``n``) are put in
a random order; the pair's ``t``-th sample is the ``t``-th outcome of that order (draws without
replacement), and asking beyond the recording gives a failed sample, as the replay backend
does. The policy is the real object: it is asked with :meth:`propose` on a real
:class:`~budgetlab.core.view.RunView`, and everything it proposes in one call is drawn and
settled before the next call (as a run loop with enough concurrency would). Coverage, the share
of problems with a correct sample, is recorded after every sample drawn, so one simulation of a
policy that does not read the budget gives its coverage at every budget up to ``budget``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from budgetlab.allocation._base import SuccessCounts
from budgetlab.core import Budget, Problem, Sample, SampleState, SamplingConfig
from budgetlab.core.view import RunView

__all__ = ["draw_orders", "simulate_coverage"]


def draw_orders(counts: SuccessCounts, seed: int) -> list[list[npt.NDArray[np.bool_]]]:
    """For every pair, its recorded outcomes (True: correct) in a random order."""
    rng = np.random.default_rng(seed)
    orders = []
    for i in range(len(counts.problems)):
        row = []
        for j in range(len(counts.configs)):
            outcome = np.zeros(int(counts.samples[i, j]), dtype=bool)
            outcome[: int(counts.correct[i, j])] = True
            row.append(rng.permutation(outcome))
        orders.append(row)
    return orders


def simulate_coverage(policy: Any, counts: SuccessCounts, budget: int, *, seed: int = 0, limit: int = 1024) -> npt.NDArray[np.float64]:
    """``coverage[t]``: share of problems solved after ``t`` samples (``t = 0..budget``) when
    ``policy`` spends up to ``budget`` samples; flat after the policy stops proposing."""
    orders = draw_orders(counts, seed)
    problems = [Problem(p) for p in counts.problems]
    configs = [SamplingConfig(model=c, backend="replay") for c in counts.configs]
    row_of = {p.id: i for i, p in enumerate(problems)}
    col_of = {c.id: j for j, c in enumerate(configs)}
    view = RunView(problems, configs, budget=Budget(samples=budget))
    solved = np.zeros(len(problems), dtype=bool)
    coverage = np.zeros(budget + 1)
    drawn = 0
    while drawn < budget:
        proposals = policy.propose(view, limit)
        if not proposals:
            break
        new = []
        for proposal in proposals:
            i, j = row_of[proposal.problem], col_of[proposal.config]
            start = view.count(proposal.problem, proposal.config) + sum(1 for s in new if s.problem == proposal.problem and s.config == proposal.config)
            for index in range(start, start + proposal.count):
                if drawn == budget:
                    break
                recorded = orders[i][j]
                if index < len(recorded):
                    correct = bool(recorded[index])
                    sample = Sample("sim", proposal.problem, proposal.config, index, index, state=SampleState.DONE,
                                    answer="1" if correct else "0", correct=correct)  # fmt: skip
                    solved[i] |= correct
                else:
                    sample = Sample("sim", proposal.problem, proposal.config, index, index, state=SampleState.FAILED,
                                    error="asked beyond the recorded samples")  # fmt: skip
                new.append(sample)
                drawn += 1
                coverage[drawn] = solved.mean()
        view.update(new)
    coverage[drawn + 1 :] = coverage[drawn]
    return coverage
