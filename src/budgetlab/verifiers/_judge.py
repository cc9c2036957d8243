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
    Spend,
    Verdict,
    derive_seed,
)
from budgetlab.errors import InputError

__all__ = ["ANSWER_BYTES_PER_TOKEN", "DEFAULT_JUDGE_TEMPLATE", "JudgeVerifier", "parse_grade"]

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

# What a judge's reservation allows for the answer in its prompt: per token of the draw (prompt and
# completion; a token of a byte-level tokenizer rarely covers more, English text averages about
# 4), and at least MIN_ANSWER_BYTES (recorded samples may come without token counts).
ANSWER_BYTES_PER_TOKEN = 8
MIN_ANSWER_BYTES = 512


def _answer_cap(draw_tokens: int) -> int:
    return max(MIN_ANSWER_BYTES, ANSWER_BYTES_PER_TOKEN * int(draw_tokens))


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

    The judge's own tokens and dollars are reserved before the sample is drawn (:meth:`estimate`).
    Its prompt holds the answer, which is not written yet: the reservation allows
    :data:`ANSWER_BYTES_PER_TOKEN` bytes per token the draw may use, at least
    :data:`MIN_ANSWER_BYTES`. A longer answer is still graded whole, and what it costs beyond
    the reservation is counted when it settles.
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
        self._estimator: Any = None

    def _asked(self, problem: Problem, answer: str) -> Problem:
        return Problem(id=f"judge/{problem.id}", prompt=self.prompt(problem, Completion(text=answer)))

    def _sample(self, asked: Problem) -> Sample:
        return Sample(run="judge", problem=asked.id, config=self.config.id, index=0,
                      seed=derive_seed(0, asked.id, self.config.id, 0))  # fmt: skip

    def estimate(self, problem: Problem, draw: Spend) -> Spend:
        """The most grading one completion of ``problem`` may cost, for a draw bounded by ``draw``."""
        from budgetlab.backends import DrawRequest, make_backend

        if self._estimator is None:
            self._estimator = make_backend(self.backend_spec)  # only estimates: no request is sent
        asked = self._asked(problem, "x" * _answer_cap(draw.tokens))
        [bound] = self._estimator.estimate(DrawRequest(asked, self.config, (self._sample(asked),)))
        return Spend(tokens=bound.tokens, dollars=bound.dollars)

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
        asked = self._asked(problem, completion.text or "")
        sample = self._sample(asked)
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
