"""A run: what was asked for (its spec) and where it stands (its info)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from budgetlab.core.budget import Budget, Spend

__all__ = ["RunSpec", "RunState", "RunInfo"]


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to rebuild a run from the store alone: backend, policy and verifier by
    name with their arguments, the budget, the seed and the concurrency."""

    name: str
    backend: str = ""
    backend_args: Mapping[str, Any] = field(default_factory=dict)
    policy: str = "fixed"
    policy_args: Mapping[str, Any] = field(default_factory=dict)
    verifier: str = "auto"
    budget: Budget = field(default_factory=Budget)
    seed: int = 0
    concurrency: int = 64

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "backend_args": dict(self.backend_args),
            "policy": self.policy,
            "policy_args": dict(self.policy_args),
            "verifier": self.verifier,
            "budget": self.budget.to_dict(),
            "seed": self.seed,
            "concurrency": self.concurrency,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        return cls(
            name=data["name"],
            backend=data["backend"],
            backend_args=dict(data.get("backend_args") or {}),
            policy=data.get("policy", "fixed"),
            policy_args=dict(data.get("policy_args") or {}),
            verifier=data.get("verifier", "auto"),
            budget=Budget.from_dict(data.get("budget")),
            seed=int(data.get("seed", 0)),
            concurrency=int(data.get("concurrency", 64)),
        )


class RunState(str, enum.Enum):
    """``created -> running -> done | stopped | interrupted | failed``; any of the last three
    may go back to ``running`` when the run is resumed."""

    CREATED = "created"
    RUNNING = "running"
    DONE = "done"  # the policy has nothing more to draw
    STOPPED = "stopped"  # a budget limit was reached
    INTERRUPTED = "interrupted"  # killed or Ctrl-C: resume it by running it again
    FAILED = "failed"  # an error stopped it; samples already drawn are kept


@dataclass(frozen=True)
class RunInfo:
    """A run as the store holds it: its spec, state, why it stopped, and spend (spent and held
    by claims in flight)."""

    spec: RunSpec
    state: RunState
    stopped_because: str | None = None
    spent: Spend = field(default_factory=Spend)
    reserved: Spend = field(default_factory=Spend)
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name
