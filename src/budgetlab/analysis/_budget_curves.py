"""Coverage against budget: per configuration, for the mix, extrapolated, and against cost.

For each configuration: pass@k over k = 1, 2, 4, ... up to the samples drawn (unbiased, with
bootstrap intervals; a k beyond ``observed_k``, the samples every problem has, averages only the
problems that drew k, and ``observed_k`` itself is always one of the ks), the curve extrapolated
to ``horizon`` times that many samples with :func:`budgetlab.analysis.extrapolate_coverage`, and the mean tokens and dollars per sample, which
turn k into a cost (the cost frontier). The *mix* pools every configuration's samples of a
problem, as if each draw came from any configuration: k samples of the mix cost k times the
pooled mean cost per sample. ``run_problems`` is the run's number of problems: a configuration
whose ``problems`` is smaller (the budget stopped the run) covers only the problems it reached.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from budgetlab.analysis._curves import default_ks, pass_at_k_with_ci
from budgetlab.analysis._scaling import extrapolate_coverage
from budgetlab.analysis._store_arg import StoreLike, reading
from budgetlab.core import SampleState, with_distinct_names
from budgetlab.stores import BaseStore

__all__ = ["budget_curves"]

MIX = "mix (all configurations pooled)"


def _curve(ns: np.ndarray, cs: np.ndarray, tokens: float, dollars: float, method: str, horizon: int,
           n_boot: int, alpha: float, seed: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"problems": int(ns.size), "observed_k": int(ns.min()), "tokens_per_sample": tokens,
                             "dollars_per_sample": dollars, "pass_at_k": {}, "ci": {}, "extrapolated": None}
    # The measured curve ends at the samples every problem has (where the extrapolation starts);
    # the ks beyond it average only the problems that drew that many.
    for k in sorted({*default_ks(int(ns.max())), int(ns.min())}):
        keep = ns >= k
        est = pass_at_k_with_ci(ns[keep], cs[keep], k, n_boot=n_boot, alpha=alpha, seed=seed)
        entry["pass_at_k"][str(k)] = est.value
        entry["ci"][str(k)] = [est.lo, est.hi]
    observed = int(ns.min())
    if observed >= 2 and horizon > 1:
        ks = sorted({observed * 2**j for j in range(1, int(np.log2(horizon)) + 1)})
        try:
            ext = extrapolate_coverage(ns, cs, ks, method=method, n_boot=n_boot, alpha=alpha, seed=seed)
            entry["extrapolated"] = ext.to_dict()
        except ValueError as err:  # e.g. every problem solved or none: nothing to extrapolate
            entry["extrapolated"] = {"error": str(err)}
    return entry


def budget_curves(
    store: StoreLike,
    run: str,
    *,
    method: str = "bracket",
    horizon: int = 16,
    n_boot: int = 100,
    alpha: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Coverage-vs-budget curves of ``run`` (JSON-ready; see the module docstring).

    Extrapolation needs at least 2 judged samples on every problem of a configuration (fewer
    cannot tell hard problems from unlucky ones); ``extrapolated`` is ``None`` otherwise.
    ``store`` is an open store or its path (as :func:`budgetlab.run` takes it).
    """
    with reading(store, "budget_curves") as opened:
        opened.get_run(run)  # a name not in the store is RunNotFound, not empty curves
        return _budget_curves(opened, run, method=method, horizon=horizon, n_boot=n_boot, alpha=alpha, seed=seed)


def _budget_curves(
    store: BaseStore, run: str, *, method: str, horizon: int, n_boot: int, alpha: float, seed: int
) -> dict[str, Any]:
    configs = with_distinct_names(store.configs(run))
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    spend: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # samples, tokens, dollars
    for s in store.samples(run, [SampleState.DONE, SampleState.FAILED]):
        totals = spend[s.config]
        totals[0] += 1
        totals[1] += s.prompt_tokens + s.completion_tokens
        totals[2] += s.cost
        if s.state is SampleState.DONE and s.correct is not None:
            pair = counts[s.config][s.problem]
            pair[0] += 1
            pair[1] += bool(s.correct)

    out: dict[str, Any] = {"method": method, "interval": f"{round(100 * (1 - alpha))}%", "configs": {}, "mix": None,
                           "run_problems": len(store.problems(run))}
    pooled: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for config in configs:
        per_problem = counts.get(config.id)
        if not per_problem:
            continue
        ns = np.array([v[0] for v in per_problem.values()])
        cs = np.array([v[1] for v in per_problem.values()])
        n, tokens, dollars = spend[config.id]
        out["configs"][config.name] = _curve(ns, cs, tokens / max(n, 1), dollars / max(n, 1), method, horizon,
                                             n_boot, alpha, seed)
        for problem, (n_p, c_p) in per_problem.items():
            pooled[problem][0] += n_p
            pooled[problem][1] += c_p
    if len(out["configs"]) > 1:
        ns = np.array([v[0] for v in pooled.values()])
        cs = np.array([v[1] for v in pooled.values()])
        n = sum(spend[c.id][0] for c in configs)
        tokens = sum(spend[c.id][1] for c in configs)
        dollars = sum(spend[c.id][2] for c in configs)
        out["mix"] = _curve(ns, cs, tokens / max(n, 1), dollars / max(n, 1), method, horizon, n_boot, alpha, seed)
    return out
