"""The ``judge`` verifier: a model grades the completion (model-graded QA, as inspect_ai's
``model_graded_qa``), through any budgetlab backend. What the judge's request cost is returned
with the verdict, so the run counts it in the budget."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from budgetlab.core import (
    Completion,
    Problem,
    Sample,
    SamplingConfig,
    Verdict,
    derive_seed,
)
from budgetlab.errors import InputError

__all__ = ["DEFAULT_JUDGE_TEMPLATE", "JudgeVerifier", "parse_grade"]

DEFAULT_JUDGE_TEMPLATE = """You are grading a submitted answer to a question. Decide whether the submission is correct. \
When a reference answer is given, the submission is correct when it agrees with the reference; differences of \
wording, formatting or units that do not change the meaning do not matter.

[Question]
{question}

[Reference answer]
{reference}

[Submission]
{answer}

Reason briefly, then end with a line that is exactly "GRADE: C" if the submission is correct, or "GRADE: I" if it \
is incorrect."""

_GRADE = re.compile(r"GRADE\s*:\s*\**\s*([CI])\b", re.IGNORECASE)


def parse_grade(text: str | None) -> bool | None:
    """``True`` for the last "GRADE: C", ``False`` for "GRADE: I", ``None`` when there is none."""
    found = _GRADE.findall(text or "")
    return None if not found else found[-1].upper() == "C"


class JudgeVerifier:
    """Asks the model ``model`` on ``backend`` (a backend spec, e.g.
    ``openai:http://127.0.0.1:8000/v1``) to grade each completion, with ``template`` (fields
    ``{question}``, ``{answer}``, ``{reference}``; the default asks for "GRADE: C" or "GRADE: I").
    ``temperature``, ``max_tokens``, ``price_in``, ``price_out`` go to the judge's requests. A
    verdict without a grade, or a judge request that failed, is unknown (``correct=None``); its
    answer says why. The verdict carries the judge's tokens and dollars. ``max_seconds`` is what
    one grading may take, reserved against a ``verify_seconds`` budget.
    """

    name = "judge"

    def __init__(
        self,
        backend: str,
        model: str,
        template: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 512,
        price_in: float | None = None,
        price_out: float | None = None,
        max_seconds: float = 120.0,
    ) -> None:
        from budgetlab.backends import make_backend

        self.backend_spec = str(backend)
        make_backend(self.backend_spec)  # fail now on a bad spec, not at the first sample
        self.template = template or DEFAULT_JUDGE_TEMPLATE
        for field in ("{answer}",):
            if field not in self.template:
                raise InputError(f"judge template must contain {field}; it may also use {{question}} and {{reference}}")
        params: dict[str, Any] = {"temperature": float(temperature), "max_tokens": int(max_tokens)}
        if price_in is not None:
            params["price_in"] = float(price_in)
        if price_out is not None:
            params["price_out"] = float(price_out)
        self.config = SamplingConfig(model=str(model), backend=self.backend_spec.partition(":")[0], params=params,
                                     label=f"judge:{model}")
        self.max_seconds = float(max_seconds)

    def prompt(self, problem: Problem, completion: Completion) -> str:
        question = problem.prompt if problem.prompt is not None else "\n\n".join(
            str(m.get("content", "")) for m in (problem.messages or ())
        )
        try:
            return self.template.format(
                question=question or "", answer=completion.text or "", reference=problem.reference or "(none given)"
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(
                f"judge template cannot be filled ({type(exc).__name__}: {exc}); use {{question}}, {{answer}}, "
                "{reference}, and double literal braces"
            ) from None

    def verify(self, problem: Problem, completion: Completion) -> Verdict:
        return asyncio.run(self.averify(problem, completion))

    async def averify(self, problem: Problem, completion: Completion) -> Verdict:
        from budgetlab.backends import DrawRequest, make_backend

        started = time.perf_counter()
        asked = Problem(id=f"judge/{problem.id}", prompt=self.prompt(problem, completion))
        sample = Sample(run="judge", problem=asked.id, config=self.config.id, index=0,
                        seed=derive_seed(0, asked.id, self.config.id, 0))
        backend = make_backend(self.backend_spec)  # one per grading: no client outlives its event loop
        try:
            [graded] = await backend.draw(DrawRequest(asked, self.config, (sample,)))
        finally:
            await backend.aclose()
        spent = {"prompt_tokens": graded.prompt_tokens, "completion_tokens": graded.completion_tokens,
                 "cost": graded.cost, "seconds": time.perf_counter() - started}
        if graded.error is not None:
            return Verdict(answer=f"judge failed: {graded.error}", correct=None,
                           details={"judge": self.config.model}, **spent)
        grade = parse_grade(graded.text)
        answer = "judge: no grade" if grade is None else ("judge: correct" if grade else "judge: incorrect")
        return Verdict(answer=answer, correct=grade, details={"judge": self.config.model, "judgement": graded.text},
                       **spent)
