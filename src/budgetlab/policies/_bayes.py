"""Bayes-optimal stopping under an empirical-Bayes prior (budgetlab's own rule).

Each problem's answers are modelled as draws from a distribution whose two most common answers
have shares ``(s1, s2)`` (the rest, unparsed answers included, share ``1 - s1 - s2``). The prior
is a set of weighted atoms ``(s1, s2)``, each with the chances ``c1``, ``c2`` that the top and the
second answer of such a problem are correct. :func:`fit_bayes_stopping` fits it on a calibration
split of problems: the weights by maximum likelihood (EM on a grid) from the vote counts, so it
learns for instance that most problems are near-unanimous and a 3-0 start rarely comes from a
50/50 problem; ``c1``, ``c2`` from the verdicts, shrunk towards a Platt calibration of
``(vote share, correct)``. Without verdicts an answer is taken to be correct with its share.

The state of a problem is ``(n drawn, votes of the leader, votes of the runner-up)``. Stopping
selects the leader (majority vote), whose chance of being correct the posterior gives; one more
sample costs ``cost`` (in accuracy). Backward induction over every state up to ``max_samples``
gives the policy that maximises expected accuracy minus ``cost`` times expected samples, and
the policy stops exactly where stopping is worth at least as much as going on. Unlike a fixed
posterior threshold it keeps drawing on close races between plausible answers and stops early
where more samples would not change the selection, or would not make it right.

The prior and the cost are the policy's arguments, recorded with the run, so the run is rebuilt
from its record; the stop table is computed once per policy (milliseconds).
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from budgetlab.calibration import calibrator_from_dict, fit_calibrator
from budgetlab.errors import InputError
from budgetlab.policies._adaptive import vote_counts
from budgetlab.policies._sequential import SequentialStopping, check_count, check_not_above_max

__all__ = ["BayesStopping", "fit_bayes_stopping", "share_grid"]

_EPS = 1e-3  # floor on every share, so no observation is impossible under any atom
_SHRINK = 2.0  # pseudo-problems pulling an atom's c1, c2 towards the share calibration
_EXAMPLE = "bayes:cost=0.0003,max_samples=40"
Atom = tuple[float, float, float, float, float]  # s1, s2, weight, c1, c2


def share_grid(step: float = 0.05) -> npt.NDArray[np.float64]:
    """Atoms ``(s1, s2)`` with ``s1 >= s2 >= 0``, ``s1 + s2 <= 1`` on a grid of ``step``."""
    if not 0 < step <= 0.5:
        raise ValueError(f"share_grid needs 0 < step <= 0.5, got step={step}")
    k = int(round(1 / step))
    pts = [(i / k, j / k) for i in range(1, k + 1) for j in range(0, i + 1) if i + j <= k]
    return np.array(pts, dtype=np.float64)


def _components(shares: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
    s1 = np.maximum(shares[:, 0], _EPS)
    s2 = np.maximum(shares[:, 1], _EPS)
    rest = np.maximum(1.0 - shares[:, 0] - shares[:, 1], _EPS)
    total = s1 + s2 + rest
    return s1 / total, s2 / total, rest / total


@functools.lru_cache(maxsize=32)
def _stop_table(max_samples: int, cost: float, min_samples: int, prior: tuple[Atom, ...]) -> npt.NDArray[np.bool_]:
    """``table[n, a, b]``: stop with ``n`` drawn, leader ``a`` votes, runner-up ``b`` votes."""
    n_max = max_samples
    atoms = np.array(prior, dtype=np.float64)
    s1, s2, rest = _components(atoms[:, :2])
    # Two ways to label each atom: the leader so far is the top answer, or it is the second.
    p_lead = np.concatenate([s1, s2])
    p_run = np.concatenate([s2, s1])
    log_w = np.log(np.concatenate([atoms[:, 2], atoms[:, 2]]))
    correct_lead = np.concatenate([atoms[:, 3], atoms[:, 4]])
    logs = np.log(np.stack([p_lead, p_run, np.concatenate([rest, rest])]))

    table = np.zeros((n_max + 1, n_max + 1, n_max + 1), dtype=bool)
    value_next = np.zeros((n_max + 2, n_max + 2))
    for n in range(n_max, -1, -1):
        a, b = np.array([(a, b) for a in range(n + 1) for b in range(min(a, n - a) + 1) if a > 0 or b == 0], dtype=np.int64).T
        log_post = log_w[None, :] + np.stack([a, b, n - a - b], axis=1).astype(np.float64) @ logs
        post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        stop_value = np.where(a > 0, post @ correct_lead, 0.0)
        if n == n_max:
            stop = np.ones(a.size, dtype=bool)
            value = stop_value
        else:
            q_lead, q_run = post @ p_lead, post @ p_run
            q_rest = np.clip(1.0 - q_lead - q_run, 0.0, 1.0)
            # the runner-up's vote makes it the leader when they were level
            run_next = np.where(b + 1 <= a, value_next[a, np.minimum(b + 1, a)], value_next[b + 1, a])
            draw = np.where(a > 0, q_lead * value_next[a + 1, b] + q_run * run_next, (q_lead + q_run) * value_next[1, 0])
            cont = draw + q_rest * value_next[a, b] - cost
            stop = (stop_value >= cont) & (n >= min_samples)
            value = np.where(stop, stop_value, cont)
        table[n, a, b] = stop
        value_next = np.zeros((n_max + 2, n_max + 2))
        value_next[a, b] = value
    return table


@functools.lru_cache(maxsize=4)
def _uniform_prior(step: float = 0.05) -> tuple[tuple[float, float, float], ...]:
    grid = share_grid(step)
    return tuple((float(s1), float(s2), 1.0) for s1, s2 in grid)


@dataclass(frozen=True)
class BayesStopping(SequentialStopping):
    """See the module docstring. ``prior``: atoms ``[s1, s2, weight, c1, c2]`` (``c1``, ``c2``
    may be left out: then ``calibrator`` maps the shares to them, or the shares are used as they
    are); by default a uniform prior over a 0.05 grid. ``cost``: the accuracy one more sample
    must be expected to buy. Fit the prior with :func:`fit_bayes_stopping` and keep it with
    :meth:`save_prior`; ``prior`` may then be that JSON file's path (``bayes:prior=prior.json``),
    whose calibrator, if any, is used unless ``calibrator`` is given."""

    cost: float = 0.0005
    max_samples: int = 40
    prior: Sequence[Sequence[float]] | str | None = field(default=None, hash=False)
    calibrator: Mapping[str, Any] | None = field(default=None, hash=False)
    min_samples: int = 1
    name: str = "bayes"
    #: Arguments that may name a JSON file: the policy keeps what the file holds, and a run
    #: records that (not the path), so it is rebuilt the same from anywhere.
    file_args: ClassVar[tuple[str, ...]] = ("prior", "calibrator")

    def __post_init__(self) -> None:
        check_count("bayes", "max_samples", self.max_samples, 1, _EXAMPLE)
        check_count("bayes", "min_samples", self.min_samples, 1, _EXAMPLE)
        check_not_above_max("bayes", "min_samples", self.min_samples, self.max_samples, _EXAMPLE)
        if isinstance(self.cost, bool) or not isinstance(self.cost, (int, float)) or not 0 <= self.cost < 1:
            raise InputError(f"policy bayes needs 0 <= cost < 1 (accuracy per sample), got cost={self.cost!r}; write e.g. {_EXAMPLE}")
        if self.max_samples > 200:
            raise InputError(f"policy bayes plans over every state up to max_samples, which must be <= 200, got max_samples={self.max_samples}")
        if isinstance(self.prior, (str, Path)):
            object.__setattr__(self, "prior", self._read_prior(Path(self.prior)))
        if self.calibrator is not None:
            try:
                calibrator = calibrator_from_dict(self.calibrator)
            except ValueError as err:
                raise InputError(f"policy bayes: bad calibrator: {err}") from None
            if isinstance(self.calibrator, (str, os.PathLike)):  # a file: kept as its mapping (args, save_prior)
                object.__setattr__(self, "calibrator", calibrator.to_dict())
        if self.prior is not None:
            try:
                atoms = tuple(tuple(float(v) for v in atom) for atom in self.prior)
            except (TypeError, ValueError):
                atoms = ((),)
            if not atoms or any(len(t) not in (3, 5) for t in atoms):
                raise InputError(f"policy bayes: prior must be a list of [share1, share2, weight] or [share1, share2, weight, "
                                 f"correct1, correct2] atoms, got {self.prior!r:.80}; fit one with fit_bayes_stopping")  # fmt: skip
            bad = [t for t in atoms if not (0 <= t[1] <= t[0] <= 1 and t[0] + t[1] <= 1 + 1e-9 and t[2] >= 0 and all(0 <= c <= 1 for c in t[3:]))]
            if bad or sum(t[2] for t in atoms) <= 0:
                raise InputError(f"policy bayes: prior atoms need 0 <= share2 <= share1, share1 + share2 <= 1, weights >= 0 (not "
                                 f"all 0) and correctness in [0, 1], got {(bad or atoms)[:3]!r}")  # fmt: skip
            object.__setattr__(self, "prior", atoms)

    def _read_prior(self, path: Path) -> Any:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(f"policy bayes: cannot read the prior file {str(path)!r} ({err}); write one with "
                             "fit_bayes_stopping(...).save_prior(path)") from None  # fmt: skip
        if isinstance(data, dict):
            if "prior" not in data:  # a calibrator file, a typo: not the uniform default, silently
                raise InputError(f"policy bayes: the prior file {str(path)!r} has no 'prior' (it has {', '.join(map(repr, data)) or 'nothing'}); "
                                 "write one with fit_bayes_stopping(...).save_prior(path)")  # fmt: skip
            if self.calibrator is None and data.get("calibrator") is not None:
                object.__setattr__(self, "calibrator", data["calibrator"])
            data = data.get("prior")
        return data

    def save_prior(self, path: str | Path) -> None:
        """Write the prior (and calibrator) as JSON, for ``bayes:prior=PATH`` on another run."""
        if self.prior is None:
            raise InputError("policy bayes has no fitted prior to save (it uses the uniform default); fit one with fit_bayes_stopping")
        data = {"prior": [list(atom) for atom in self.prior], "calibrator": self.calibrator}  # type: ignore[union-attr]
        Path(path).write_text(json.dumps(data) + "\n", encoding="utf-8")

    def atoms(self) -> tuple[Atom, ...]:
        """The prior as normalised ``(s1, s2, weight, c1, c2)`` atoms."""
        prior = self.prior if self.prior is not None else _uniform_prior()
        total = sum(t[2] for t in prior)  # type: ignore[index]
        mapper = calibrator_from_dict(self.calibrator).predict if self.calibrator is not None else np.asarray
        out = []
        for t in prior:  # type: ignore[union-attr]
            if t[2] <= 0:
                continue
            c1, c2 = (t[3], t[4]) if len(t) == 5 else tuple(float(v) for v in mapper([t[0], t[1]]))
            out.append((float(t[0]), float(t[1]), t[2] / total, float(c1), float(c2)))
        return tuple(out)

    def table(self) -> npt.NDArray[np.bool_]:
        """``table[n, a, b]``: whether to stop with ``n`` drawn, ``a`` votes for the leader and
        ``b`` for the runner-up (computed once per policy, and shared by equal policies)."""
        cached = self.__dict__.get("_table")
        if cached is None:
            cached = _stop_table(self.max_samples, float(self.cost), self.min_samples, self.atoms())
            object.__setattr__(self, "_table", cached)
        return cached

    def should_stop(self, answers: Sequence[Hashable | None], confidences: Sequence[float | None] | None = None) -> bool:
        n = len(answers)
        if n >= self.max_samples:
            return True
        counts = vote_counts(answers)
        lead = counts[0] if counts else 0
        runner_up = counts[1] if len(counts) > 1 else 0
        return bool(self.table()[n, lead, runner_up])

    def args(self) -> dict[str, Any]:
        """The arguments to record with a run (JSON-serialisable) to rebuild this policy."""
        out: dict[str, Any] = {"cost": self.cost, "max_samples": self.max_samples, "min_samples": self.min_samples}
        if self.prior is not None:
            out["prior"] = [list(atom) for atom in self.prior]
        if self.calibrator is not None:
            out["calibrator"] = dict(self.calibrator)
        return out


def _pool_summary(pool: Sequence[Hashable | None], flags: Sequence[bool | None] | None) -> tuple[tuple[int, int, int], float, float, list[tuple[float, bool]]]:
    """Vote counts (top, second, rest), whether the top and second answers are correct, and
    (share, correct) for every judged answer."""
    votes = Counter(a for a in pool if a is not None).most_common()
    top = votes[0][1] if votes else 0
    second = votes[1][1] if len(votes) > 1 else 0
    counts = (top, second, len(pool) - top - second)
    if flags is None:
        return counts, 0.0, 0.0, []
    tally: dict[Hashable, list[int]] = {}
    for answer, ok in zip(pool, flags):
        if answer is not None and ok is not None:
            tally.setdefault(answer, [0, 0])[0 if ok else 1] += 1
    right = {a for a, (yes, no) in tally.items() if yes > no}
    pairs = [(n / len(pool), a in right) for a, n in votes if a in tally]
    top_ok = float(bool(votes) and votes[0][0] in right)
    second_ok = float(len(votes) > 1 and votes[1][0] in right)
    return counts, top_ok, second_ok, pairs


def fit_bayes_stopping(
    answers: Sequence[Sequence[Hashable | None]],
    correct: Sequence[Sequence[bool | None]] | None = None,
    *,
    cost: float = 0.0005,
    max_samples: int | None = None,
    min_samples: int = 1,
    calibration: str = "platt",
    grid_step: float = 0.025,
    iterations: int = 1000,
) -> BayesStopping:
    """Fit the prior on calibration problems (never on the problems it will be scored on).

    ``answers[i]`` holds every recorded answer of calibration problem ``i`` (``None``: unparsed),
    ``correct[i]`` their verdicts (optional). The weights are the maximum-likelihood mixture over
    :func:`share_grid` atoms (EM over the problems' top/second/rest vote counts), keeping atoms of
    weight >= 1e-4. With verdicts, each atom's ``c1``, ``c2`` are the posterior-weighted rates at
    which the top and second answers of the calibration problems are correct, shrunk towards a
    ``calibration`` (``"platt"`` or ``"isotonic"``) fit of (vote share, correct).
    """
    if not answers:
        raise ValueError("fit_bayes_stopping needs at least one calibration problem, got none")
    if correct is not None and len(correct) != len(answers):
        raise ValueError(f"fit_bayes_stopping got {len(answers)} problems' answers but {len(correct)} problems' verdicts")
    summaries = []
    for i, pool in enumerate(answers):
        if not pool:
            raise ValueError(f"calibration problem {i} has no answers; drop it or record its samples")
        flags = None if correct is None else correct[i]
        if flags is not None and len(flags) != len(pool):
            raise ValueError(f"calibration problem {i}: {len(pool)} answers but {len(flags)} verdicts")
        summaries.append(_pool_summary(pool, flags))
    grid = share_grid(grid_step)
    s1, s2, rest = _components(grid)
    c = np.array([s[0] for s in summaries], dtype=np.float64)
    as_top = c[:, :1] * np.log(s1) + c[:, 1:2] * np.log(s2) + c[:, 2:] * np.log(rest)
    as_second = c[:, :1] * np.log(s2) + c[:, 1:2] * np.log(s1) + c[:, 2:] * np.log(rest)
    shift = np.maximum(as_top.max(axis=1, keepdims=True), as_second.max(axis=1, keepdims=True))
    lik_top, lik_second = np.exp(as_top - shift), np.exp(as_second - shift)
    weights = np.full(len(grid), 1.0 / len(grid))
    for _ in range(iterations):
        resp = (lik_top + lik_second) * weights
        resp /= resp.sum(axis=1, keepdims=True)
        weights = resp.mean(axis=0)
    keep = np.flatnonzero(weights >= 1e-4)
    weights = weights / weights[keep].sum()

    pairs = [p for s in summaries for p in s[3]]
    if correct is not None and pairs and len({ok for _, ok in pairs}) == 2:
        share_calibration = fit_calibrator(calibration, [x for x, _ in pairs], [ok for _, ok in pairs])
        top_ok = np.array([s[1] for s in summaries])
        second_ok = np.array([s[2] for s in summaries])
        r_top, r_second = lik_top * weights, lik_second * weights
        norm = (r_top + r_second).sum(axis=1, keepdims=True)
        r_top, r_second = r_top / norm, r_second / norm
        # under "as_second" the problem's observed top answer is the atom's second one
        hits1 = r_top.T @ top_ok + r_second.T @ second_ok
        hits2 = r_top.T @ second_ok + r_second.T @ top_ok
        mass = (r_top + r_second).sum(axis=0)
        c1 = (hits1 + _SHRINK * share_calibration.predict(grid[:, 0])) / (mass + _SHRINK)
        c2 = (hits2 + _SHRINK * share_calibration.predict(grid[:, 1])) / (mass + _SHRINK)
        prior = [[float(grid[k, 0]), float(grid[k, 1]), round(float(weights[k]), 6), round(float(c1[k]), 4), round(float(c2[k]), 4)] for k in keep]
    else:
        prior = [[float(grid[k, 0]), float(grid[k, 1]), round(float(weights[k]), 6)] for k in keep]
    n_max = max_samples if max_samples is not None else max(len(pool) for pool in answers)
    return BayesStopping(cost=cost, max_samples=n_max, prior=prior, min_samples=min_samples)
