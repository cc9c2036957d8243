"""Budget forcing's rules (``budgetlab.backends._forcing``), driven by a scripted fake model: a
stream of tokens that honours ``max_tokens`` and stop strings like a completions server does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import pytest

from budgetlab.backends._forcing import (
    BudgetForcing,
    ForcingTrace,
    Piece,
    drive_forcing,
    forcing_of,
    split_thinking,
)
from budgetlab.core import SamplingConfig
from budgetlab.errors import InputError

EOS = None  # the end-of-sequence token in a script


class ScriptedModel:
    """Emits its script's tokens in order, whatever it is sent (forced text does not change what
    comes next). A step ends at ``max_tokens`` (``length``), at an end-of-sequence token, or
    once its text holds a stop string (the text is cut before it; its tokens were generated)."""

    def __init__(self, tokens: Sequence[str | None], honour_stop: bool = True) -> None:
        self.stream: Iterator[str | None] = iter(tokens)
        self.honour_stop = honour_stop
        self.calls: list[tuple[str, int, tuple[str, ...] | None]] = []

    async def step(self, generated: str, max_tokens: int, stop: tuple[str, ...] | None, thinking: bool) -> Piece:
        self.calls.append((generated, max_tokens, stop))
        text, used = "", 0
        while used < max_tokens:
            token = next(self.stream, EOS)
            used += 1
            if token is EOS:
                return Piece(text, used, False)
            text += token
            hits = [text.find(s) for s in stop or () if s in text]
            if hits and self.honour_stop:
                return Piece(text[: min(hits)], used, False)
        return Piece(text, used, True)


def force(tokens: Sequence[str | None], max_tokens: int = 4, stop: tuple[str, ...] | None = ("\n",), honour_stop: bool = True, **fields):
    forcing = BudgetForcing(**fields)
    model = ScriptedModel(tokens, honour_stop)
    return asyncio.run(drive_forcing(forcing, model.step, max_tokens, stop)), model


def thoughts(n: int) -> list[str]:
    return [f" t{i}" for i in range(n)]


# ---- the rules -------------------------------------------------------------------------------
def test_a_model_that_ends_its_thinking_in_time_answers_after_the_end_text() -> None:
    out, model = force([*thoughts(3), "</think>", " 7", "\n", " junk"], min_thinking_tokens=2)
    assert out.text == " t0 t1 t2</think>\nFinal answer: 7"
    # request by request, the thinking tokens are what the steps generated: the delimiter's too
    assert out.trace.details() == {"thinking_tokens": 4, "waits": 0, "thinking_cut": False, "thinking_ended_by_model": True}
    # thinking stops at the end delimiter (not at the answer's stop strings); the answer gets them
    assert [c[1:] for c in model.calls] == [(1024, ("</think>",)), (4, ("\n",))]


def test_an_early_end_is_replaced_by_wait_until_the_minimum() -> None:
    script = [*thoughts(2), "</think>", *thoughts(2), "</think>", *thoughts(3), "</think>", " 9"]
    out, model = force(script, min_thinking_tokens=7, max_waits=3)
    assert out.text == " t0 t1Wait t0 t1Wait t0 t1 t2</think>\nFinal answer: 9"
    assert out.trace.waits == 2 and out.trace.thinking_tokens == 3 + 3 + 4 and not out.trace.cut
    # every continuation is sent what came before, forced text included
    assert [c[0] for c in model.calls[:3]] == ["", " t0 t1Wait", " t0 t1Wait t0 t1Wait"]


def test_waits_stop_at_max_waits_even_under_the_minimum() -> None:
    script = ["</think>", " a", "</think>", " b", "</think>", " 5"]
    out, _ = force(script, min_thinking_tokens=100, max_thinking_tokens=200, max_waits=2, wait=" Hmm")
    assert out.text == " Hmm a Hmm b</think>\nFinal answer: 5"
    assert out.trace.waits == 2 and out.trace.ended_by_model


def test_an_end_of_sequence_while_thinking_is_an_attempt_to_end() -> None:
    out, _ = force([" a", EOS, " b", EOS, " 3"], min_thinking_tokens=3, max_waits=5)
    assert out.text == " aWait b</think>\nFinal answer: 3"
    assert out.trace.waits == 1 and out.trace.thinking_tokens == 4  # a server counts the end token too


def test_the_thinking_is_cut_at_max_thinking_tokens_and_the_answer_forced() -> None:
    out, model = force([*thoughts(50), " 4"], max_thinking_tokens=5, answer_prefix=" So:")
    assert out.text == " t0 t1 t2 t3 t4</think> So: t5 t6 t7 t8"  # the answer gets max_tokens=4
    assert out.trace.cut and out.trace.thinking_tokens == 5 and not out.trace.ended_by_model
    assert model.calls[0][1] == 5


def test_after_a_wait_the_thinking_gets_only_what_is_left() -> None:
    out, model = force([*thoughts(3), "</think>", *thoughts(20)], min_thinking_tokens=5, max_thinking_tokens=6, max_waits=5)
    assert [c[1] for c in model.calls] == [6, 2, 4]  # 4 used, then the 2 left, then the answer
    assert out.trace.cut and out.trace.thinking_tokens == 6 and out.trace.waits == 1


def test_no_thinking_at_all_puts_the_end_into_the_prompt() -> None:
    forcing = BudgetForcing(max_thinking_tokens=0)
    trace = ForcingTrace(forcing)
    assert trace.prompt_suffix() == "<think></think>\nFinal answer:"
    out, model = force([" 8", "\n"], max_thinking_tokens=0)
    assert out.text == " 8" and len(model.calls) == 1 and out.trace.thinking_tokens == 0


def test_a_server_that_ignores_stop_strings_is_cut_at_the_delimiter() -> None:
    out, _ = force([" a", "</think>", " 7", " 8", " 6", "\n"], honour_stop=False, max_thinking_tokens=4)
    # the first step ran to its max_tokens past the delimiter; the text after it is dropped
    assert out.pieces[0] == Piece(" a</think> 7 8", 4, True)
    assert out.text == " a</think>\nFinal answer: 6\n"  # (nor did it honour the answer's stop)


def test_text_a_server_wrote_past_the_delimiter_does_not_count_as_thinking() -> None:
    # A server that ignores stop strings goes on into an answer; had those tokens counted, a
    # model that closes its thinking at once would pass min_thinking_tokens without a wait.
    script = ["</think>", " Final", " answer:", " 7", "\n", "</think>", " 7", " 7", " 7", "\n", " 7"]
    out, _ = force(script, honour_stop=False, min_thinking_tokens=5, max_thinking_tokens=16, max_waits=1)
    assert out.trace.waits == 1
    assert out.text.startswith("Wait</think>\nFinal answer:")


def test_a_model_that_ends_on_the_last_token_of_the_budget_ended_it_itself() -> None:
    # The delimiter was the model's own end, as the embedded backend reports it, not a cut.
    out, _ = force([*thoughts(3), "</think>", " 5"], max_thinking_tokens=4)
    assert out.text == " t0 t1 t2</think>\nFinal answer: 5"
    assert out.trace.ended_by_model and not out.trace.cut and out.trace.thinking_tokens == 4


def test_the_token_grain_rules_count_and_cut() -> None:
    trace = ForcingTrace(BudgetForcing(min_thinking_tokens=2, max_thinking_tokens=3, max_waits=1))
    assert trace.end_attempt() == "Wait" and trace.phase == "thinking"
    assert trace.count() is None and trace.count() is None
    assert trace.room == 1
    assert trace.count() == "</think>\nFinal answer:" and trace.phase == "answering" and trace.cut


def test_split_thinking() -> None:
    forcing = BudgetForcing()
    assert split_thinking(" a b</think>\nFinal answer: 7", forcing) == (" a b", " 7")
    assert split_thinking("no end", forcing) == ("no end", "")
    assert split_thinking(None, forcing) == ("", "")
    assert split_thinking(" 7", BudgetForcing(max_thinking_tokens=0)) == ("", " 7")


# ---- configuration -----------------------------------------------------------------------------
def cfg(value) -> SamplingConfig:
    return SamplingConfig(model="m", backend="embedded", params={"budget_forcing": value}, label="c")


def test_the_parameter_forms() -> None:
    assert forcing_of(SamplingConfig(model="m")) is None
    assert forcing_of(cfg(False)) is None
    assert forcing_of(cfg(True)) == BudgetForcing()
    given = {"think_start": "<t>", "think_end": "</t>", "min_thinking_tokens": 4, "max_thinking_tokens": 32,
             "wait": " Wait,", "max_waits": 3, "answer_prefix": " A:"}  # fmt: skip
    assert forcing_of(cfg(given)) == BudgetForcing(**given)
    # the command line's key=value;key=value form; strings stay strings
    text = forcing_of(cfg("max_thinking_tokens=64;min_thinking_tokens=8;wait=Hmm;answer_prefix=7"))
    assert text == BudgetForcing(max_thinking_tokens=64, min_thinking_tokens=8, wait="Hmm", answer_prefix="7")


def test_the_command_line_form_goes_through_a_config_spec() -> None:
    from budgetlab.core.spec import parse_config

    config = parse_config("model=smollm2,max_tokens=8,budget_forcing=max_thinking_tokens=64;max_waits=1", "embedded")
    assert forcing_of(config) == BudgetForcing(max_thinking_tokens=64, max_waits=1)
    assert forcing_of(parse_config("model=smollm2,budget_forcing=true", "embedded")) == BudgetForcing()


@pytest.mark.parametrize(
    "value, words",
    [
        ({"max_thinking": 5}, ["no field 'max_thinking'", "max_thinking_tokens"]),
        ({"max_thinking_tokens": -1}, ["max_thinking_tokens=-1", "whole number >= 0"]),
        ({"max_waits": 1.5}, ["max_waits=1.5"]),
        ({"min_thinking_tokens": True}, ["min_thinking_tokens=True"]),
        ({"wait": 3}, ["wait=3", "must be a string"]),
        ({"min_thinking_tokens": 10, "max_thinking_tokens": 5}, ["min_thinking_tokens=10 exceeds max_thinking_tokens=5"]),
        ({"think_end": ""}, ["think_end must not be empty"]),
        ({"min_thinking_tokens": 3, "wait": ""}, ["wait must not be empty"]),
        ({"wait": "</think> Wait"}, ["contains think_end"]),
        (7, ["budget_forcing=7", "mapping"]),
        ("max_thinking_tokens", ["is not key=value"]),
    ],
)
def test_bad_values_are_one_line_input_errors(value, words) -> None:
    with pytest.raises(InputError) as err:
        forcing_of(cfg(value))
    message = str(err.value)
    assert "\n" not in message and "configuration 'c'" in message
    for word in words:
        assert word in message


def test_whole_numbers_written_as_floats_are_token_counts() -> None:
    from budgetlab.backends._forcing import BudgetForcing

    forcing = BudgetForcing.parse({"max_thinking_tokens": 1e3, "max_waits": 2.0}, "config m")
    assert forcing.max_thinking_tokens == 1000 and forcing.max_waits == 2
    with pytest.raises(InputError, match="must be a whole number >= 0"):
        BudgetForcing.parse({"max_thinking_tokens": 10.5}, "config m")


def test_a_start_delimiter_equal_to_the_end_one_is_refused() -> None:
    from budgetlab.backends._forcing import BudgetForcing

    with pytest.raises(InputError, match="think_start and think_end are both '<t>'; give two different delimiters"):
        BudgetForcing.parse({"think_start": "<t>", "think_end": "<t>"}, "m")
