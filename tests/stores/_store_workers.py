"""Worker processes for the multi-process store tests (a module of its own so that spawned
children import it, not the test module)."""

from __future__ import annotations

import random
import time
from dataclasses import replace

from budgetlab.core import Budget, SampleState, Spend


def open_store(kind: str, target: str):
    if kind == "sqlite-file":
        from budgetlab.stores import SQLiteStore

        return SQLiteStore(target)
    from budgetlab.stores._sqlalchemy import SQLAlchemyStore

    return SQLAlchemyStore(target)


def claim_and_finish(kind, target, run, worker, seed, budget_dict, barrier, queue) -> None:
    """Claim small batches of pending samples and finish them (one in five failed) until the
    budget blocks a claim or nothing is pending; report (worker, claimed, results, error)."""
    claimed, results, error = [], [], None
    try:
        rng = random.Random(seed)
        budget = Budget.from_dict(budget_dict)
        store = open_store(kind, target)
        barrier.wait(timeout=60)
        try:
            for _ in range(500):
                pending = store.samples(run, [SampleState.PENDING])
                if not pending:
                    break
                batch = rng.sample(pending, min(3, len(pending)))
                got = store.claim(run, worker, [s.key for s in batch], [Spend(tokens=10)] * len(batch), budget)
                claimed += [(k.problem, k.config, k.index) for k in got.claimed]
                by_key = {s.key: s for s in batch}
                settled = []
                for key in got.claimed:
                    failed = rng.random() < 0.2
                    settled.append(replace(
                        by_key[key],
                        state=SampleState.FAILED if failed else SampleState.DONE,
                        text=None if failed else f"by {worker}",
                        error="boom" if failed else None,
                        prompt_tokens=rng.randint(0, 5),
                        completion_tokens=rng.randint(0, 5),
                        cost=0.001,
                    ))  # fmt: skip
                if rng.random() < 0.3:
                    time.sleep(0.001)
                if settled:
                    results += store.finish(run, worker, settled)
                if got.blocked_by is not None:
                    break
        finally:
            store.close()
    except BaseException as exc:  # reported to the parent, which fails the test with it
        error = f"{type(exc).__name__}: {exc}"
    queue.put((worker, claimed, results, error))


def finish_forever(kind, target, run, worker, ready) -> None:
    """Claim and finish one sample at a time until killed (for the durability test)."""
    store = open_store(kind, target)
    budget = Budget()
    ready.set()
    while True:
        for s in store.samples(run, [SampleState.PENDING])[:2]:
            got = store.claim(run, worker, [s.key], [Spend(tokens=7, dollars=0.1)], budget)
            if got.claimed:
                store.finish(run, worker, [replace(s, state=SampleState.DONE, prompt_tokens=3, completion_tokens=4, cost=0.1)])


def create_same_run(kind, target, barrier, queue) -> None:
    """Create the run ``make_run`` of the contract suite makes, at the same instant as the
    other processes; report the error, if any."""
    from budgetlab.core import Problem, SamplingConfig
    from budgetlab.core.run import RunSpec

    error = None
    try:
        store = open_store(kind, target)
        try:
            barrier.wait(timeout=60)
            configs = [SamplingConfig(model="m1"),
                       SamplingConfig(model="m2", params={"temperature": 0.7}, template="Q: {prompt}", label="warm")]
            store.create_run(RunSpec(name="r", backend="replay", seed=7),
                             [Problem(p, prompt=f"what is {p}?") for p in ("p1", "p2")], configs)
        finally:
            store.close()
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    queue.put(error)
