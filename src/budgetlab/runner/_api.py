"""Start a run, or resume it by name: the Python entry point behind ``budgetlab run``."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from budgetlab.backends import make_backend
from budgetlab.core import Budget, Problem, SamplingConfig
from budgetlab.core.run import RunInfo, RunSpec
from budgetlab.errors import InputError
from budgetlab.policies import make_policy
from budgetlab.runner._loop import Progress, RunOutcome, execute
from budgetlab.stores import BaseStore, open_store
from budgetlab.verifiers import make_verifier

__all__ = ["run", "resume_or_create"]


def resume_or_create(
    store: BaseStore,
    spec: RunSpec,
    *,
    problems: Sequence[Problem] | None = None,
    configs: Sequence[SamplingConfig] | None = None,
    explicit: frozenset[str] = frozenset(),
) -> tuple[RunInfo, bool]:
    """The stored run of that name (checked against what was asked again), or a new one.

    ``explicit`` names the spec fields the caller really set; on resume those must agree with
    the stored spec, except the budget and concurrency, which may change between invocations.
    """
    existing = store.find_run(spec.name)
    if existing is None:
        backend = make_backend(spec.backend, spec.backend_args)
        make_policy(spec.policy, spec.policy_args)  # fail on a bad policy before creating anything
        make_verifier(spec.verifier)
        if problems is None:
            problems = _from_backend(backend, "problems", spec)
        if configs is None:
            configs = _from_backend(backend, "configs", spec)
        if not problems:
            raise InputError(f"run {spec.name!r} has no problems; give a problems file or a backend that lists them")
        if not configs:
            raise InputError(f"run {spec.name!r} has no sampling configurations; give at least one")
        backend.check(problems, configs)
        return store.create_run(spec, problems, configs), True
    stored = existing.spec
    for field in ("backend", "backend_args", "policy", "policy_args", "verifier", "seed"):
        if field in explicit and getattr(spec, field) != getattr(stored, field):
            raise InputError(
                f"run {spec.name!r} exists with {field}={getattr(stored, field)!r}, not {getattr(spec, field)!r}; "
                "resume it without that option, or start a new run with another --name"
            )
    changes: dict[str, Any] = {}
    if "budget" in explicit and spec.budget != stored.budget:
        changes["budget"] = spec.budget
    if "concurrency" in explicit and spec.concurrency != stored.concurrency:
        changes["concurrency"] = spec.concurrency
    if changes:
        store.update_spec(dataclasses.replace(stored, **changes))
        existing = store.get_run(spec.name)
    return existing, False


def _from_backend(backend: Any, what: str, spec: RunSpec) -> list[Any]:
    lister = getattr(backend, what, None)
    if lister is None:
        raise InputError(f"backend {spec.backend!r} cannot list its {what}; pass them explicitly")
    return list(lister())


def run(
    name: str,
    backend: str | None = None,
    *,
    store: str | BaseStore = "budgetlab.db",
    backend_options: Mapping[str, Any] | None = None,
    policy: str | None = None,
    policy_args: Mapping[str, Any] | None = None,
    verifier: str | None = None,
    budget: Budget | None = None,
    problems: Sequence[Problem] | None = None,
    configs: Sequence[SamplingConfig] | None = None,
    seed: int | None = None,
    concurrency: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunOutcome:
    """Start the run ``name``, or resume it if the store has it; returns how it ended.

    Arguments left ``None`` take the stored run's values on resume (or the defaults for a new
    run); those given must agree with the stored run, except ``budget`` and ``concurrency``,
    which may change between invocations (e.g. a budget raised to buy more samples).
    """
    if concurrency is not None and concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}; e.g. --concurrency 64")
    given = {
        "backend": backend,
        "backend_args": None if backend_options is None else dict(backend_options),
        "policy": policy,
        "policy_args": None if policy_args is None else dict(policy_args),
        "verifier": verifier,
        "budget": budget,
        "seed": seed,
        "concurrency": concurrency,
    }
    explicit = frozenset(k for k, v in given.items() if v is not None)
    owned = isinstance(store, str)
    st = open_store(store) if isinstance(store, str) else store
    try:
        if st.find_run(name) is None and backend is None:
            raise InputError(f"run {name!r} does not exist yet, so it needs a backend, e.g. --backend replay:samples.jsonl")
        spec = RunSpec(name=name, **{k: v for k, v in given.items() if v is not None})
        info, _ = resume_or_create(st, spec, problems=problems, configs=configs, explicit=explicit)
        spec = info.spec
        live_backend = make_backend(spec.backend, spec.backend_args)
        return asyncio.run(_execute_and_close(st, spec, live_backend, on_progress))
    finally:
        if owned:
            st.close()


async def _execute_and_close(store: BaseStore, spec: RunSpec, backend: Any, on_progress: Any) -> RunOutcome:
    try:
        return await execute(
            store,
            spec.name,
            backend,
            make_policy(spec.policy, spec.policy_args),
            make_verifier(spec.verifier),
            spec.budget,
            concurrency=spec.concurrency,
            on_progress=on_progress,
        )
    finally:
        await backend.aclose()
