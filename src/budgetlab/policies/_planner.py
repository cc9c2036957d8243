"""The online budget planner: each next sample goes where it buys the most coverage per unit cost.

Coverage is the share of problems with at least one verified-correct sample. A problem with a
correct sample is solved and gets nothing more. For an unsolved problem, the value of one more
sample of configuration ``j`` is the chance that it is the problem's first success: the chance
that the samples still in flight all fail and this one succeeds, under the posterior over the
problem's success chance per configuration given the failures seen so far
(:mod:`budgetlab.allocation._posterior`). The planner draws where that chance divided by the
configuration's cost per sample is highest.

Why the one-step gain, and hopeless problems. Under any prior, the chance that a configuration
succeeds next can only fall as it keeps failing (``E[p (1-p)^f] / E[(1-p)^f]`` decreases in
``f``), so each (problem, configuration) alone is a "deteriorating" arm, whose Gittins index
is its one-step gain: planning several samples ahead on one configuration never makes it look
better than its next sample does.
Across the configurations of one problem that no longer holds exactly (failures under one model
may make another more likely to be the one that solves it); the posterior takes that into
account at the next decision, but no lookahead plans for it. Hopeless problems need no special
case: their chance decays with every failure until other problems pay better, and with a prior
that ties configurations together (problem types learned offline, or the online prior's
hopeless share), failures under one configuration lower the others too, so the planner does not
try every configuration at full price. ``min_gain`` ends the run once no sample is worth that
much.

Prior. By default an empirical-Bayes prior fitted on the run's own samples at each decision
(independent Beta per configuration plus a hopeless share). With ``prior`` (problem types
learned on a training split, see :func:`budgetlab.allocation.fit_planner_prior`) the posterior
uses those types; with ``prior_weight`` below 1 it mixes them (that weight) with the online
prior (the rest), a hedge for runs whose problems may be unlike every training problem.

Cost per sample of each configuration, as observed in the run: ``"auto"`` weighs tokens
(prompt + completion) and verification seconds equally, each relative to the run's average
sample (verification only once it averages 10 ms a sample or more: below that, measured times
are noise, and planning on them would make decisions differ between a run and its resume);
``"tokens"``, ``"dollars"`` or ``"samples"`` (all equal) use one measure. Configurations not
drawn yet cost the average.

Stateless: every decision is a function of the view (samples, states and verdicts), so a resumed
run or a second worker decides the same; the budget is enforced by the run loop, and the
planner's choices do not depend on it. Each call proposes up to ``batch`` samples, chosen one
at a time with the earlier choices counted as in flight.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from budgetlab.allocation._posterior import AtomPrior, fit_online_prior, mix_terms
from budgetlab.core import Sample, SampleState
from budgetlab.core.view import RunView
from budgetlab.errors import InputError
from budgetlab.policies._sequential import check_count
from budgetlab.stores import Proposal

__all__ = ["CoveragePlanner"]

_EXAMPLE = "planner:batch=16,max_per_problem=64"
_COSTS = ("auto", "samples", "tokens", "dollars")
_MEMO = "planner.tally"
_MATERIAL_VERIFY_SECONDS = 0.01  # per sample on average; below it, verification time is not a cost


class _Tally:
    """Per (problem, configuration) sums over the samples finished at the front of the pair's
    list. Finished samples never change, so the sums stay true as the view grows."""

    FIELDS = ("wins", "fails", "errors", "tokens", "dollars", "verify", "billed")

    def __init__(self, shape: tuple[int, int]) -> None:
        self.prefix = np.zeros(shape, dtype=np.int64)
        for name in self.FIELDS:
            setattr(self, name, np.zeros(shape))

    def absorb(self, i: int, j: int, sample: Sample) -> None:
        if sample.state is SampleState.DONE:
            if sample.correct is True:
                self.wins[i, j] += 1
            else:  # wrong or without a verdict: not a verified success
                self.fails[i, j] += 1
        else:
            self.errors[i, j] += 1
        self.tokens[i, j] += sample.prompt_tokens + sample.completion_tokens
        self.dollars[i, j] += sample.cost
        self.verify[i, j] += sample.verify_seconds
        self.billed[i, j] += 1


@dataclass
class _State:
    """What one decision reads: the memoised sums plus the samples after the finished prefix."""

    tally: _Tally
    extra: _Tally
    count: npt.NDArray[np.int64]  # samples per pair in any state
    pending: npt.NDArray[np.float64]  # samples per pair not finished yet

    def total(self, name: str) -> npt.NDArray[np.float64]:
        return getattr(self.tally, name) + getattr(self.extra, name)


def _read(view: RunView) -> _State:
    shape = (len(view.problems), len(view.configs))
    tally = view.memo.get(_MEMO)
    if not isinstance(tally, _Tally) or tally.prefix.shape != shape:
        tally = view.memo[_MEMO] = _Tally(shape)
    extra = _Tally(shape)
    count = np.zeros(shape, dtype=np.int64)
    pending = np.zeros(shape)
    configs = [c.id for c in view.configs]
    for i, problem in enumerate(view.problems):
        for j, config in enumerate(configs):
            samples = view.samples(problem.id, config)
            n = len(samples)
            count[i, j] = n
            pos = int(tally.prefix[i, j])
            if pos == n:
                continue
            while pos < n and samples[pos] is not None and samples[pos].state.finished:
                tally.absorb(i, j, samples[pos])
                pos += 1
            tally.prefix[i, j] = pos
            for sample in samples[pos:]:
                if sample is not None and sample.state.finished:
                    extra.absorb(i, j, sample)
                else:
                    pending[i, j] += 1
    return _State(tally, extra, count, pending)


@dataclass(frozen=True)
class CoveragePlanner:
    """See the module docstring. ``batch``: samples proposed per call; ``max_per_problem`` and
    ``max_per_pair``: caps on a problem's samples (all configurations) and on one pair's;
    ``min_gain``: the least chance of a first success a sample must have to be drawn; ``cost``:
    ``auto``, ``samples``, ``tokens`` or ``dollars``; ``prior``: problem types learned offline (a
    mapping or the path of a JSON file, see :func:`budgetlab.allocation.fit_planner_prior`);
    ``prior_weight``: its share of the posterior, the rest being the online prior."""

    batch: int = 16
    max_per_problem: int = 64
    max_per_pair: int | None = None
    min_gain: float = 0.0
    cost: str = "auto"
    prior: Mapping[str, Any] | str | None = field(default=None, hash=False)
    prior_weight: float = 1.0
    name: str = "planner"
    #: Arguments that may name a JSON file: the policy keeps what the file holds, and a run
    #: records that (not the path), so it is rebuilt the same from anywhere.
    file_args: ClassVar[tuple[str, ...]] = ("prior",)

    def __post_init__(self) -> None:
        check_count("planner", "batch", self.batch, 1, _EXAMPLE)
        check_count("planner", "max_per_problem", self.max_per_problem, 1, _EXAMPLE)
        if self.max_per_pair is not None:
            check_count("planner", "max_per_pair", self.max_per_pair, 1, "planner:max_per_pair=300 (or leave it out)")
        if isinstance(self.min_gain, bool) or not isinstance(self.min_gain, (int, float)) or not 0 <= self.min_gain < 1:
            raise InputError(f"policy planner needs 0 <= min_gain < 1 (a chance of success per sample), got min_gain={self.min_gain!r}; write e.g. planner:min_gain=0.001")
        if self.cost not in _COSTS:
            raise InputError(f"policy planner: cost must be one of {', '.join(_COSTS)}, got cost={self.cost!r}; write e.g. planner:cost=tokens")
        weight = self.prior_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 1:
            raise InputError(f"policy planner needs 0 < prior_weight <= 1, got prior_weight={weight!r}; write e.g. planner:prior_weight=0.9")
        atoms = None
        if isinstance(self.prior, (str, Path)):
            object.__setattr__(self, "prior", _read_prior_file(self.prior))
        if self.prior is not None:
            atoms = _load_prior(self.prior)
        object.__setattr__(self, "_atoms", atoms)

    # ---- the Policy protocol ----------------------------------------------------------------
    def propose(self, view: RunView, limit: int) -> list[Proposal]:
        room = min(limit, self.batch)
        if room <= 0 or not view.problems or not view.configs:
            return []
        state = _read(view)
        wins, fails = state.total("wins"), state.total("fails")
        count = state.count.copy()
        open_rows = np.flatnonzero((wins.sum(axis=1) == 0) & (count.sum(axis=1) < self.max_per_problem))
        if not len(open_rows):
            return []
        pair_cap = self.max_per_pair if self.max_per_pair is not None else self.max_per_problem
        terms = self._model(view, wins, fails)
        cost = self._costs(state)
        pending = state.pending[open_rows].copy()
        failures = fails[open_rows]
        none, first = terms(failures, pending)
        gains = np.exp(first - none[:, None])
        best, choice = self._choose(gains, count[open_rows], open_rows, cost, pair_cap)
        heap = [(-float(best[row]), row, int(choice[row])) for row in np.flatnonzero(np.isfinite(best))]
        heapq.heapify(heap)
        picks: list[tuple[int, int]] = []
        while heap and len(picks) < room:
            _, row, j = heapq.heappop(heap)
            i = int(open_rows[row])
            picks.append((i, j))
            count[i, j] += 1
            pending[row, j] += 1
            if count[i].sum() >= self.max_per_problem:
                continue
            _, first_row = terms(failures[row : row + 1], pending[row : row + 1])
            best, choice = self._choose(np.exp(first_row - none[row]), count[i : i + 1], open_rows[row : row + 1], cost, pair_cap)
            if np.isfinite(best[0]):
                heapq.heappush(heap, (-float(best[0]), row, int(choice[0])))
        out: dict[tuple[int, int], int] = {}
        for key in picks:
            out[key] = out.get(key, 0) + 1
        return [Proposal(view.problems[i].id, view.configs[j].id, n) for (i, j), n in out.items()]

    def planned(self, view: RunView) -> int | None:
        return None  # how many samples the problems need is known only as they get solved

    # ---- internals --------------------------------------------------------------------------
    def _choose(self, gains: npt.NDArray[np.float64], count: npt.NDArray[np.int64], problems: npt.NDArray[np.int64],
                cost: npt.NDArray[np.float64], pair_cap: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:  # fmt: skip
        """Each row's best gain per cost (-inf: nothing worth drawing) and its configuration."""
        value = np.where((count < pair_cap) & (gains >= self.min_gain) & (gains > 0), gains / cost, -np.inf)
        best = value.max(axis=1)
        # Ties (as before any sample) go round the configurations from problem to problem, so the
        # first samples show every configuration on a spread of problems, not the first one everywhere.
        n_configs = value.shape[1]
        turn = (np.arange(n_configs)[None, :] - problems[:, None]) % n_configs
        choice = np.argmin(np.where(value == best[:, None], turn, n_configs), axis=1)
        return best, choice

    def _model(self, view: RunView, wins: npt.NDArray[np.float64], fails: npt.NDArray[np.float64]) -> Any:
        atoms: AtomPrior | None = self.__dict__["_atoms"]
        parts = []
        if atoms is not None:
            parts.append((float(self.prior_weight), _columns(atoms, view).log_terms))
        if atoms is None or self.prior_weight < 1:
            online = fit_online_prior(wins, fails)
            parts.append((1.0 - float(self.prior_weight) if atoms is not None else 1.0, online.log_terms))
        if len(parts) == 1:
            return parts[0][1]

        def terms(failures: npt.NDArray[np.float64], pending: npt.NDArray[np.float64]) -> Any:
            return mix_terms([(w, fn(failures, pending)) for w, fn in parts])

        return terms

    def _costs(self, state: _State) -> npt.NDArray[np.float64]:
        billed = state.total("billed").sum(axis=0)
        measures = {"tokens": ("tokens",), "dollars": ("dollars",), "auto": ("tokens", "verify"), "samples": ()}[self.cost]
        parts = []
        for measure in measures:
            used = state.total(measure).sum(axis=0)
            seen = billed > 0
            if not seen.any() or used[seen].sum() <= 0:
                continue
            if measure == "verify" and used.sum() < _MATERIAL_VERIFY_SECONDS * billed.sum():
                continue  # microseconds of string comparison are timing noise, not a cost to plan on
            per_sample = np.divide(used, billed, out=np.zeros_like(used), where=seen)
            average = per_sample[seen].mean()
            # unseen configurations cost the average; a free-looking one is floored so it is not infinitely good
            parts.append(np.maximum(np.where(seen, per_sample, average) / average, 1e-3))
        return np.mean(parts, axis=0) if parts else np.ones(len(billed))


def _columns(atoms: AtomPrior, view: RunView) -> AtomPrior:
    """The prior's columns in the order of the run's configurations, matched by name or id."""
    cache: dict[tuple[str, ...], AtomPrior] = atoms.__dict__.setdefault("_by_configs", {})
    key = tuple(c.id for c in view.configs)
    if key not in cache:
        names = []
        for config in view.configs:
            name = next((n for n in (config.name, config.model, config.id) if n in atoms.configs), None)
            if name is None:
                raise InputError(f"policy planner: the prior has no configuration named {config.name!r} (it has "
                                 f"{', '.join(atoms.configs[:6])}); fit the prior on samples of this run's configurations")  # fmt: skip
            names.append(name)
        cache[key] = atoms.reorder(names)
    return cache[key]


def _read_prior_file(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"policy planner: cannot read the prior file {str(path)!r} ({err}); give a JSON file written from fit_planner_prior") from None


def _load_prior(prior: Mapping[str, Any]) -> AtomPrior:
    try:
        return AtomPrior.from_dict(prior)
    except ValueError as err:
        raise InputError(f"policy planner: bad prior: {err}") from None
