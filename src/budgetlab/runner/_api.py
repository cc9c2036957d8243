"""Start a run, or resume it by name: the Python entry point behind ``budgetlab run``."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import numbers
import os
import re
import threading
import warnings
from dataclasses import dataclass
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from budgetlab.backends import Backend, canonical_backend, make_backend
from budgetlab.core import Budget, Problem, SamplingConfig, Spend, with_distinct_names
from budgetlab.core.budget import format_amount
from budgetlab.core.run import RunInfo, RunSpec
from budgetlab.errors import InputError, UnpricedModelWarning
from budgetlab.policies import Policy, make_policy, policy_spec
from budgetlab.runner._loop import Progress, RunOutcome, execute
from budgetlab.stores import BaseStore, open_store
from budgetlab.verifiers import make_verifier

__all__ = ["PreparedRun", "prepare", "resume_or_create", "run"]


def resume_or_create(
    store: BaseStore,
    spec: RunSpec,
    *,
    problems: Sequence[Problem] | None = None,
    configs: Sequence[SamplingConfig] | None = None,
    explicit: frozenset[str] = frozenset(),
) -> tuple[RunInfo, Backend]:
    """The stored run of that name (checked against what was asked again), or a new one, with
    its backend built. Everything is checked before anything is written, so a bad option leaves
    the store as it was.

    ``explicit`` names the spec fields the caller really set; on resume those must agree with
    the stored spec, except the budget and concurrency, which may change between invocations.
    """
    existing = store.find_run(spec.name)
    if existing is None:
        backend = make_backend(spec.backend, spec.backend_args)
        make_policy(spec.policy, spec.policy_args)
        verifier = make_verifier(spec.verifier)
        if problems is None:
            problems = _from_backend(backend, "problems", spec)
        _check_references(verifier, problems)
        if configs is None:
            configs = _from_backend(backend, "configs", spec)
        if not problems:
            raise InputError(f"run {spec.name!r} has no problems; give a problems file or a backend that lists them")
        if not configs:
            raise InputError(f"run {spec.name!r} has no sampling configurations; give at least one")
        _check(backend, problems, configs, spec.budget)
        stored_spec = dataclasses.replace(spec, backend_args=without_secrets(spec.backend_args))
        return store.create_run(stored_spec, problems, with_distinct_names(configs)), backend
    stored = existing.spec
    changes: dict[str, Any] = {}
    if "policy_args" in explicit and _policy_args_may_change(spec, stored):
        changes["policy_args"] = dict(spec.policy_args)
    for field in ("backend", "policy", "policy_args", "verifier", "seed"):
        asked, have = getattr(spec, field), getattr(stored, field)
        if field in explicit and asked != have and field not in changes:
            raise InputError(
                f"run {spec.name!r} exists with {field}={_brief(have)}, not {_brief(asked)}; "
                "resume it without that option, or start a new run with another --name"
            )
    if "backend_args" in explicit:
        _check_same_sampling_options(spec.name, stored.backend_args, spec.backend_args)
    if configs is not None:
        _check_same_configs(spec.name, store.configs(spec.name), configs)
    if problems is not None:
        _check_same_problems(spec.name, store.problems(spec.name), problems)
    if "backend_args" in explicit:
        transport = {k: v for k, v in spec.backend_args.items() if _resumable(k)}
        merged = {**stored.backend_args, **transport}
        if merged != stored.backend_args:
            changes["backend_args"] = merged
    backend = make_backend(stored.backend, changes.get("backend_args", stored.backend_args))
    if "budget" in explicit and spec.budget != stored.budget:
        _check_budget_above_spent(spec.name, spec.budget, stored.budget, existing.spent)
        changes["budget"] = spec.budget
    if "concurrency" in explicit and spec.concurrency != stored.concurrency:
        changes["concurrency"] = spec.concurrency
    if changes:
        if "backend_args" in changes:
            changes["backend_args"] = without_secrets(changes["backend_args"])
        store.update_spec(dataclasses.replace(stored, **changes))
        existing = store.get_run(spec.name)
    return existing, backend


def _brief(value: Any, width: int = 100) -> str:
    """``repr(value)``, cut to ``width`` characters: a prior recorded from a file runs to kilobytes."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _policy_args_may_change(spec: RunSpec, stored: RunSpec) -> bool:
    """Whether the policy's arguments asked for differ from the stored ones only in those the
    policy lets a run change on resume (``fixed``'s k: ``-k 8`` after ``-k 4`` draws 4 more)."""
    if spec.policy != stored.policy or spec.policy_args == stored.policy_args:
        return False
    keys = set(spec.policy_args) | set(stored.policy_args)
    changed = {k for k in keys if spec.policy_args.get(k) != stored.policy_args.get(k)}
    asked = make_policy(spec.policy, spec.policy_args)  # a bad value is refused here, with its fix
    if not changed <= getattr(asked, "resumable_args", frozenset()):
        return False
    shrunk = sorted(k for k in changed if k in stored.policy_args and spec.policy_args.get(k, 0) < stored.policy_args[k])
    if shrunk:
        k = shrunk[0]
        raise InputError(
            f"run {spec.name!r} has {stored.policy}:{k}={stored.policy_args[k]}; {k} may only grow when a run resumes "
            f"(samples drawn stay drawn; report gives pass@k for every smaller k), so give {k} >= {stored.policy_args[k]} "
            "or start a new run with another --name"
        )
    return True


#: Header names that carry credentials (an API key in ``headers``).
_SECRET_HEADER = re.compile(r"authorization|api[-_]?key|token|secret|cookie", re.IGNORECASE)


def without_secrets(backend_args: Mapping[str, Any]) -> dict[str, Any]:
    """The backend options as the store keeps them: never an API key (``api_key``, or a header
    that carries one). A store file is readable by whoever can read the folder, and a run
    resumes with the key from the environment or from the option given again."""
    out: dict[str, Any] = {}
    for key, value in backend_args.items():
        option = key.rpartition(".")[2]  # a wrapper's inner.api_key too
        if option == "api_key":
            continue
        if option == "headers" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if not _SECRET_HEADER.search(str(k))}
            if not value:
                continue
        out[key] = value
    return out


# Backend options that say how to reach or wait for a backend (or how hard to drive it), never
# what a sample is: they may change when a run resumes, e.g. a longer timeout after an outage.
RESUMABLE_BACKEND_OPTIONS = frozenset({
    "concurrency", "timeout", "connect_timeout", "max_attempts", "backoff", "max_backoff", "max_retry_wait",
    "check_models", "api_key", "api_key_env", "headers", "threads", "max_sequences", "cache_dir", "bill_timeouts",
})  # fmt: skip


def _resumable(option: str) -> bool:
    """Whether a backend option may change on resume; a wrapper's ``inner.timeout`` as ``timeout``."""
    return option in RESUMABLE_BACKEND_OPTIONS or option.rpartition(".")[2] in RESUMABLE_BACKEND_OPTIONS


def _check_same_sampling_options(name: str, stored: Mapping[str, Any], asked: Mapping[str, Any]) -> None:
    """How to reach the backend may change on resume; what it samples may not. Options left out
    keep their stored values, so only those given are compared."""
    changed = [k for k, v in asked.items() if not _resumable(k) and stored.get(k) != v]
    if changed:
        have = ", ".join(f"{k}={stored[k]!r}" if k in stored else f"{k} not set" for k in changed)
        want = ", ".join(f"{k}={asked[k]!r}" for k in changed)
        raise InputError(
            f"run {name!r} exists with backend option {have}, not {want}: it decides what a sample is, so it cannot "
            "change on resume; leave it out, or start a new run with another --name"
        )


def _check_same_problems(name: str, stored: Sequence[Problem], asked: Sequence[Problem]) -> None:
    """Problems asked for again resume the run; other ones are refused rather than ignored."""
    if [p.id for p in asked] == [p.id for p in stored]:
        return
    raise InputError(
        f"run {name!r} exists with {len(stored)} problems, not the {len(asked)} (other) problems given now by "
        "--task/--problems; resume it without them, or start a new run with another --name"
    )


def _check(backend: Backend, problems: Sequence[Problem], configs: Sequence[SamplingConfig], budget: Budget) -> None:
    """The backend's own checks; a model it cannot price under a dollar budget is refused, since
    its samples would count as $0 and the budget could not limit them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnpricedModelWarning)
        backend.check(problems, configs)
    for warning in caught:
        if issubclass(warning.category, UnpricedModelWarning) and "dollars" in budget.limits():
            text = str(warning.message).split(";")[0]
            raise InputError(f"{text}, so --budget dollars={format_amount(budget.limits()['dollars'])} could not limit "
                             "them; give the model's price (--config ...,price_in=2.5,price_out=10, in $ per million "
                             "tokens) or a token or sample budget")  # fmt: skip
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _check_budget_above_spent(name: str, asked: Budget, stored: Budget, spent: Spend) -> None:
    """A limit below what the run already spent can buy nothing and would only rewrite a
    finished run as stopped over budget: refuse it, naming both numbers."""
    over = asked.first_exceeded(spent)
    if over is None:
        return
    used, cap = getattr(spent, over), asked.limits()[over]
    raise InputError(
        f"run {name!r} already spent {over}={format_amount(used)}, more than the --budget {over}={format_amount(cap)} asked; "
        f"give a limit above {format_amount(used)}, or leave --budget out to keep its budget ({stored.describe()})"
    )


def _check_references(verifier: Any, problems: Sequence[Problem]) -> None:
    """A verifier that compares answers with references, on problems that have none, would judge
    nothing: refused before anything is drawn (and paid for), not discovered in the report."""
    if getattr(verifier, "needs_reference", False) and problems and all(p.reference is None for p in problems):
        raise InputError(
            f"verifier {verifier.name} compares each answer with its problem's reference, and none of the "
            f"{len(problems)} problems has one; give --problems FILE with a 'reference' per problem, or use "
            "--verifier auto (a replay file's recorded verdicts)"
        )


def _check_same_configs(name: str, stored: Sequence[SamplingConfig], asked: Sequence[SamplingConfig]) -> None:
    """Asking again for the configurations a run has resumes it; asking for others is refused,
    since the run's samples and budget belong to the ones it started with."""
    if {c.id for c in asked} == {c.id for c in stored}:
        return
    stored_ids = {c.id for c in stored}
    asked_ids = {c.id for c in asked}
    new = [_describe(c) for c in asked if c.id not in stored_ids]
    missing = [_describe(c) for c in stored if c.id not in asked_ids]
    have = "; ".join(
        ([f"new: {', '.join(new)}"] if new else []) + ([f"not asked for: {', '.join(missing)}"] if missing else [])
    )
    raise InputError(
        f"run {name!r} exists with other configurations than those asked for ({have}); resume it with the same configurations "
        "(or none given), or start a new run with another --name"
    )


def _describe(config: SamplingConfig) -> str:
    params = ",".join(f"{k}={v}" for k, v in sorted(config.params.items()))
    return f"{config.name}" + (f" ({params})" if params else "")


def _from_backend(backend: Any, what: str, spec: RunSpec) -> list[Any]:
    lister = getattr(backend, what, None)
    if lister is None:
        raise InputError(f"backend {spec.backend!r} cannot list its {what}; pass them explicitly")
    return list(lister())


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_blocking(make: Callable[[], Any]) -> Any:
    """``asyncio.run(make())``, which also works where an event loop is already running in this
    thread (Jupyter, async code): the coroutine then runs on a worker thread with a loop of its
    own while this thread waits, and Ctrl-C (KeyboardInterrupt) cancels it as it would at top level."""
    if not _loop_running():
        return asyncio.run(make())
    box: dict[str, Any] = {}
    started, finished = threading.Event(), threading.Event()

    async def main() -> Any:
        box["loop"], box["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await make()

    def worker() -> None:
        try:
            box["result"] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            box["error"] = exc
        finally:
            started.set()
            finished.set()

    threading.Thread(target=worker, name="budgetlab-run", daemon=True).start()
    # Wait on an Event, not Thread.join: a join interrupted by Ctrl-C marks the thread stopped
    # while it still runs (CPython 3.11), and the caller would then close the store under it.
    try:
        finished.wait()
    except KeyboardInterrupt:
        started.wait()
        loop = box.get("loop")
        if loop is not None:
            try:
                loop.call_soon_threadsafe(box["task"].cancel)
            except RuntimeError:  # the loop closed meanwhile: the run has ended
                pass
        while not finished.is_set():  # the run marks itself interrupted and lets go of the store
            try:
                finished.wait()
            except KeyboardInterrupt:
                continue
        raise
    if "error" in box:
        raise box["error"]
    return box.get("result")


def call_blocking(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, on a worker thread where an event loop already runs in this one
    (``fn`` calls ``asyncio.run``, which refuses to start inside a running loop)."""
    if not _loop_running():
        return fn(*args, **kwargs)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="budgetlab") as pool:
        return pool.submit(fn, *args, **kwargs).result()


@dataclass
class PreparedRun:
    """A run checked and recorded in the store, ready to execute (nothing drawn yet)."""

    store: BaseStore
    spec: RunSpec
    backend: Backend
    created: bool

    def execute(self, on_progress: Callable[[Progress], None] | None = None) -> RunOutcome:
        """Draw the run to its end and return how it ended. Inside a running event loop (a
        Jupyter cell, async code) it runs on a worker thread of its own and blocks until done."""
        return run_blocking(lambda: self._execute(on_progress))

    async def _execute(self, on_progress: Callable[[Progress], None] | None) -> RunOutcome:
        try:
            return await execute(
                self.store,
                self.spec.name,
                self.backend,
                make_policy(self.spec.policy, self.spec.policy_args),
                make_verifier(self.spec.verifier),
                self.spec.budget,
                concurrency=self.spec.concurrency,
                on_progress=on_progress,
            )
        finally:
            closed = self.backend.aclose()
            if inspect.isawaitable(closed):  # a user's backend may close with a plain def
                await closed


def _whole_number(field: str, value: Any, example: str) -> int | None:
    """``value`` as an int (a NumPy integer too), or one error naming ``field``: a run records
    it, and a string stored there would break every later read of the store."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{field} must be a whole number, got {type(value).__name__} {value!r:.40}; {example}")
    return int(value)


def budget_argument(budget: Budget | str | None, example: str) -> Budget | None:
    """``budget`` as a :class:`Budget` (its text parsed), or one line naming ``example``."""
    if budget is None or isinstance(budget, Budget):
        return budget
    if isinstance(budget, str):
        return Budget.parse(budget)
    raise InputError(f"budget must be a Budget or its text, got {type(budget).__name__} {budget!r:.40}; e.g. {example}")


def _check_types(
    name: Any, backend: Any, store: Any, backend_options: Any, policy_args: Any, verifier: Any, configs: Any
) -> None:
    """One error for an argument of the wrong kind, before anything is recorded, rather than an
    AttributeError from deep inside (or a run recorded with a value no later read accepts)."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"a run name must be a non-empty string, got {type(name).__name__} {name!r:.40}; e.g. run('my-run', ...)")
    if backend is not None and not isinstance(backend, str):
        raise InputError(f"backend must be a spec string, got {type(backend).__name__} {backend!r:.40}; "
                         "e.g. backend='replay:samples.jsonl' (options go in backend_options={...})")  # fmt: skip
    if not isinstance(store, BaseStore):
        raise InputError(f"store must be an open store or its path, got {type(store).__name__} {store!r:.40}; "
                         "e.g. store='budgetlab.db' or store=open_store('budgetlab.db')")  # fmt: skip
    for field, value in (("backend_options", backend_options), ("policy_args", policy_args)):
        if value is not None and not isinstance(value, Mapping):
            example = "{'k': 8}" if field == "policy_args" else "{'seed': 1}"
            raise InputError(f"{field} must be a dict of options, got {type(value).__name__} {value!r:.40}; e.g. {field}={example}")
    if verifier is not None and not isinstance(verifier, str):
        raise InputError(f"verifier must be a name or spec (it is rebuilt by name on resume), got {type(verifier).__name__} "
                         f"{verifier!r:.40}; e.g. verifier='exact' or 'code:timeout=5' (a function: verifier='callable:path=...')")  # fmt: skip
    if configs is not None:
        if isinstance(configs, (str, SamplingConfig)) or not isinstance(configs, Sequence):
            raise InputError(f"configs must be a list of SamplingConfig, got {type(configs).__name__} {configs!r:.40}; "
                             "e.g. configs=[SamplingConfig(model='m', backend='openai')]")  # fmt: skip
        bad = next((c for c in configs if not isinstance(c, SamplingConfig)), None)
        if bad is not None:
            raise InputError(f"configs must be SamplingConfig objects, got {type(bad).__name__} {bad!r:.40}; "
                             "e.g. configs=[SamplingConfig(model='m', backend='openai')]")  # fmt: skip


def prepare(
    name: str,
    backend: str | None = None,
    *,
    store: BaseStore,
    backend_options: Mapping[str, Any] | None = None,
    policy: str | Policy | None = None,
    policy_args: Mapping[str, Any] | None = None,
    verifier: str | None = None,
    budget: Budget | str | None = None,
    problems: Sequence[Problem] | str | os.PathLike[str] | None = None,
    configs: Sequence[SamplingConfig] | None = None,
    seed: int | None = None,
    concurrency: int | None = None,
) -> PreparedRun:
    """Check every option and record the run (new) or its changed budget (resumed); see :func:`run`."""
    _check_types(name, backend, store, backend_options, policy_args, verifier, configs)
    budget = budget_argument(budget, "budget=Budget(samples=500) or budget='samples=500,dollars=2'")
    seed = _whole_number("seed", seed, "e.g. seed=0")
    concurrency = _whole_number("concurrency", concurrency, "e.g. concurrency=64")
    if concurrency is not None and concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}; e.g. --concurrency 64")
    if policy is not None:
        policy, policy_args = policy_spec(policy, policy_args)
    if isinstance(problems, (str, os.PathLike)):  # a task spec or a problems file, as --task takes
        from budgetlab.tasks import load_task

        problems = load_task(os.fspath(problems))
    elif problems is not None:
        from budgetlab.tasks import checked_problems

        # a list, tuple or generator of Problem objects, each id once
        problems = checked_problems(problems, "problems")
    given = {
        "backend": None if backend is None else canonical_backend(backend),
        "backend_args": None if backend_options is None else dict(backend_options),
        "policy": policy,
        "policy_args": None if policy_args is None else dict(policy_args),
        "verifier": verifier,
        "budget": budget,
        "seed": seed,
        "concurrency": concurrency,
    }
    explicit = frozenset(k for k, v in given.items() if v is not None)
    if store.find_run(name) is None and backend is None:
        raise InputError(f"run {name!r} does not exist yet, so it needs a backend, e.g. --backend replay:samples.jsonl")
    existing = store.find_run(name)
    if existing is not None and existing.spec.policy == "imported":
        raise InputError(f"run {name!r} was imported: it has no policy to draw more; report it with budgetlab report {name}")
    spec = RunSpec(name=name, **{k: v for k, v in given.items() if v is not None})
    info, live_backend = resume_or_create(store, spec, problems=problems, configs=configs, explicit=explicit)
    return PreparedRun(store, info.spec, live_backend, created=info.state.value == "created")


def run(
    name: str,
    backend: str | None = None,
    *,
    store: str | os.PathLike[str] | BaseStore = "budgetlab.db",
    on_progress: Callable[[Progress], None] | None = None,
    backend_options: Mapping[str, Any] | None = None,
    policy: str | Policy | None = None,
    policy_args: Mapping[str, Any] | None = None,
    verifier: str | None = None,
    budget: Budget | str | None = None,
    problems: Sequence[Problem] | str | os.PathLike[str] | None = None,
    configs: Sequence[SamplingConfig] | None = None,
    seed: int | None = None,
    concurrency: int | None = None,
) -> RunOutcome:
    """Start the run ``name``, or resume it if the store has it; returns how it ended.

    Options (``backend_options``, ``policy``, ``policy_args``, ``verifier``, ``budget``,
    ``problems``, ``configs``, ``seed``, ``concurrency``) left out take the stored run's values
    on resume (or the defaults for a new run); those given must agree with the stored run,
    except ``budget`` and ``concurrency``, which may change between invocations (e.g. a budget
    raised to buy more samples). ``policy`` is a name (with ``policy_args``), a spec such as
    ``"esc:max_samples=40"`` or an instance of a registered policy (``FixedK(k=8)``); ``verifier``
    a name or spec (``"code:timeout=5"``); ``budget`` a :class:`Budget` or its text
    (``"samples=500,dollars=2"``); ``problems`` a list of :class:`Problem`, or a task spec or
    problems file as ``--task`` takes (``"arithmetic:n=50"``, ``"problems.jsonl"``).

    It blocks until the run ends, also where an event loop is already running (a Jupyter cell:
    the run then goes on a worker thread of its own); from async code, ``await
    asyncio.to_thread(budgetlab.run, ...)`` keeps the loop free meanwhile.
    """
    if on_progress is not None and not callable(on_progress):
        raise InputError(f"on_progress must be a function of one Progress, got {type(on_progress).__name__} {on_progress!r:.40}")
    owned = isinstance(store, (str, os.PathLike))
    st = open_store(os.fspath(store)) if owned else store  # type: ignore[arg-type]
    try:
        prepared = prepare(
            name, backend, store=st, backend_options=backend_options, policy=policy, policy_args=policy_args,
            verifier=verifier, budget=budget, problems=problems, configs=configs, seed=seed, concurrency=concurrency,
        )  # fmt: skip
        return prepared.execute(on_progress)
    finally:
        if owned:
            st.close()
