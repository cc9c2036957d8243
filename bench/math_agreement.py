"""How often the ``math`` verifier agrees with the truth on gold answers rewritten in other forms.

Every gold answer of GSM8K (test, 1319: the text after ``#### ``, thousands commas removed) and
MATH-500 (500) is written as a completion in several forms (``\\boxed{}``, "The answer is",
``$...$``, thousands separators, decimals, fractions, units, currency, "####", a chain of
thought ending in the number, LaTeX spacing and ``\\dfrac`` / ``\\left( ... \\right)``
variants), each of which the verifier must accept; and as a wrong answer in the same forms (the
gold plus one for numbers, another problem's different gold otherwise), which it must reject.
Agreement = the fraction of (completion, expected verdict) pairs it gets right, per dataset and
per form; every disagreement is listed. **Target: >= 99.5% on the GSM8K forms**
(``target_met.gsm8k``).

Reads the copies in the shared data folder (``--data``, default ``../shared/data/benchmarks``
next to the repository, or ``$BUDGETLAB_BENCH_DATA``). Needs math-verify (``pip install
'budgetlab[math]'``).

Usage::

    python bench/math_agreement.py            # table and disagreements (about a minute on 2 cores)
    python bench/math_agreement.py --json     # ... then one JSON object, last
    python bench/math_agreement.py --limit 100 --show 50
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import json
import random
import re
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

from budgetlab.core import Completion, Problem
from budgetlab.tasks import gsm8k_problems, math500_problems
from budgetlab.verifiers import MathVerifier

DEFAULT_DATA = Path(os.environ.get("BUDGETLAB_BENCH_DATA", Path(_HERE).parent.parent / "shared" / "data" / "benchmarks"))


def _number_forms(gold: str) -> dict[str, str]:
    """Completions stating the number ``gold`` in other forms."""
    value = Fraction(gold)
    forms = {
        "plain": gold,
        "boxed": f"Adding these up gives \\boxed{{{gold}}}.",
        "answer_is": f"So she has {gold} left. The answer is {gold}.",
        "dollar_math": f"The answer is ${gold}$.",
        "final_answer": f"Final answer: {gold}",
        "hashes": f"3 + 4 = 7 and 7 * 2 = 14.\n#### {gold}",
        "chain_last_number": f"First 12 / 3 = 4, then 4 * 5 = 20, so the result is {gold}",
        "decimal": f"The answer is {gold}.00" if value.denominator == 1 else f"The answer is {gold}",
        "fraction": f"The answer is \\boxed{{\\frac{{{value.numerator * 2}}}{{{value.denominator * 2}}}}}",
        "slash_fraction": f"The answer is {value.numerator * 3}/{value.denominator * 3}.",
        "units": f"The answer is {gold} dollars.",
        "currency": f"She earns ${gold} every day. The answer is \\${gold}.",
        "latex_text_unit": f"\\boxed{{{gold} \\text{{ cm}}}}",
        "markdown_bold": f"Adding it all up.\n\n**Answer:** {gold}",
        "unit_word_after": f"The answer is: {gold} eggs",
        "equation_chain": f"So the total is 2 * 9 = {gold}",
        "trailing_sentence": f"The answer is {gold}. That is how much she makes.",
    }
    if value.denominator == 1 and abs(value) >= 1000:
        forms["thousands"] = f"The answer is {int(value):,}."
        forms["thousands_boxed"] = f"\\boxed{{{int(value):,}}}"
        forms["thousands_latex"] = "\\boxed{" + f"{int(value):,}".replace(",", "{,}") + "}"
    return forms


def _gsm8k_cases(problems: list[Problem]) -> list[tuple[str, Problem, str, bool]]:
    cases = []
    for p in problems:
        gold = p.reference or ""
        for form, text in _number_forms(gold).items():
            cases.append((form, p, text, True))
        wrong = str(Fraction(gold) + 1)
        wrong = wrong if "/" not in wrong else str(float(Fraction(gold) + 1))
        for form, text in _number_forms(wrong).items():
            cases.append((f"wrong:{form}", p, text, False))
    return cases


_FRAC = re.compile(r"^\\[dt]?frac\{(-?\d+)\}\{(\d+)\}$")


def _latex_forms(gold: str) -> dict[str, str]:
    forms = {
        "boxed": f"Therefore the answer is $\\boxed{{{gold}}}$.",
        "answer_is": f"The answer is ${gold}$.",
        "final_answer": f"Final Answer: The final answer is ${gold}$. I hope it is correct.",
        "no_spaces": "\\boxed{" + gold.replace(" ", "") + "}",
        "dfrac": "\\boxed{" + gold.replace("\\frac", "\\dfrac") + "}",
        "left_right": "\\boxed{" + gold.replace("(", "\\left(").replace(")", "\\right)") + "}"
        if "\\left" not in gold else "\\boxed{" + gold.replace("\\left", "").replace("\\right", "") + "}",
    }
    plain = gold.strip()
    if re.fullmatch(r"-?\d+", plain):
        forms["decimal"] = f"The answer is {plain}.0"
        forms["equation"] = f"The answer is $x = {plain}$."
        if abs(int(plain)) >= 1000:
            forms["thousands"] = f"The answer is {int(plain):,}."
    m = _FRAC.match(plain)
    if m:
        num, den = int(m.group(1)), int(m.group(2))
        forms["slash_fraction"] = f"The answer is {num}/{den}."
        value = Fraction(num, den)
        if value.denominator in (2, 4, 5, 8, 10, 16, 20, 25, 40, 50, 100):
            forms["decimal"] = f"\\boxed{{{float(value)}}}"
    return forms


def _math_cases(problems: list[Problem], seed: int) -> list[tuple[str, Problem, str, bool]]:
    rng = random.Random(seed)
    cases = []
    golds = [p.reference or "" for p in problems]
    for p in problems:
        gold = p.reference or ""
        for form, text in _latex_forms(gold).items():
            cases.append((form, p, text, True))
        if re.fullmatch(r"-?\d+", gold.strip()):
            wrong = str(int(gold) + 1)
        else:
            wrong = rng.choice([g for g in golds if g.replace(" ", "") != gold.replace(" ", "")])
        for form in ("boxed", "answer_is"):
            cases.append((f"wrong:{form}", p, _latex_forms(wrong)[form], False))
    return cases


def _evaluate(verifier: MathVerifier, cases: list[tuple[str, Problem, str, bool]]) -> dict[str, Any]:
    per_form: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    disagreements = []
    started = time.perf_counter()
    for form, problem, text, expected in cases:
        verdict = verifier.verify(problem, Completion(text=text))
        ok = verdict.correct is expected
        per_form[form][0] += ok
        per_form[form][1] += 1
        if not ok:
            disagreements.append({"problem": problem.id, "form": form, "gold": problem.reference, "completion": text,
                                  "extracted": verdict.answer, "expected": expected, "got": verdict.correct,
                                  "method": verdict.details.get("method")})
    seconds = time.perf_counter() - started
    right = sum(v[0] for v in per_form.values())
    total = sum(v[1] for v in per_form.values())
    return {"agreement": right / total if total else 0.0, "cases": total, "disagreements": disagreements,
            "per_form": {f: v[0] / v[1] for f, v in sorted(per_form.items())},
            "per_form_counts": {f: v[1] for f, v in sorted(per_form.items())},
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with gsm8k_test.jsonl and math500_test.jsonl")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems of each dataset")
    parser.add_argument("--show", type=int, default=40, help="disagreements to print per dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()

    verifier = MathVerifier()
    results: dict[str, Any] = {}
    gsm = gsm8k_problems(str(args.data / "gsm8k_test.jsonl"), n=args.limit)
    results["gsm8k"] = _evaluate(verifier, _gsm8k_cases(gsm))
    math500 = math500_problems(str(args.data / "math500_test.jsonl"), n=args.limit)
    results["math500"] = _evaluate(verifier, _math_cases(math500, args.seed))

    for name, r in results.items():
        print(f"\n{name}: agreement {r['agreement']:.4%} over {r['cases']} cases ({r['seconds']:.1f} s)")
        print(f"  {'form':<28} {'cases':>6} {'agreement':>10}")
        for form, share in r["per_form"].items():
            print(f"  {form:<28} {r['per_form_counts'][form]:>6} {share:>10.2%}")
        shown = r["disagreements"][: args.show]
        print(f"  disagreements: {len(r['disagreements'])}" + (f" (first {len(shown)})" if len(shown) < len(r["disagreements"]) else ""))
        for d in shown:
            print(f"    {d['problem']} [{d['form']}] gold={d['gold']!r} completion={d['completion'][:90]!r} "
                  f"extracted={d['extracted']!r} expected={d['expected']} got={d['got']} ({d['method']})")
    if args.json:
        out = {
            name: {k: (v if k != "disagreements" else v[: args.show]) for k, v in r.items()} | {"n_disagreements": len(r["disagreements"])}
            for name, r in results.items()
        }
        out["target_met"] = {"gsm8k": results["gsm8k"]["agreement"] >= 0.995}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
