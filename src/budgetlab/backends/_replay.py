"""Replay recorded samples as if they were drawn now.

Two JSONL formats (optionally gzipped), detected per line:

* samples: ``{"problem", "config", "answer", "correct", "score", "text", "prompt_tokens",
  "completion_tokens", "logprob"}`` (all but problem and config may be null or absent; an
  optional ``"cost"`` in dollars is honoured);
* counts: ``{"problem", "config", "n", "correct"}``: ``correct`` successes among ``n``.

Sample ``i`` of a (problem, config) is the ``i``-th recording in draw order, so draws are
without replacement and a re-issued sample returns the same recording. Draw order is file order,
or a permutation seeded by ``seed`` (counts are always permuted, with seed 0 by default, since
their "file order" would put every success first).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgetlab.backends._base import DrawRequest
from budgetlab.core import Completion, Problem, SamplingConfig, Spend
from budgetlab.core.jsonl import iter_jsonl
from budgetlab.errors import InputError

__all__ = ["ReplayBackend", "RecordedSample", "read_recorded"]

_SAMPLE_FIELDS = {
    "problem": str,
    "config": str,
    "answer": (str, int, float),
    "correct": bool,
    "score": (int, float),
    "text": str,
    "prompt_tokens": int,
    "completion_tokens": int,
    "logprob": (int, float),
    "cost": (int, float),
}


@dataclass(frozen=True)
class RecordedSample:
    problem: str
    config: str
    answer: str | None = None
    correct: bool | None = None
    score: float | None = None
    text: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprob: float | None = None
    cost: float = 0.0

    def completion(self) -> Completion:
        return Completion(
            text=self.text,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost=self.cost,
            logprob=self.logprob,
            answer=self.answer,
            correct=self.correct,
            score=self.score,
        )


_EXPECTED = (
    'a samples record {"problem": str, "config": str, "answer": ..., "correct": ...} or a counts record '
    '{"problem": str, "config": str, "n": int, "correct": int} (see the README, "Replay formats")'
)


def _bad(path: Path, lineno: int, what: str) -> InputError:
    return InputError(f"{path}:{lineno}: {what}; each line must be {_EXPECTED}")


def _parse_line(path: Path, lineno: int, obj: Any) -> list[RecordedSample] | RecordedSample:
    if not isinstance(obj, dict):
        raise _bad(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
    for key in ("problem", "config"):
        if key not in obj or obj[key] is None:
            raise _bad(path, lineno, f"field {key!r} is missing")
        if not isinstance(obj[key], (str, int)) or isinstance(obj[key], bool):
            raise _bad(path, lineno, f"field {key!r} must be a string, got {obj[key]!r}")
    problem, config = str(obj["problem"]), str(obj["config"])
    if "n" in obj:  # counts record
        n, correct = obj.get("n"), obj.get("correct")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise _bad(path, lineno, f"'n' must be a non-negative integer, got {n!r}")
        if not isinstance(correct, int) or isinstance(correct, bool) or not 0 <= correct <= n:
            raise _bad(path, lineno, f"'correct' must be an integer between 0 and n={n}, got {correct!r}")
        return [RecordedSample(problem, config, correct=True)] * correct + [
            RecordedSample(problem, config, correct=False)
        ] * (n - correct)
    values: dict[str, Any] = {}
    for key, kind in _SAMPLE_FIELDS.items():
        value = obj.get(key)
        if value is None or key in ("problem", "config"):
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _bad(path, lineno, f"field {key!r} has the wrong type: {value!r}")
        if key in ("prompt_tokens", "completion_tokens", "cost") and value < 0:
            raise _bad(path, lineno, f"field {key!r} must not be negative, got {value!r}")
        values[key] = value
    if "answer" in values:
        values["answer"] = str(values["answer"])
    return RecordedSample(problem, config, **values)


def read_recorded(path: str | Path) -> tuple[dict[tuple[str, str], list[RecordedSample]], set[tuple[str, str]]]:
    """Read a replay file: recordings per (problem, config) in file order, and the pairs that
    came from counts records."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"replay file {path} is a directory; give the path of a samples or counts JSONL file in it")
    if not path.is_file():
        raise InputError(f"replay file {path} does not exist; give the path of a samples or counts JSONL file")
    records: dict[tuple[str, str], list[RecordedSample]] = {}
    counted: set[tuple[str, str]] = set()
    for lineno, obj in iter_jsonl(path, _EXPECTED):
        parsed = _parse_line(path, lineno, obj)
        key = (str(obj["problem"]), str(obj["config"]))
        if key in counted or (isinstance(parsed, list) and key in records):
            raise _bad(path, lineno, f"a second record for problem {key[0]!r}, config {key[1]!r} (a counts record must be its pair's only record)")
        if isinstance(parsed, list):
            counted.add(key)
            records[key] = parsed
        else:
            records.setdefault(key, []).append(parsed)
    if not records:
        raise InputError(f"replay file {path} holds no records; give a JSONL file with one record per line")
    return records, counted


class ReplayBackend:
    """Serves recorded samples; see the module docstring."""

    name = "replay"

    def __init__(self, path: str | Path, seed: int | None = None) -> None:
        self.path = Path(path)
        self.records, self._counted = read_recorded(self.path)
        self.seed = seed
        self._orders: dict[tuple[str, str], list[int]] = {}

    # What the file holds, for runs that take their problems and configurations from it.
    def problems(self) -> list[Problem]:
        return [Problem(pid) for pid in dict.fromkeys(p for p, _ in self.records)]

    def configs(self) -> list[SamplingConfig]:
        return [SamplingConfig(model=c, backend="replay") for c in dict.fromkeys(c for _, c in self.records)]

    def check(self, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> None:
        known_configs = {c for _, c in self.records}
        for config in configs:
            if config.model not in known_configs:
                raise InputError(
                    f"configuration {config.model!r} is not in replay file {self.path}; "
                    f"it has: {', '.join(sorted(known_configs)[:10])}"
                )
        known_problems = {p for p, _ in self.records}
        missing = [p.id for p in problems if p.id not in known_problems]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise InputError(
                f"problem {missing[0]!r}{more} is not in replay file {self.path}; give problems whose ids appear in it, "
                f"e.g. {sorted(known_problems)[0]!r}"
            )

    def _order(self, key: tuple[str, str]) -> list[int]:
        order = self._orders.get(key)
        if order is None:
            order = list(range(len(self.records.get(key, ()))))
            # Counts have no order of their own (file order would put every success first).
            seed = self.seed if self.seed is not None else (0 if key in self._counted else None)
            if seed is not None:
                random.Random(f"{seed}\x1f{key[0]}\x1f{key[1]}").shuffle(order)
            self._orders[key] = order
        return order

    def _recorded(self, problem: str, config: str, index: int) -> RecordedSample | None:
        key = (problem, config)
        order = self._order(key)
        return self.records[key][order[index]] if index < len(order) else None

    def available(self, problem: str, config: SamplingConfig) -> int:
        return len(self.records.get((problem, config.model), ()))

    def estimate(self, request: DrawRequest) -> list[Spend]:
        out = []
        for sample in request.samples:
            rec = self._recorded(request.problem.id, request.config.model, sample.index)
            if rec is None:
                out.append(Spend(samples=1))
            else:
                out.append(Spend(1, rec.prompt_tokens + rec.completion_tokens, rec.cost))
        return out

    async def draw(self, request: DrawRequest) -> list[Completion]:
        out = []
        for sample in request.samples:
            rec = self._recorded(request.problem.id, request.config.model, sample.index)
            if rec is None:
                out.append(
                    Completion(
                        error=f"replay exhausted: {self.path} holds only "
                        f"{self.available(request.problem.id, request.config)} samples of problem "
                        f"{request.problem.id!r} under {request.config.model!r}"
                    )
                )
            else:
                out.append(rec.completion())
        return out

    async def aclose(self) -> None:
        return None
