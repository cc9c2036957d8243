"""The store contract: the single memory of every run.

Every store (SQLite, SQLAlchemy, ...) implements :class:`BaseStore` and passes the one contract
suite in ``tests/stores/test_contract.py``. The contract:

* **Durability.** A method that writes returns only after its change is committed; a process
  killed at any instant leaves the store as it was before or after each call, never between.
* **Samples follow a state machine.** ``pending -> running -> done | failed``, and
  ``running -> pending`` only through :meth:`release`. Finished samples are never changed,
  except the verdict of a done one, which :meth:`record_verdicts` replaces (judging it again).
  ``(run, problem, config, index)`` is unique; indexes of a (problem, config) pair are allocated
  0, 1, 2, ... by :meth:`add_pending`, each with the seed :func:`derive_seed` gives it.
* **Claims are atomic and budgeted.** :meth:`claim` moves samples from pending to running for a
  worker and reserves their spend in one transaction, and refuses any sample whose reservation
  would take ``spent + reserved`` past a budget limit. Two workers can never both claim a sample.
* **Losing a race is reported, not corrupting.** :meth:`finish` settles a sample only when it is
  still running under the same worker; otherwise that entry of its result is ``False`` and
  nothing changes.
* **Spend is exact.** ``spent`` is the sum of the spend of finished samples (see
  :attr:`Sample.spend`) and ``reserved`` the sum of reservations of running ones, at all times;
  the one exception is a failure whose whole spend was an estimate for timed-out attempts, which
  :meth:`requeue_failed` returns to pending: what it may have cost stays in ``spent``.
* **Returned objects are snapshots**: immutable dataclasses, never updated in place.
* **Thread safety**: one store object is used from one thread; several processes (workers) may
  open the same store concurrently.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from budgetlab.core import Budget, Problem, Sample, SampleKey, SampleState, SamplingConfig, Spend
from budgetlab.core.run import RunInfo, RunSpec, RunState

__all__ = ["BaseStore", "ClaimResult", "Proposal", "SCHEMA_VERSION", "same_run"]

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Proposal:
    """``count`` more samples of ``problem`` under ``config``.

    ``seen`` is how many samples of the pair the proposer saw; when given, the store creates
    only what is still missing to reach ``seen + count``, so two workers deciding from views of
    the same moment never add a pair's samples twice.
    """

    problem: str
    config: str
    count: int
    seen: int | None = None

    def new_indexes(self, existing: int) -> range:
        """The indexes to create when the pair has ``existing`` samples (dense, from 0)."""
        target = existing + self.count if self.seen is None else self.seen + self.count
        return range(existing, max(existing, target))


@dataclass(frozen=True)
class ClaimResult:
    """The samples a claim obtained, and the budget limit that stopped it short, if any."""

    claimed: tuple[SampleKey, ...]
    blocked_by: str | None = None


def same_run(
    spec: RunSpec, problems: Sequence[Problem], configs: Sequence[SamplingConfig],
    stored_spec: str, stored_problems: Sequence[str], stored_configs: Sequence[str],
) -> bool:
    """Whether a stored run (its JSON columns, problems and configs in position order) is the
    run ``create_run`` was asked to record; compared as JSON, as the store keeps them."""

    def canon(x: object) -> object:
        return json.loads(json.dumps(x))

    return (
        json.loads(stored_spec) == canon(spec.to_dict())
        and [json.loads(d) for d in stored_problems] == [canon(p.to_dict()) for p in problems]
        and [json.loads(d) for d in stored_configs] == [canon(c.to_dict()) for c in configs]
    )


class BaseStore(abc.ABC):
    """See the module docstring for the contract every store keeps."""

    url: str

    # ---- runs -------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(self, spec: RunSpec, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> RunInfo:
        """Record a new run; :class:`InputError` if the name is taken by a different run.

        A run that exists with exactly this spec, problems and configurations is returned as it
        is: several workers started with the same command at the same instant all find no run
        and all create it, and each must then join the one run rather than fail."""

    @abc.abstractmethod
    def find_run(self, name: str) -> RunInfo | None: ...

    def get_run(self, name: str) -> RunInfo:
        from budgetlab.errors import RunNotFound

        info = self.find_run(name)
        if info is None:
            known = [r.name for r in self.list_runs()]
            hint = f"runs in it: {', '.join(known[:10])}" if known else "it has no runs yet"
            raise RunNotFound(f"no run named {name!r} in store {self.url}; {hint} (list them with: budgetlab runs)")
        return info

    @abc.abstractmethod
    def list_runs(self) -> list[RunInfo]: ...

    @abc.abstractmethod
    def update_spec(self, spec: RunSpec) -> None:
        """Replace a run's spec (e.g. a budget raised on resume)."""

    @abc.abstractmethod
    def set_run_state(self, name: str, state: RunState, stopped_because: str | None = None) -> None: ...

    @abc.abstractmethod
    def problems(self, run: str) -> list[Problem]:
        """The run's problems, in the order they were given."""

    @abc.abstractmethod
    def configs(self, run: str) -> list[SamplingConfig]:
        """The run's sampling configurations, in the order they were given."""

    # ---- workers ------------------------------------------------------------------------------
    @abc.abstractmethod
    def heartbeat(self, run: str, worker: str) -> None:
        """Record that ``worker`` is alive now."""

    @abc.abstractmethod
    def workers(self, run: str) -> dict[str, float]:
        """Worker id -> time of its last heartbeat (seconds since the epoch)."""

    @abc.abstractmethod
    def release(self, run: str, worker: str) -> int:
        """Return every sample ``worker`` holds running to pending, freeing its reservations, and
        forget the worker. Returns the number of samples released."""

    @abc.abstractmethod
    def requeue_failed(self, run: str) -> int:
        """Return to pending (same index and seed, result cleared) every failed sample of ``run``
        that :func:`~budgetlab.core.drawn_again` says is drawn again: it cost nothing (a request
        the server refused, a timeout, a dropped connection), or only the estimate for attempts
        that timed out after being sent (that estimate stays in the run's spend). A later
        invocation draws them again; a failure that was billed stays failed. Returns the number
        requeued."""

    # ---- samples ------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_pending(self, run: str, proposals: Iterable[Proposal]) -> list[Sample]:
        """Create pending samples with the next free indexes and their derived seeds (see
        :meth:`Proposal.new_indexes`); returns the samples created."""

    @abc.abstractmethod
    def claim(self, run: str, worker: str, keys: Sequence[SampleKey], reservations: Sequence[Spend], budget: Budget) -> ClaimResult:
        """Atomically claim pending samples in order, reserving their spend, until one would not
        fit the budget (or all are claimed). Keys no longer pending are skipped."""

    @abc.abstractmethod
    def finish(self, run: str, worker: str, samples: Sequence[Sample]) -> list[bool]:
        """Settle running samples as done or failed with their results, in one transaction:
        reservation released, real spend added. ``False`` for a sample this worker no longer holds."""

    @abc.abstractmethod
    def record_verdicts(self, run: str, samples: Sequence[Sample]) -> int:
        """Replace the verdicts of done samples (judged again, by ``budgetlab judge``), in one
        transaction: their answer, correct, score, details, verify seconds, tokens and dollars
        (a judge model's spend is the sample's) take the values of ``samples``, and the run's
        ``spent`` changes by the difference (new minus stored; the samples count stays). A sample
        the store does not hold as done (pending, running, failed, unknown) is left alone. Every
        sample given must be done (else ``ValueError``, nothing written). Returns how many were
        replaced."""

    @abc.abstractmethod
    def samples(self, run: str, states: Iterable[SampleState] | None = None) -> list[Sample]:
        """The run's samples (all, or those in ``states``) ordered by (problem, config, index)."""

    @abc.abstractmethod
    def import_samples(self, run: str, samples: Sequence[Sample]) -> None:
        """Record already-drawn samples as finished (for ``budgetlab import``) and add their spend."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
