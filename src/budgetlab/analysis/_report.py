"""What a run's budget bought: pass@k and maj@k per configuration, read from the store."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from budgetlab.analysis._curves import bootstrap_ci, default_ks
from budgetlab.analysis._majority import maj_at_k
from budgetlab.analysis._passk import pass_at_k_many
from budgetlab.core import Sample, SampleState
from budgetlab.stores import BaseStore

__all__ = ["build_report"]


def _metric(values: list[float], n_boot: int, seed: int) -> dict[str, float]:
    value, lo, hi = bootstrap_ci(np.asarray(values), n_boot=n_boot, seed=seed)
    return {"value": value, "lo": lo, "hi": hi}


def build_report(store: BaseStore, run: str, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The report of ``run`` as a JSON-ready dict.

    For each configuration and each k in 1, 2, 4, ... up to the most samples any problem has,
    pass@k and maj@k average over the problems that have at least k judged samples (their
    number is given per k), with 95% bootstrap intervals over problems. Samples without a
    verdict (``correct`` unknown) and failed samples are left out; maj@k is reported only for
    configurations whose samples carry answers.
    """
    info = store.get_run(run)
    configs = store.configs(run)
    by_config: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    failed: dict[str, int] = defaultdict(int)
    done = 0
    for s in store.samples(run, [SampleState.DONE, SampleState.FAILED]):
        if s.state is SampleState.FAILED:
            failed[s.config] += 1
            continue
        done += 1
        if s.correct is not None:
            by_config[s.config][s.problem].append(s)

    out_configs: dict[str, Any] = {}
    for config in configs:
        per_problem = list(by_config[config.id].values())
        entry: dict[str, Any] = {
            "id": config.id,
            "samples": sum(len(v) for v in per_problem),
            "failed": failed.get(config.id, 0),
            "problems": len(per_problem),
            "pass_at_k": {},
            "maj_at_k": {},
            "ci": {"pass_at_k": {}, "maj_at_k": {}},
            "n_problems": {},
        }
        if per_problem:
            ns = np.array([len(v) for v in per_problem])
            cs = np.array([sum(bool(s.correct) for s in v) for v in per_problem])
            entry["accuracy"] = float(cs.sum() / ns.sum())
            has_answers = any(s.answer is not None for v in per_problem for s in v)
            for k in default_ks(int(ns.max())):
                mask = ns >= k
                key = str(k)
                entry["n_problems"][key] = int(mask.sum())
                pk = _metric(list(pass_at_k_many(ns[mask], cs[mask], k)), n_boot, seed)
                entry["pass_at_k"][key] = pk["value"]
                entry["ci"]["pass_at_k"][key] = [pk["lo"], pk["hi"]]
                if has_answers:
                    values = [
                        maj_at_k([s.answer for s in v], [s.correct for s in v], k)
                        for v, keep in zip(per_problem, mask)
                        if keep
                    ]
                    mk = _metric(values, n_boot, seed)
                    entry["maj_at_k"][key] = mk["value"]
                    entry["ci"]["maj_at_k"][key] = [mk["lo"], mk["hi"]]
        out_configs[config.name] = entry

    return {
        "run": info.name,
        "state": info.state.value,
        "samples": done,
        "failed": sum(failed.values()),
        "problems": len(store.problems(run)),
        "configs": out_configs,
        "spent": info.spent.to_dict(),
        "budget": info.spec.budget.to_dict(),
        "stopped_because": info.stopped_because or "",
        "spec": info.spec.to_dict(),
    }
