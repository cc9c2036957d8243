"""Dry-run forecasts: draw a small pilot of a run, then predict what the whole run (or any other
number of samples per problem, or budget) costs in tokens, dollars and time, and what coverage
it buys, with intervals, before the full run is paid for. See docs/forecast.md.

The pilot is part of the run itself (:mod:`budgetlab.forecast._pilot`): running the same run
afterwards reuses every pilot sample.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from budgetlab.forecast._pilot import (
    PilotPolicy,
    PilotResult,
    choose_pilot_problems,
    run_pilot,
)
from budgetlab.forecast._predict import (
    Forecast,
    ForecastRow,
    Scenario,
    parse_scenarios,
    predict,
)

__all__ = [
    "Forecast",
    "ForecastRow",
    "PilotPolicy",
    "PilotResult",
    "Scenario",
    "choose_pilot_problems",
    "default_scenarios",
    "forecast",
    "parse_scenarios",
    "predict",
    "run_pilot",
]


def default_scenarios(planned_k: int) -> list[Scenario]:
    """The planned run, and 4x and 16x its samples per problem."""
    return [Scenario(f"planned k={planned_k}", k=planned_k), Scenario(f"k={4 * planned_k}", k=4 * planned_k),
            Scenario(f"k={16 * planned_k}", k=16 * planned_k)]


def forecast(
    name: str,
    backend: str | None = None,
    *,
    store: Any,
    pilot: float = 0.05,
    scenarios: Sequence[Scenario | str] | str | None = None,
    method: str = "bracket",
    on_progress: Callable[[Any], None] | None = None,
    n_boot: int = 200,
    **options: Any,
) -> tuple[Forecast, PilotResult]:
    """Record run ``name`` in ``store`` (an open store or its path; options as for
    :func:`budgetlab.run`; it must use the ``fixed`` policy), draw its pilot (a ``pilot`` fraction of its problems, all k samples each),
    and forecast the planned run plus ``scenarios``. The run is left ``stopped``; running it
    with :func:`budgetlab.run` draws the rest and reuses the pilot. Inside a running event loop
    (a Jupyter cell) it runs on a worker thread and blocks until done, as :func:`budgetlab.run`."""
    from budgetlab.analysis import EXTRAPOLATION_METHODS
    from budgetlab.errors import InputError
    from budgetlab.policies import policy_spec
    from budgetlab.runner import prepare
    from budgetlab.runner._api import _loop_running, call_blocking
    from budgetlab.stores import open_store

    if _loop_running():  # the pilot draws with asyncio.run, which a running loop refuses
        return call_blocking(forecast, name, backend, store=store, pilot=pilot, scenarios=scenarios, method=method,  # type: ignore[no-any-return]
                             on_progress=on_progress, n_boot=n_boot, **options)  # fmt: skip

    scenarios = _checked_scenarios(scenarios)
    _check_pilot_and_options(pilot, options)
    if method not in EXTRAPOLATION_METHODS or method == "tail-transfer":
        usable = [m for m in EXTRAPOLATION_METHODS if m != "tail-transfer"]
        raise InputError(f"unknown extrapolation method {method!r} for a forecast; choose from: {', '.join(usable)}")
    if isinstance(store, (str, os.PathLike)):  # a path, as budgetlab.run takes it
        with open_store(os.fspath(store)) as opened:
            return forecast(name, backend, store=opened, pilot=pilot, scenarios=scenarios, method=method,
                            on_progress=on_progress, n_boot=n_boot, **options)  # fmt: skip
    existing = store.find_run(name)
    if options.get("policy") is not None:  # a name, a spec ("fixed:k=8") or a FixedK: as run() takes it
        options["policy"], options["policy_args"] = policy_spec(options["policy"], options.get("policy_args"))
    policy = options.get("policy") or (existing.spec.policy if existing is not None else "fixed")
    if policy != "fixed":  # checked before anything is recorded
        raise InputError(f"forecast needs the fixed policy (k samples per problem), not {policy!r}; "
                         "give -k K or --policy fixed:k=K")
    prepared = prepare(name, backend, store=store, **options)
    spec = prepared.spec
    planned_k = int(spec.policy_args.get("k", 8))
    _check_pilot_affordable(store, name, pilot, planned_k)
    result = run_pilot(prepared, pilot, on_progress)
    problems = store.problems(name)
    configs = store.configs(name)
    samples = store.samples(name)
    pilot_samples = [s for s in samples if s.problem in set(result.problems) and s.state.finished]
    per_sample = (sum(s.prompt_tokens + s.completion_tokens for s in pilot_samples) / len(pilot_samples)
                  if pilot_samples else 0.0)
    # What the run's own --budget buys is a row of its own: the planned k alone would ignore it.
    limits = [Scenario(f"--budget {key}={amount:g}", limit=(key, float(amount)))
              for key, amount in spec.budget.limits().items() if key in ("samples", "tokens", "dollars")]
    wanted = default_scenarios(planned_k) + limits + list(scenarios or [])
    # The same k asked twice is one row.
    seen: set[tuple[int | None, Any]] = set()
    unique = [s for s in wanted if not ((s.k, s.limit) in seen or seen.add((s.k, s.limit)))]  # type: ignore[func-returns-value]
    throughput = result.throughput(per_sample) if result.drawn else None
    untimed = ("this invocation drew no pilot samples to time (they were drawn before)" if not result.drawn
               else f"the pilot's {result.drawn} samples settled too close together to time")
    out = predict(name, problems, configs, samples, list(result.problems), planned_k, unique, method=method,
                  throughput=throughput, n_boot=n_boot, seed=spec.seed, untimed=untimed)
    if throughput is not None and result.one_wave:
        out.notes.append(_one_wave_note(result))
    if "stopped early" in result.stopped_because:
        with_samples = len({s.problem for s in pilot_samples})
        out.notes.append(f"the pilot stopped before it was complete ({result.stopped_because.split(': ', 1)[-1]}); "
                         f"the forecast rests on the {with_samples} of {len(result.problems)} pilot problems it reached")
    return out, result


#: The keyword options forecast passes on to budgetlab.runner.prepare (as budgetlab.run takes them).
_RUN_OPTIONS = ("backend_options", "policy", "policy_args", "verifier", "budget", "problems", "configs", "seed", "concurrency")


def _checked_scenarios(scenarios: Any) -> list[Scenario]:
    """The scenarios as Scenario objects (a text such as ``"k=64,tokens=1e6"``, or strings in the
    list, parsed as ``--budgets`` is), refused before the pilot is paid for, not after."""
    from budgetlab.errors import InputError

    if scenarios is None:
        return []
    if isinstance(scenarios, str):
        return parse_scenarios(scenarios)
    out: list[Scenario] = []
    for item in scenarios:
        if isinstance(item, Scenario):
            out.append(item)
        elif isinstance(item, str):
            out.extend(parse_scenarios(item))
        else:
            raise InputError(f"scenarios must be Scenario objects or their text, got {type(item).__name__} {item!r:.40}; "
                             "e.g. scenarios='k=64,tokens=1e6' or [Scenario('k=64', k=64)]")  # fmt: skip
    return out


def _check_pilot_and_options(pilot: Any, options: dict[str, Any]) -> None:
    """A bad pilot fraction or an option forecast does not take, refused before the run is recorded."""
    import numbers

    from budgetlab.errors import InputError

    if isinstance(pilot, bool) or not isinstance(pilot, numbers.Real) or not 0.0 < float(pilot) <= 1.0:
        raise InputError(f"pilot fraction must be a number in (0, 1], got {pilot!r:.40}; e.g. pilot=0.05 for 5%")
    unknown = sorted(set(options) - set(_RUN_OPTIONS))
    if unknown:
        raise InputError(f"forecast does not take {', '.join(map(repr, unknown))}; it takes store, pilot, scenarios, method, "
                         f"on_progress, n_boot and the options of budgetlab.run: {', '.join(_RUN_OPTIONS)}")  # fmt: skip


def _one_wave_note(result: PilotResult) -> str:
    """Why a one-wave pilot's wall time is its whole time over its samples, and how to read it."""
    return (f"wall time comes from a single batch: the pilot's {result.drawn} samples were all in flight at once "
            f"(concurrency {result.concurrency}), so the rate is {result.drawn} samples in {result.seconds:.1f} s, its "
            "start-up included; one batch is a rough guide to many, and only on the same machine and load")


def _check_pilot_affordable(store: Any, name: str, fraction: float, k: int) -> None:
    """A samples budget too small for the pilot is refused before anything is drawn: a pilot
    cut short forecasts from the few problems it reached."""
    from budgetlab.core.run import RunState
    from budgetlab.errors import InputError

    info = store.get_run(name)
    limit = info.spec.budget.samples
    if limit is None or info.state is RunState.DONE:
        return
    chosen = set(choose_pilot_problems([p.id for p in store.problems(name)], fraction, info.spec.seed))
    configs = len(store.configs(name))
    have = sum(1 for s in store.samples(name) if s.problem in chosen and s.state.finished)
    needed = len(chosen) * k * configs - have
    left = limit - info.spent.samples
    if needed > left:
        raise InputError(
            f"the pilot needs {needed} more samples ({len(chosen)} problems x k={k} x {configs} configuration(s)) but "
            f"--budget samples={limit:g} leaves {left:g}; raise --budget, or lower --pilot or -k"
        )

