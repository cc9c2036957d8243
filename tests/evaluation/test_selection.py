"""Best-arm identification, offline: every algorithm through one list, on synthetic score
matrices whose best method is known; plus the observations, the stop rule, the matrix
completion and the score-matrix readers.

To add an algorithm to the suite, add one entry to ``ALGORITHMS``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from budgetlab.errors import InputError
from budgetlab.evaluation import Observations, ScoreMatrix, identified, load_score_matrix
from budgetlab.evaluation.selection import ALGORITHMS as REGISTRY
from budgetlab.evaluation.selection import complete_matrix, make_algorithm, simulate

ALGORITHMS = [
    pytest.param("uniform", {}, id="uniform"),
    pytest.param("halving", {}, id="halving"),
    pytest.param("ucbe", {"a": 1.0}, id="ucbe"),
    pytest.param("ucbe", {"a": 0.5, "batch": 4}, id="ucbe-batch4"),
    pytest.param("ucbe-lrf", {}, id="ucbe-lrf"),
    pytest.param("ucbe-lrf", {"rank": 0}, id="ucbe-lrf-rank0"),
]

MEANS = np.array([0.30, 0.45, 0.50, 0.55, 0.58, 0.78])  # method 5 is best by a clear margin


def synthetic(seed: int = 0, n_examples: int = 300, missing: float = 0.0) -> ScoreMatrix:
    """0/1 scores with shared example difficulty (as real benchmarks have), so methods correlate."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 1.0, n_examples)
    logits = np.log(MEANS / (1 - MEANS))[:, None] - difficulty + difficulty.mean()
    values = (rng.random((len(MEANS), n_examples)) < 1 / (1 + np.exp(-logits))).astype(float)
    if missing:
        values[rng.random(values.shape) < missing] = np.nan
    return ScoreMatrix(values, [f"m{i}" for i in range(len(MEANS))], [f"e{j}" for j in range(n_examples)])


def test_every_algorithm_is_in_the_suite() -> None:
    assert set(REGISTRY) == {p.values[0] for p in ALGORITHMS}


@pytest.mark.parametrize("name,args", ALGORITHMS)
def test_names_the_known_best_within_budget(name: str, args: dict) -> None:
    matrix = synthetic()
    truth = matrix.methods[int(np.nanargmax(matrix.means()))]
    assert truth == "m5"
    budget = int(0.4 * matrix.available)
    hits = 0
    for seed in range(10):
        result = simulate(make_algorithm(name, args), matrix, budget, seed=seed)
        assert result.evaluations <= budget
        assert sum(r.evaluations for r in result.ranking) == result.evaluations
        assert {r.name for r in result.ranking} == set(matrix.methods)
        hits += result.best == truth
    assert hits >= 9


@pytest.mark.parametrize("name,args", ALGORITHMS)
def test_adaptive_algorithms_spend_more_on_the_contenders(name: str, args: dict) -> None:
    result = simulate(make_algorithm(name, args), synthetic(), 0.4, seed=1)
    spent = {r.name: r.evaluations for r in result.ranking}
    if name == "uniform":
        assert max(spent.values()) - min(spent.values()) <= 1
    else:
        assert spent["m5"] > spent["m0"]


@pytest.mark.parametrize("name,args", ALGORITHMS)
def test_never_evaluates_a_missing_cell_nor_a_cell_twice(name: str, args: dict) -> None:
    matrix = synthetic(missing=0.2, n_examples=60)
    algorithm = make_algorithm(name, args)
    obs = Observations(
        *matrix.shape, order=np.random.default_rng(0).permutation(60), available=~np.isnan(matrix.values)
    )
    while True:
        pulls = algorithm.propose(obs, 7)
        assert len(pulls) <= 7
        if not pulls:
            break
        for arm, example in pulls:
            assert not np.isnan(matrix.values[arm, example])
            obs.settle(arm, example, matrix.values[arm, example])
    assert (obs.taken <= 1).all()
    assert obs.used == (obs.taken > 0).sum()


@pytest.mark.parametrize("name,args", ALGORITHMS)
def test_stateless_same_observations_same_proposals(name: str, args: dict) -> None:
    matrix = synthetic(n_examples=80)

    def observed() -> Observations:
        obs = Observations(*matrix.shape, order=np.random.default_rng(3).permutation(80))
        rng = np.random.default_rng(5)
        for _ in range(60):
            arm, example = int(rng.integers(6)), int(rng.integers(80))
            if obs.taken[arm, example] == 0:
                obs.record(arm, example, matrix.values[arm, example])
        return obs

    first = make_algorithm(name, args).propose(observed(), 5)
    assert first == make_algorithm(name, args).propose(observed(), 5)


def test_halving_decisions_do_not_change_afterwards() -> None:
    """The survivors of a round are recomputed from each method's first evaluations only, so
    later evaluations never overturn an earlier elimination."""
    matrix = synthetic(seed=2)
    algorithm = make_algorithm("halving", {"budget": 600})
    obs = Observations(*matrix.shape, order=np.random.default_rng(0).permutation(300), budget=600)
    history = []
    while pulls := algorithm.propose(obs, 10):
        for arm, example in pulls:
            obs.settle(arm, example, matrix.values[arm, example])
        history.append(set(algorithm._plan(obs)[0]))
    assert all(later <= earlier for earlier, later in zip(history, history[1:]))
    assert len(history[-1]) == 1


def test_delta_stops_early_and_names_the_best() -> None:
    values = np.vstack([np.full(400, 0.1), np.full(400, 0.9), np.full(400, 0.5)])
    values += np.random.default_rng(0).normal(0, 0.05, values.shape)
    matrix = ScoreMatrix(values, ["a", "b", "c"], [str(j) for j in range(400)])
    for name, share in (("uniform", 0.2), ("halving", 0.5), ("ucbe", 1.0), ("ucbe-lrf", 1.0)):
        result = simulate(make_algorithm(name, {}), matrix, None, delta=0.05)
        assert result.best == "b"
        assert result.stopped_because == "best method identified with confidence 0.95"
        # UCB-E spends little on clear losers, so their paired comparisons with the leader
        # take longer to reach confidence than uniform allocation's.
        assert result.evaluations < share * matrix.available


def test_a_budget_spent_before_the_confidence_is_reached_says_so() -> None:
    values = np.vstack([np.full(400, 0.50), np.full(400, 0.51)]) + np.random.default_rng(0).normal(0, 0.3, (2, 400))
    matrix = ScoreMatrix(values, ["a", "b"], [str(j) for j in range(400)])
    result = simulate(make_algorithm("uniform", {}), matrix, 40, delta=0.05)
    assert result.stopped_because == "budget of 40 evaluations spent; the best method is not yet identified with confidence 0.95"
    assert "not yet identified" not in simulate(make_algorithm("uniform", {}), matrix, 40).stopped_because


def test_identified_refuses_with_too_little_evidence() -> None:
    obs = Observations(2, 10)
    assert not identified(obs, 0, 0.05)
    obs.record(0, 0, 1.0)
    obs.record(1, 0, 0.0)
    assert not identified(obs, 0, 0.05)  # one common example is no evidence
    with pytest.raises(InputError):
        identified(obs, 0, 1.5)


def test_checkpoints_record_the_choice_along_the_way() -> None:
    result = simulate(make_algorithm("ucbe", {}), synthetic(), 500, seed=0, checkpoints=[10, 100, 500, 10_000])
    assert set(result.checkpoints) == {10, 100, 500}
    assert result.checkpoints[500] == 5


def test_bernoulli_draws_need_probabilities() -> None:
    matrix = ScoreMatrix(np.array([[0.2, 2.0], [0.1, 0.3]]), ["a", "b"], ["x", "y"])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        simulate(make_algorithm("uniform", {}), matrix, 2, bernoulli=True)


def test_budget_as_fraction_or_count() -> None:
    matrix = synthetic(n_examples=50)
    assert simulate(make_algorithm("uniform", {}), matrix, 0.1).evaluations == 30
    assert simulate(make_algorithm("uniform", {}), matrix, 17).evaluations == 17
    with pytest.raises(InputError):
        simulate(make_algorithm("uniform", {}), matrix, -3)


def test_unknown_algorithm_and_bad_arguments() -> None:
    with pytest.raises(InputError, match="unknown selection algorithm"):
        make_algorithm("nope")
    with pytest.raises(InputError, match="does not take"):
        make_algorithm("ucbe", {"eta": 2})
    with pytest.raises(InputError, match="a > 0"):
        make_algorithm("ucbe", {"a": 0})


def test_complete_matrix_recovers_a_low_rank_matrix() -> None:
    rng = np.random.default_rng(0)
    truth = 0.5 + 0.2 * np.outer(rng.normal(size=20), rng.normal(size=100)) + rng.normal(0, 0.1, 20)[:, None]
    observed = truth.copy()
    hidden = rng.random(truth.shape) < 0.5
    observed[hidden] = np.nan
    pred = complete_matrix(observed, np.ones_like(truth), rank=1, reg=0.1, iters=30)
    baseline = np.nanmean(observed, axis=1)[:, None] + 0 * truth  # row means only
    assert np.abs(pred - truth)[hidden].mean() < 0.5 * np.abs(baseline - truth)[hidden].mean()


def test_score_matrix_checks_its_shape() -> None:
    with pytest.raises(InputError, match="methods x examples"):
        ScoreMatrix(np.zeros((2, 3)), ["a", "b"], ["x", "y"])
    with pytest.raises(InputError, match="at least 2 methods"):
        ScoreMatrix(np.zeros((1, 2)), ["a"], ["x", "y"])
    with pytest.raises(InputError, match="no score on any example"):
        ScoreMatrix(np.array([[1.0, 0.0], [np.nan, np.nan]]), ["a", "b"], ["x", "y"])


# ---- readers ---------------------------------------------------------------------------------
EXPECTED = np.array([[1.0, 0.5, 0.0], [0.25, np.nan, 0.75]])


def _check(matrix: ScoreMatrix) -> None:
    assert matrix.methods == ("a", "b")
    assert matrix.examples == ("x", "y", "z")
    np.testing.assert_array_equal(matrix.values, EXPECTED)


def test_reads_json_forms(tmp_path: Path) -> None:
    (tmp_path / "rows.json").write_text(
        json.dumps({"methods": ["a", "b"], "examples": ["x", "y", "z"], "scores": [[1, 0.5, 0], [0.25, None, 0.75]]})
    )
    _check(load_score_matrix(tmp_path / "rows.json"))
    nested = {"a": {"x": 1, "y": 0.5, "z": 0}, "b": {"x": 0.25, "z": 0.75}}
    with gzip.open(tmp_path / "nested.json.gz", "wt") as fh:
        json.dump(nested, fh)
    matrix = load_score_matrix(tmp_path / "nested.json.gz")
    _check(ScoreMatrix(matrix.values[:, [0, 1, 2]], matrix.methods, matrix.examples))


def test_reads_livecodebench_performances(tmp_path: Path) -> None:
    rows = [
        {"model": m, "question_id": q, "pass@1": v}
        for m, q, v in [("a", "x", 100), ("a", "y", 50), ("a", "z", 0), ("b", "x", 25), ("b", "z", 75)]
    ]
    (tmp_path / "perf.json").write_text(json.dumps({"performances": rows, "models": []}))
    _check(load_score_matrix(tmp_path / "perf.json"))


def test_reads_csv_wide_and_long(tmp_path: Path) -> None:
    (tmp_path / "wide.csv").write_text("method,x,y,z\na,1,0.5,0\nb,0.25,,0.75\n")
    _check(load_score_matrix(tmp_path / "wide.csv"))
    (tmp_path / "long.csv").write_text("method,example,score\na,x,1\na,y,0.5\na,z,0\nb,x,0.25\nb,z,0.75\n")
    _check(load_score_matrix(tmp_path / "long.csv"))


def test_reads_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", scores=EXPECTED, methods=np.array(["a", "b"]), examples=np.array(["x", "y", "z"]))
    _check(load_score_matrix(tmp_path / "m.npz"))


def test_reads_replay_counts_and_samples(tmp_path: Path) -> None:
    lines = [
        {"problem": "x", "config": "a", "n": 4, "correct": 4}, {"problem": "y", "config": "a", "n": 2, "correct": 1},
        {"problem": "z", "config": "a", "n": 3, "correct": 0}, {"problem": "x", "config": "b", "correct": True},
        {"problem": "x", "config": "b", "correct": False}, {"problem": "x", "config": "b", "correct": False},
        {"problem": "x", "config": "b", "correct": False}, {"problem": "z", "config": "b", "score": 0.75},
    ]  # fmt: skip
    (tmp_path / "rec.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    _check(load_score_matrix(tmp_path / "rec.jsonl"))


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("bad.csv", "method,x\na,high\n", "not a number"),
        ("bad.json", "{not json", "not valid JSON"),
        ("ragged.json", json.dumps({"scores": [[1, 2], [3]]}), "differ in length"),
        ("bad.txt", "1,2", "unknown extension"),
        ("short.csv", "method,x,y\na,1\n", "fields"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message) as info:
        load_score_matrix(tmp_path / name)
    assert "\n" not in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_score_matrix("/no/such/scores.csv")


# ---- bad arguments and budgets: one-line errors, never a traceback or a silent wrong answer ----
@pytest.mark.parametrize(
    "name,args,message",
    [
        ("ucbe", {"a": "abc"}, "a must be finite and a > 0"),
        ("ucbe-lrf", {"a": "abc"}, "a must be finite and a > 0"),
        ("ucbe", {"a": float("inf")}, "a must be finite"),
        ("ucbe", {"batch": "abc"}, "batch must be a whole number >= 1"),
        ("ucbe", {"batch": 1.5}, "batch must be a whole number >= 1"),
        ("ucbe", {"batch": 0}, "batch must be a whole number >= 1"),
        ("uniform", {"batch": "abc"}, "batch must be a whole number >= 1"),
        ("uniform", {"batch": 0}, "batch must be a whole number >= 1"),
        ("halving", {"batch": 0}, "batch must be a whole number >= 1"),
        ("halving", {"batch": -3}, "batch must be a whole number >= 1"),
        ("halving", {"budget": "abc"}, "budget must be a whole number >= 1"),
        ("ucbe-lrf", {"batch": 0}, "batch must be a whole number >= 1"),
        ("ucbe-lrf", {"reg": "abc"}, "reg must be finite and reg > 0"),
    ],
)
def test_algorithm_arguments_are_checked_alike(name: str, args: dict, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        make_algorithm(name, args)
    assert "\n" not in str(info.value) and "e.g." in str(info.value)


@pytest.mark.parametrize("budget", [float("nan"), float("inf"), 1.5, 2.5, 0.0, -1])
def test_a_budget_that_is_neither_a_count_nor_a_fraction_is_refused(budget: float) -> None:
    with pytest.raises(InputError, match=r"whole number of evaluations or a fraction in \(0, 1\]"):
        simulate(make_algorithm("uniform", {}), synthetic(n_examples=50), budget)


def test_a_budget_below_one_evaluation_per_method_is_refused() -> None:
    matrix = synthetic(n_examples=50)  # 6 methods
    with pytest.raises(InputError, match="cannot evaluate each of the 6 methods once.*at least 6"):
        simulate(make_algorithm("ucbe", {}), matrix, 3)
    result = simulate(make_algorithm("ucbe", {}), matrix, 6)
    assert all(r.evaluations == 1 for r in result.ranking)
    assert simulate(make_algorithm("uniform", {}), matrix, 1.0).evaluations == matrix.available  # 1.0: all of it


def test_one_evaluation_is_singular() -> None:
    with pytest.raises(InputError, match="a budget of 1 evaluation cannot"):
        simulate(make_algorithm("uniform", {}), synthetic(n_examples=50), 1)


def test_a_negative_seed_is_refused() -> None:
    with pytest.raises(InputError, match="seed must be a whole number >= 0"):
        simulate(make_algorithm("uniform", {}), synthetic(n_examples=50), 0.5, seed=-1)


def test_a_ranking_with_no_estimate_is_json_null() -> None:
    from budgetlab.evaluation import RankedMethod, SelectionResult

    result = SelectionResult("x", "a", (RankedMethod("a", 1.0, 1), RankedMethod("b", float("nan"), 0)), 1, 4, "")
    assert json.loads(json.dumps(result.to_dict()))["ranking"][1]["estimate"] is None


def test_duplicate_names_are_refused_by_the_matrix() -> None:
    with pytest.raises(InputError, match="method 'a' appears twice"):
        ScoreMatrix(np.zeros((2, 2)), ["a", "a"], ["x", "y"])
    with pytest.raises(InputError, match="example 'x' appears twice"):
        ScoreMatrix(np.zeros((2, 2)), ["a", "b"], ["x", "x"])


def test_long_csv_averages_the_rows_of_a_cell(tmp_path: Path) -> None:
    """Several rows of one (method, example) are its samples, averaged as in a replay file."""
    (tmp_path / "long.csv").write_text("method,example,score\nm1,a,1\nm1,a,0\nm1,a,\nm2,a,1\nm2,b,0\nm1,b,1\n")
    matrix = load_score_matrix(tmp_path / "long.csv")
    np.testing.assert_array_equal(matrix.values, [[0.5, 1.0], [1.0, 0.0]])


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("duprow.csv", "method,a,b\nm1,1,0\nm1,0,1\nm2,0,0\n", r"duprow.csv:3: method 'm1' has a row already"),
        ("dupcol.csv", "method,a,a\nm1,1,0\nm2,0,1\n", "dupcol.csv:1: example column 'a' appears twice"),
        ("dupjson.json", json.dumps({"methods": ["a", "a"], "scores": [[1, 0], [0, 1]]}), "method 'a' appears twice"),
        ("string.json", json.dumps({"methods": "ab", "scores": [[1, 0], [0, 1]]}), "'methods' must be a list of names"),
        ("short.json", json.dumps({"methods": ["a"], "scores": [[1, 0], [0, 1]]}), "'methods' names 1, but 'scores'"),
        ("perf.json", json.dumps({"performances": 5}), "'performances' must be a list"),
        ("one.csv", "method,a\nm1,1\n", "one.csv: a score matrix needs at least 2 methods"),
        ("other.csv", "model,question,score\nm1,a,1\n", "model,question,score is not recognised; a long CSV"),
        ("big.csv", "method,a\nm1,1e400\nm2,0\n", "score '1e400' is infinite"),
    ],
)
def test_more_bad_files_name_the_file_and_the_fix(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message) as info:
        load_score_matrix(tmp_path / name)
    assert str(tmp_path / name) in str(info.value) and "\n" not in str(info.value)


def test_a_directory_is_not_called_missing(tmp_path: Path) -> None:
    (tmp_path / "scores.csv").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        load_score_matrix(tmp_path / "scores.csv")
