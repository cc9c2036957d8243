"""Two configurations of one model (two temperatures) stay two rows in every report: a run gives
each a name that sets it apart, and runs stored without such names are told apart when read."""

from __future__ import annotations

import json

from budgetlab.core import SamplingConfig, with_distinct_names
from budgetlab.testing.faulty_server import FaultyServer


def test_configurations_sharing_a_name_are_labelled_by_what_sets_them_apart() -> None:
    cold = SamplingConfig("m", "openai", {"temperature": 0.2, "max_tokens": 8})
    hot = SamplingConfig("m", "openai", {"temperature": 1.0, "max_tokens": 8})
    plain = SamplingConfig("m", "openai", {"max_tokens": 8})
    other = SamplingConfig("n", "openai", {"temperature": 0.2})
    named = with_distinct_names([cold, hot, plain, other])
    assert [c.name for c in named] == ["m temperature=0.2", "m temperature=1.0", "m (defaults)", "n"]
    assert [c.id for c in named] == [c.id for c in (cold, hot, plain, other)]  # a run resumes by id
    assert named[3] is other


def test_only_a_template_differs_or_a_given_label_collides() -> None:
    a = SamplingConfig("m", template="Q: {question}")
    b = SamplingConfig("m", template="{question}\nA:")
    assert [c.name for c in with_distinct_names([a, b])] == ["m template='Q: {question}'", "m template='{question}\\nA:'"]
    long = SamplingConfig("m", template="Answer the question below in one word: {question}")
    assert [c.name for c in with_distinct_names([a, long])][1] == "m template='Answer the question...'"
    # One configuration sets max_tokens, three others differ by template only: each is named by its own difference.
    short = SamplingConfig("m", params={"max_tokens": 1})
    names = [c.name for c in with_distinct_names([short, a, b])]
    assert names == ["m max_tokens=1 no template", "m template='Q: {question}'", "m template='{question}\\nA:'"]
    same = SamplingConfig("m", params={"seed_offset": 1}, template="x")
    assert [c.name for c in with_distinct_names([same, SamplingConfig("m", params={"seed_offset": 1}, template="x", backend="b")])] == [
        "m backend=replay", "m backend=b"]
    taken = SamplingConfig("x", label="m temperature=1")
    c = SamplingConfig("m", params={"temperature": 1})
    d = SamplingConfig("m", params={"temperature": 2})
    names = [cfg.name for cfg in with_distinct_names([taken, c, d])]
    assert len(set(names)) == 3


def test_a_run_of_one_model_at_two_temperatures_reports_both(tmp_path, capsys) -> None:
    from budgetlab.cli._main import main

    with FaultyServer(models=["echo"]) as server:
        rc = main(["run", "--backend", f"openai:{server.url}", "--config", "model=echo,temperature=0.2",
                   "--config", "model=echo,temperature=1.0", "--task", "arithmetic:n=4", "-k", "2",
                   "--store", str(tmp_path / "s.db"), "--no-progress", "--json"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert rc in (0, 1)
    assert sorted(report["configs"]) == ["echo temperature=0.2", "echo temperature=1.0"]
    assert all(entry["samples"] + entry["failed"] == 8 for entry in report["configs"].values())
