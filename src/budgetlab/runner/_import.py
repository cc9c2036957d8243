"""Load recorded samples into a store as a finished run (``budgetlab import``)."""

from __future__ import annotations

import os
from pathlib import Path

from budgetlab.backends import read_recorded
from budgetlab.core import Problem, Sample, SampleState, SamplingConfig, derive_seed
from budgetlab.core.run import RunInfo, RunSpec, RunState
from budgetlab.errors import InputError
from budgetlab.stores import BaseStore, open_store

__all__ = ["import_recorded"]


def import_recorded(store: BaseStore | str | os.PathLike[str], path: str | Path, name: str) -> RunInfo:
    """Every recording of ``path`` becomes a done sample of run ``name``, with its recorded
    verdict, tokens and cost, indexed in file order per (problem, config). ``store``: an open
    store (left open) or its path or URL (created if need be)."""
    if not isinstance(store, BaseStore):
        with open_store(store) as opened:
            return import_recorded(opened, path, name)
    if store.find_run(name) is not None:
        raise InputError(
            f"a run named {name!r} already exists in {store.url}; choose another --name (e.g. --name {name}-2), "
            f"or read that one with: budgetlab report {name} --store {store.url}"
        )
    records, _ = read_recorded(path)
    spec = RunSpec(name=name, backend=f"replay:{path}", policy="imported", verifier="recorded")
    problems = [Problem(p) for p in dict.fromkeys(p for p, _ in records)]
    configs = {c: SamplingConfig(model=c, backend="replay") for c in dict.fromkeys(c for _, c in records)}
    store.create_run(spec, problems, list(configs.values()))
    samples = []
    for (problem, config_name), recs in records.items():
        config_id = configs[config_name].id
        for index, rec in enumerate(recs):
            samples.append(
                Sample(
                    run=name,
                    problem=problem,
                    config=config_id,
                    index=index,
                    seed=derive_seed(spec.seed, problem, config_id, index),
                    state=SampleState.DONE,
                    text=rec.text,
                    answer=rec.answer,
                    correct=rec.correct,
                    score=rec.score,
                    prompt_tokens=rec.prompt_tokens,
                    completion_tokens=rec.completion_tokens,
                    cost=rec.cost,
                    logprob=rec.logprob,
                )
            )
    store.import_samples(name, samples)
    store.set_run_state(name, RunState.DONE, f"imported {len(samples):,} sample{'' if len(samples) == 1 else 's'} from {path}")
    return store.get_run(name)
