"""From a pilot's samples to totals and coverage for whole runs of any size.

Spend. For each configuration, each (problem, configuration) pair's spend per sample (tokens,
dollars) is known on the pilot problems. For the other problems it is predicted by a regression
on the prompt's length, which is known for every problem before anything is drawn (a long prompt
costs more prompt tokens and often a longer answer); with no spread in prompt lengths this is the
pilot mean. A run of k samples per pair costs k times the sum of the per-sample spends. Intervals:
the regression's prediction interval for the sum over the problems not in the pilot (t quantile).

Time. The pilot's throughput after its first settled batch (tokens per second; the first batch
also pays the model load and warm-up, counted once as start-up) scales the predicted tokens. It
holds for the same machine, load and concurrency only.

Coverage. pass@k per configuration on the pilot problems (a random sample of the run's problems):
for k up to the samples drawn, the unbiased estimate with a bootstrap interval over problems; for
larger k, :func:`budgetlab.analysis.extrapolate_coverage`. maj@k for k up to the samples drawn.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from budgetlab.analysis import (
    Estimate,
    extrapolate_coverage,
    maj_at_k_with_ci,
    pass_at_k_with_ci,
)
from budgetlab.core import Problem, Sample, SampleState, SamplingConfig, with_distinct_names
from budgetlab.errors import InputError

__all__ = ["Forecast", "ForecastRow", "Scenario", "parse_scenarios", "predict"]

ALPHA = 0.1  # 90% intervals throughout a forecast


@dataclass(frozen=True)
class Scenario:
    """A what-if the user asks about: ``k`` samples per pair, or the most a budget buys."""

    label: str
    k: int | None = None
    limit: tuple[str, float] | None = None  # ("samples" | "tokens" | "dollars", amount)


def parse_scenarios(text: str | None) -> list[Scenario]:
    """``k=8,k=64,samples=1000,tokens=2e6,dollars=5`` (or bare numbers: k values)."""
    if not text:
        return []
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep:
            key, value = "k", part
        key = key.strip().lower()
        try:
            amount = float(value)
        except ValueError:
            raise InputError(f"--budgets entry {part!r} is not KEY=NUMBER; e.g. --budgets k=8,k=64,tokens=2e6,dollars=5") from None
        if key == "k":
            if amount < 1 or amount != int(amount):
                raise InputError(f"--budgets k must be a whole number >= 1, got {value!r}; e.g. k=64")
            out.append(Scenario(f"k={int(amount)}", k=int(amount)))
        elif key in ("samples", "tokens", "dollars"):
            if not amount > 0 or not math.isfinite(amount):
                raise InputError(f"--budgets {key} must be a positive number, got {value!r}; e.g. {key}=1000")
            out.append(Scenario(f"{key}={amount:g}", limit=(key, amount)))
        else:
            raise InputError(f"--budgets key {key!r} is not one of k, samples, tokens, dollars; e.g. --budgets k=64,dollars=5")
    return out


@dataclass(frozen=True)
class ForecastRow:
    label: str
    k: int
    samples: int
    tokens: Estimate
    dollars: Estimate
    seconds: Estimate | None
    pass_at_k: dict[str, Estimate]
    maj_at_k: dict[str, Estimate]
    extrapolated: bool

    def to_dict(self) -> dict[str, Any]:
        def est(e: Estimate | None) -> dict[str, float] | None:
            return None if e is None else {"value": e.value, "lo": e.lo, "hi": e.hi}

        return {
            "label": self.label, "k": self.k, "samples": self.samples, "tokens": est(self.tokens),
            "dollars": est(self.dollars), "seconds": est(self.seconds),
            "pass_at_k": {c: est(e) for c, e in self.pass_at_k.items()},
            "maj_at_k": {c: est(e) for c, e in self.maj_at_k.items()}, "extrapolated": self.extrapolated,
        }


@dataclass(frozen=True)
class Forecast:
    run: str
    problems: int
    configs: list[str]
    pilot_problems: int
    pilot_k: int
    pilot_samples: int
    pilot_spent: dict[str, float]
    rows: list[ForecastRow]
    method: str
    throughput: dict[str, float] | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run, "problems": self.problems, "configs": self.configs,
            "pilot": {"problems": self.pilot_problems, "k": self.pilot_k, "samples": self.pilot_samples,
                      "spent": self.pilot_spent, "throughput": self.throughput},
            "interval": f"{int(100 * (1 - ALPHA))}%", "extrapolation_method": self.method,
            "rows": [r.to_dict() for r in self.rows], "notes": self.notes,
        }


def _prompt_size(problem: Problem) -> float:
    if problem.prompt is not None:
        return float(len(problem.prompt))
    return float(sum(len(str(m.get("content", ""))) for m in problem.messages or ()))


class _PerSample:
    """One spend quantity (tokens or dollars) per sample, for every (problem, configuration)."""

    def __init__(self, known: dict[str, float], sizes: dict[str, float]) -> None:
        self.known = known  # pilot problem -> spend per sample
        self.sizes = sizes  # every problem -> prompt size

    def prediction(self) -> tuple[float, float, int]:
        """(sum over all problems of the spend per sample, its variance, degrees of freedom).

        Ordinary least squares on the prompt size; the variance of the predicted sum over the
        problems outside the pilot is that of the fitted line's sum plus one residual variance
        per problem (the textbook prediction variance)."""
        pilot = list(self.known)
        others = [p for p in self.sizes if p not in self.known]
        y = np.array([self.known[p] for p in pilot])
        x = np.array([self.sizes[p] for p in pilot])
        use_size = len(pilot) >= 4 and np.ptp(x) > 0
        design = np.column_stack([np.ones_like(x), x]) if use_size else np.ones((len(pilot), 1))
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        dof = max(len(pilot) - design.shape[1], 1)
        resid_var = float(((y - design @ coef) ** 2).sum() / dof)
        rows = np.column_stack([np.ones(len(others)), [self.sizes[p] for p in others]]) if use_size else np.ones((len(others), 1))
        predicted = float(np.clip(rows @ coef, 0.0, None).sum()) if others else 0.0
        if others:
            a = rows.sum(axis=0)
            var = resid_var * (float(a @ np.linalg.pinv(design.T @ design) @ a) + len(others))
        else:
            var = 0.0
        return float(y.sum()) + predicted, var, dof


def _spend_totals(per: dict[str, _PerSample]) -> tuple[float, float, float]:
    """Per-sample spend summed over every pair: (value, lo, hi), a t interval."""
    from scipy import stats

    parts = [p.prediction() for p in per.values()]
    value = sum(v for v, _, _ in parts)
    var = sum(v for _, v, _ in parts)
    dof = min((d for _, _, d in parts), default=1)
    half = float(stats.t.ppf(1 - ALPHA / 2, dof)) * float(np.sqrt(var))
    return value, max(value - half, 0.0), value + half


def predict(
    run: str,
    problems: list[Problem],
    configs: list[SamplingConfig],
    samples: list[Sample],
    pilot: list[str],
    planned_k: int,
    scenarios: list[Scenario],
    *,
    method: str = "bracket",
    throughput: dict[str, float] | None = None,
    n_boot: int = 200,
    seed: int = 0,
    untimed: str = "this invocation drew no pilot samples to time (they were drawn before)",
) -> Forecast:
    """The forecast of ``run`` from its samples on the ``pilot`` problems (see the module doc).
    ``untimed``: why there is no ``throughput``, for the note that says so."""
    configs = with_distinct_names(configs)
    pilot_set = set(pilot)
    sizes = {p.id: _prompt_size(p) for p in problems}
    by_pair: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in samples:
        if s.problem in pilot_set and s.state.finished:
            by_pair[(s.problem, s.config)].append(s)
    drawn_pairs = {pc: v for pc, v in by_pair.items() if v}
    if not drawn_pairs:
        raise InputError(f"run {run!r} has no finished samples on its pilot problems; the pilot drew nothing "
                         "(was the budget already spent?)")
    tokens: dict[str, _PerSample] = {}
    dollars: dict[str, _PerSample] = {}
    for c in configs:
        known_t, known_d = {}, {}
        for p in pilot:
            got = drawn_pairs.get((p, c.id))
            if got:
                known_t[p] = sum(s.prompt_tokens + s.completion_tokens for s in got) / len(got)
                known_d[p] = sum(s.cost for s in got) / len(got)
        if known_t:
            tokens[c.id] = _PerSample(known_t, sizes)
            dollars[c.id] = _PerSample(known_d, sizes)
    tok_per_round = _spend_totals(tokens)  # tokens of one sample of every pair
    usd_per_round = _spend_totals(dollars)
    pairs = len(problems) * len(configs)

    verdicts: dict[str, tuple[list[int], list[int], list[tuple[list[Any], list[Any]]]]] = {}
    for c in configs:
        ns, cs, votes = [], [], []
        for p in pilot:
            done = sorted((s for s in drawn_pairs.get((p, c.id), []) if s.state is SampleState.DONE and s.correct is not None),
                          key=lambda s: s.index)
            if done:
                ns.append(len(done))
                cs.append(sum(bool(s.correct) for s in done))
                votes.append(([s.answer for s in done], [s.correct for s in done]))
        verdicts[c.name] = (ns, cs, votes)
    pilot_k = min((min(v[0]) for v in verdicts.values() if v[0]), default=0)

    notes = []
    per_round = {"samples": float(pairs), "tokens": tok_per_round[0], "dollars": usd_per_round[0]}
    free = [sc for sc in scenarios if sc.limit is not None and sc.label.startswith("--budget ") and per_round[sc.limit[0]] <= 0]
    for sc in free:  # the run's own --budget on a resource the pilot did not spend: it limits nothing
        notes.append(f"the run's {sc.label} limits no k: the pilot's samples cost no {sc.limit[0]}")  # type: ignore[index]
    scenarios = [sc for sc in scenarios if sc not in free]
    ks = [sc.k if sc.k is not None else _affordable_k(sc, pairs, tok_per_round[0], usd_per_round[0]) for sc in scenarios]
    coverage = _coverage(verdicts, sorted(set(ks)), method, n_boot, seed)
    rows = [
        _row(sc.label, k, pairs, tok_per_round, usd_per_round, throughput, coverage, pilot_k)
        for sc, k in zip(scenarios, ks)
    ]
    if pilot_k and any(r.k > pilot_k for r in rows):
        notes.append(f"pass@k beyond k={pilot_k} (the pilot's samples per problem) is extrapolated with method {method}")
    if throughput is None:
        notes.append(f"no wall-time forecast: {untimed}")
    spent = {"samples": sum(len(v) for v in drawn_pairs.values()),
             "tokens": sum(s.prompt_tokens + s.completion_tokens for v in drawn_pairs.values() for s in v),
             "dollars": sum(s.cost for v in drawn_pairs.values() for s in v)}
    return Forecast(run, len(problems), [c.name for c in configs], len(pilot), pilot_k, int(spent["samples"]),
                    spent, rows, method, throughput, notes)


def _affordable_k(sc: Scenario, pairs: int, tokens_per_round: float, dollars_per_round: float) -> int:
    assert sc.limit is not None
    key, amount = sc.limit
    per_round = {"samples": float(pairs), "tokens": tokens_per_round, "dollars": dollars_per_round}[key]
    if per_round <= 0:
        raise InputError(f"--budgets {sc.label}: the pilot's samples cost no {key}, so that budget buys any k; ask with k=N")
    return int(amount // per_round)


def _scaled(per_round: tuple[float, float, float], k: int) -> Estimate:
    value, lo, hi = per_round
    return Estimate(value * k, lo * k, hi * k, k, 0)


def _coverage(verdicts: dict[str, Any], ks: list[int], method: str, n_boot: int,
              seed: int) -> dict[int, tuple[dict[str, Estimate], dict[str, Estimate]]]:
    """pass@k and maj@k per configuration at every k, extrapolating once per configuration."""
    out: dict[int, tuple[dict[str, Estimate], dict[str, Estimate]]] = {k: ({}, {}) for k in ks}
    for name, (ns, cs, votes) in verdicts.items():
        if not ns:
            continue
        drawn = min(ns)
        has_answers = any(a is not None for answers, _ in votes for a in answers)
        for k in (k for k in ks if 1 <= k <= drawn):
            out[k][0][name] = _widen(pass_at_k_with_ci(ns, cs, k, n_boot=n_boot, alpha=ALPHA, seed=seed))
            if has_answers:
                out[k][1][name] = _widen(maj_at_k_with_ci(votes, k, n_boot=n_boot, alpha=ALPHA, seed=seed))
        beyond = [k for k in ks if k > drawn]
        if beyond:
            ext = extrapolate_coverage(ns, cs, beyond, method=method, n_boot=max(n_boot // 5, 20), alpha=ALPHA, seed=seed)
            for k in beyond:
                out[k][0][name] = _widen(ext.estimates[k], len(ns))
    return out


def _widen(est: Estimate, problems: int | None = None) -> Estimate:
    """The bootstrap interval, widened to at least the Wilson score interval of a proportion over
    the pilot's problems. A small pilot where every problem scored the same (say none solved)
    gives a bootstrap interval of zero width, which would claim certainty it does not have."""
    from budgetlab.analysis._scaling import wilson_interval

    m = problems or est.n_problems
    if m < 1:
        return est
    lo, hi = wilson_interval(est.value, m, ALPHA)
    return Estimate(est.value, float(min(est.lo, lo)), float(max(est.hi, hi)), est.k, m)


def _row(label: str, k: int, pairs: int, tok: tuple[float, float, float], usd: tuple[float, float, float],
         throughput: dict[str, float] | None, coverage: dict[int, tuple[dict[str, Estimate], dict[str, Estimate]]],
         pilot_k: int) -> ForecastRow:
    tokens = _scaled(tok, k)
    seconds = None
    if throughput is not None and throughput.get("tokens_per_second", 0) > 0:
        rate, start = throughput["tokens_per_second"], throughput["startup_seconds"]
        seconds = Estimate(start + tokens.value / rate, start + tokens.lo / rate, start + tokens.hi / rate, k, 0)
    passes, majs = coverage.get(k, ({}, {}))
    return ForecastRow(label, k, k * pairs, tokens, _scaled(usd, k), seconds, passes, majs, k > pilot_k > 0)
