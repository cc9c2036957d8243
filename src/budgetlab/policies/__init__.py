"""Policies decide how many samples each (problem, configuration) gets, and when to stop."""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

from budgetlab.core.spec import check_arguments, parse_spec
from budgetlab.errors import InputError
from budgetlab.policies._adaptive import AdaptiveConsistency
from budgetlab.policies._base import Policy, Proposal
from budgetlab.policies._bayes import BayesStopping, fit_bayes_stopping
from budgetlab.policies._confidence import ConfidenceStopping
from budgetlab.policies._esc import EarlyStoppingSC
from budgetlab.policies._fixed import FixedK
from budgetlab.policies._planner import CoveragePlanner
from budgetlab.policies._sequential import SequentialStopping

__all__ = [
    "POLICIES",
    "AdaptiveConsistency",
    "BayesStopping",
    "ConfidenceStopping",
    "CoveragePlanner",
    "EarlyStoppingSC",
    "FixedK",
    "Policy",
    "Proposal",
    "SequentialStopping",
    "fit_bayes_stopping",
    "make_policy",
    "policy_spec",
]

POLICIES: dict[str, Callable[..., Policy]] = {
    "fixed": FixedK,
    "esc": EarlyStoppingSC,
    "adaptive": AdaptiveConsistency,
    "bayes": BayesStopping,
    "confidence": ConfidenceStopping,
    "planner": CoveragePlanner,
}


def _register_selection_policies() -> None:
    """Best-arm identification over configurations (budgetlab.evaluation) as run policies.
    Generic names get a prefix so that they read as evaluation policies on the command line."""
    from budgetlab.evaluation.selection import SELECTION_POLICIES

    for name, factory in SELECTION_POLICIES.items():
        POLICIES[name if name.startswith("ucbe") else f"select-{name}"] = factory


_register_selection_policies()


def make_policy(name: str, options: Mapping[str, Any] | None = None) -> Policy:
    """A policy by name, with ``options``; or from a spec ``"NAME:key=value,..."``."""
    if ":" in name and options is None:
        name, options = parse_spec(name, "policy")
    factory = POLICIES.get(name)
    if factory is None:
        raise InputError(f"unknown policy {name!r}; use one of: {', '.join(sorted(POLICIES))} (e.g. --policy fixed:k=8)")
    check_arguments(factory, options, f"policy {name}", "fixed:k=8")
    return factory(**dict(options or {}))


def policy_spec(policy: str | Policy, options: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any] | None]:
    """The ``(name, arguments)`` a run records for ``policy``: a name with ``options``, a spec
    ``"NAME:key=value,..."``, or an instance of a registered policy class (its fields that
    differ from their defaults). A run is rebuilt from this record on resume, which is why an
    instance of an unregistered class cannot be recorded."""
    if isinstance(policy, str):
        name, args = parse_spec(policy, "policy") if ":" in policy and options is None else (policy, None if options is None else dict(options))
        return name, _recordable(name, _inline_files(name, args))
    name = next((n for n, factory in POLICIES.items() if factory is type(policy)), None)
    if name is None or not dataclasses.is_dataclass(policy) or options is not None:
        cls = type(policy).__name__
        how = (f"register its class first, in every process that runs or resumes the run: "
               f"budgetlab.policies.POLICIES['{getattr(policy, 'name', cls)}'] = {cls} (a frozen dataclass), then pass "
               f"{cls}(...) or its name" if name is None else "pass it by name with policy_args instead")  # fmt: skip
        raise InputError(f"policy {policy!r:.60} cannot be recorded with the run (it is rebuilt by name on resume); {how}, "
                         f"or a registered policy by name or spec, e.g. policy='fixed:k=8' (names: {', '.join(sorted(POLICIES))})")  # fmt: skip
    args = {
        f.name: getattr(policy, f.name)
        for f in dataclasses.fields(policy)
        if f.init and f.name != "name" and getattr(policy, f.name) != f.default
    }
    return name, _recordable(name, _inline_files(name, args) or None)


def _recordable(name: str, args: dict[str, Any] | None) -> dict[str, Any] | None:
    """``args`` as the store keeps them, JSON values (tuples as lists, NumPy numbers and paths as
    plain ones), so that the same policy given again when the run resumes matches its record.
    A value JSON cannot hold (a function, a set, an object) is refused here, naming the argument,
    before anything is recorded: the run could never be rebuilt from it."""
    if not args:
        return args
    out: dict[str, Any] = {}
    for key, value in args.items():
        try:
            out[key] = json.loads(json.dumps(value, default=_json_default, allow_nan=True))
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"policy {name}: argument {key}={value!r:.60} cannot be recorded with the run ({exc}); a run is rebuilt "
                "from its record when it resumes, so give plain values (numbers, strings, lists, dicts), e.g. the "
                "name of a function the policy looks up rather than the function"
            ) from None
    return out


def _json_default(value: Any) -> Any:
    """NumPy numbers and paths as the plain values they stand for; anything else is refused."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # a NumPy array
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _inline_files(name: str, args: dict[str, Any] | None) -> dict[str, Any] | None:
    """``args`` with each file a policy read (its ``file_args``) replaced by what the file holds,
    as the built policy keeps it: a run is then rebuilt the same from anywhere, and a file changed
    later changes nothing."""
    file_args = getattr(POLICIES.get(name), "file_args", ())
    if not args or not any(isinstance(args.get(f), (str, os.PathLike)) for f in file_args):
        return args
    made = make_policy(name, args)  # reads and checks the files (a bad one is refused with its fix)
    out = dict(args)
    for field in file_args:
        held = getattr(made, field, None)
        # A file's content, and what it brought along (a prior file's calibrator, which the run needs as much).
        if held is not None and (isinstance(args.get(field), (str, os.PathLike)) or field not in args):
            out[field] = _plain(held)
    return out


def _plain(value: Any) -> Any:
    """JSON-ready: tuples as lists, mappings as dicts."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
