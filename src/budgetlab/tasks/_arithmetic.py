"""Generated arithmetic problems with known answers: a task any model can be checked on.

Difficulty is the number of digits per operand; problems are few-shot prompts that end where
the answer should start, so base and instruction-tuned models can both be asked.
"""

from __future__ import annotations

import random

from budgetlab.core import Problem
from budgetlab.errors import InputError

__all__ = ["arithmetic_problems"]

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def _whole(name: str, value: object, example: str) -> int:
    """``value`` as an int: the spec parser gives ``n=abc`` as a string and ``n=1.5`` as a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"arithmetic task {name}={value!r} is not a whole number; e.g. arithmetic:{example}")
    return value


def arithmetic_problems(n: int = 50, digits: int = 1, ops: str = "+", shots: int = 3, seed: int = 0) -> list[Problem]:
    """``n`` problems ``a OP b`` with ``digits``-digit operands, each with ``shots`` solved
    examples before it. The same arguments always give the same problems."""
    n, digits = _whole("n", n, "n=50"), _whole("digits", digits, "digits=2")
    shots, seed = _whole("shots", shots, "shots=3"), _whole("seed", seed, "seed=1")
    if not 1 <= n <= 100_000:
        raise InputError(f"arithmetic task needs 1 <= n <= 100000 problems, got n={n}; e.g. --task arithmetic:n=50")
    if not 1 <= digits <= 12:
        raise InputError(f"arithmetic task needs 1 <= digits <= 12, got digits={digits}; e.g. arithmetic:digits=2")
    bad = [op for op in str(ops) if op not in _OPS]
    if bad or not ops:
        raise InputError(f"arithmetic task ops must be made of {''.join(_OPS)}, got ops={ops!r}; e.g. arithmetic:ops=+-")
    if shots < 0:
        raise InputError(f"arithmetic task needs shots >= 0 solved examples, got shots={shots}; e.g. arithmetic:shots=3")
    rng = random.Random(f"arithmetic-{seed}")
    low, high = (0 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1

    def draw() -> tuple[int, str, int]:
        return rng.randint(low, high), rng.choice(str(ops)), rng.randint(low, high)

    problems = []
    for i in range(n):
        lines = []
        for _ in range(shots):
            a, op, b = draw()
            lines.append(f"Q: What is {a} {op} {b}?\nA: {_OPS[op](a, b)}")
        a, op, b = draw()
        lines.append(f"Q: What is {a} {op} {b}?\nA:")
        problems.append(
            Problem(
                id=f"arith-d{digits}-{i:04d}",
                prompt="\n\n".join(lines),
                reference=str(_OPS[op](a, b)),
                metadata={"a": a, "b": b, "op": op, "digits": digits},
            )
        )
    return problems
