"""budgetlab: spend an LLM inference and evaluation budget where it pays.

The data flows one way: a run asks its policy where the next samples go, the backend draws
them, the verifier judges them, the store records them, and the analysis reads the store.

Start with::

    outcome = budgetlab.run("my-run", "replay:samples.jsonl", policy_args={"k": 8},
                            budget="tokens=2e6", store="budgetlab.db")
    report = budgetlab.build_report("budgetlab.db", "my-run")   # plain JSON-ready dict

``run`` blocks until the run ends (in a Jupyter cell too). Estimators are in
:mod:`budgetlab.analysis` (pass@k, maj@k, coverage curves, extrapolation), forecasts in
:mod:`budgetlab.forecast`, best-method selection, item subsets and control variates in
:mod:`budgetlab.evaluation`, pacing over a stream in :mod:`budgetlab.pacing`. Errors for bad
input are :class:`BudgetlabError` (:class:`InputError`, and its ``ValueError`` subclass
``budgetlab.errors.InvalidArgument`` from estimators) with a one-line message that names the fix.
"""

from budgetlab.analysis import build_report, maj_at_k, pass_at_k
from budgetlab.backends import Backend, DrawRequest, ReplayBackend, make_backend
from budgetlab.core import (
    Budget,
    Completion,
    Problem,
    Sample,
    SampleKey,
    SampleState,
    SamplingConfig,
    Spend,
    Verdict,
)
from budgetlab.core.run import RunInfo, RunSpec, RunState
from budgetlab.core.view import RunView
from budgetlab.errors import BudgetlabError, InputError, RunNotFound, StoreError
from budgetlab.policies import FixedK, Policy, Proposal, make_policy
from budgetlab.runner import JudgeOutcome, Progress, RunOutcome, execute, import_recorded, judge_again, run
from budgetlab.stores import BaseStore, SQLiteStore, open_store
from budgetlab.tasks import load_problems
from budgetlab.verifiers import ExactVerifier, Verifier, make_verifier

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BaseStore",
    "Budget",
    "BudgetlabError",
    "Completion",
    "DrawRequest",
    "ExactVerifier",
    "FixedK",
    "InputError",
    "JudgeOutcome",
    "Policy",
    "Problem",
    "Progress",
    "Proposal",
    "ReplayBackend",
    "RunInfo",
    "RunNotFound",
    "RunOutcome",
    "RunSpec",
    "RunState",
    "RunView",
    "SQLiteStore",
    "Sample",
    "SampleKey",
    "SampleState",
    "SamplingConfig",
    "Spend",
    "StoreError",
    "Verdict",
    "Verifier",
    "build_report",
    "execute",
    "import_recorded",
    "judge_again",
    "load_problems",
    "maj_at_k",
    "make_backend",
    "make_policy",
    "make_verifier",
    "open_store",
    "pass_at_k",
    "run",
]

# The plug-in families that `import budgetlab` does not load (some pull in heavy dependencies):
# imported on first use, so that `budgetlab.pacing.BudgetPacer` works after `import budgetlab`.
_LAZY_SUBPACKAGES = frozenset({"allocation", "calibration", "evaluation", "forecast", "pacing", "selectors", "testing"})


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBPACKAGES:
        import importlib

        return importlib.import_module(f"budgetlab.{name}")
    raise AttributeError(f"module 'budgetlab' has no attribute {name!r}")
