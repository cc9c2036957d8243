"""Informative-subset selection: every method through one list on a synthetic evaluation set,
the IRT fit's recovery of known parameters, cost-aware selection, and the reader.

To add a method to the suite, add one entry to ``METHODS``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from budgetlab.errors import InputError
from budgetlab.evaluation.subset import SUBSET_METHODS as REGISTRY
from budgetlab.evaluation.subset import (
    Item,
    ItemSet,
    choose,
    choose_on_other_sets,
    expected_discordant_pairs,
    fisher_information,
    fit_2pl,
    load_items,
    make_subset_method,
    rank_agreement,
    select_under_budget,
    signed_variance,
    similarity,
)

METHODS = [
    pytest.param("random", {}, id="random"),
    pytest.param("variance", {}, id="variance"),
    pytest.param("variance", {"metric": "bleu"}, id="variance-bleu"),
    pytest.param("agreement", {}, id="agreement"),
    pytest.param("consistency", {}, id="consistency-set"),
    pytest.param("consistency", {"mode": "item"}, id="consistency-item"),
    pytest.param("diversity", {}, id="diversity"),
    pytest.param("diversity", {"kind": "char"}, id="diversity-char"),
    pytest.param("irt", {}, id="irt"),
    pytest.param("irt", {"binarize": False}, id="irt-soft"),
    pytest.param("separation", {}, id="separation"),
    pytest.param("combined", {}, id="combined"),
    pytest.param("combined", {"methods": "variance+diversity+consistency"}, id="combined-three"),
]
SYSTEMS = ("s0", "s1", "s2", "s3", "s4")


def synthetic(n_items: int = 120, seed: int = 0) -> ItemSet:
    """Systems of increasing quality; a human score and a noisy metric (correlated at ~0.7 per item)."""
    rng = np.random.default_rng(seed)
    quality = np.linspace(0, 1, len(SYSTEMS))
    items = []
    for i in range(n_items):
        difficulty = rng.normal()
        spread = rng.gamma(2.0, 0.5)  # how much this item separates systems
        scores, tgt = {}, {}
        for s, q in zip(SYSTEMS, quality):
            human = spread * q - difficulty + rng.normal(0, 0.5)
            scores[s] = {"human_overall": human, "bleu": human + rng.normal(0, 0.7), "ter": -human + rng.normal(0, 1.0)}
            words = [f"w{int(x)}" for x in rng.integers(0, max(2, int(10 * spread)), 8)]
            tgt[s] = " ".join(words)
        items.append(
            Item(id=str(i), src=f"source {i}", ref="ref", tgt=tgt, scores=scores, cost=float(rng.integers(1, 10)))
        )
    return ItemSet(items, name="synthetic")


def test_every_method_is_in_the_suite() -> None:
    assert set(REGISTRY) == {p.values[0] for p in METHODS}


@pytest.mark.parametrize("name,args", METHODS)
def test_order_is_a_permutation_and_size_is_respected(name: str, args: dict) -> None:
    data = synthetic()
    method = make_subset_method(name, args)
    order = method.order(data, 30, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(len(data)))
    chosen = choose(data, method, size=0.25, seed=1)
    assert len(chosen) == 30 and len(set(chosen.tolist())) == 30
    assert len(choose(data, method, size=7)) == 7
    # Seeded: the same seed chooses the same items.
    assert choose(data, method, size=0.25, seed=1).tolist() == chosen.tolist()


@pytest.mark.parametrize("name,args", METHODS)
def test_cost_aware_selection_fits_the_budget(name: str, args: dict) -> None:
    data = synthetic()
    chosen = choose(data, make_subset_method(name, args), cost_budget=100.0)
    assert data.costs()[chosen].sum() <= 100.0
    assert len(chosen) >= 10  # costs are 1..9: a budget of 100 buys at least 11 items


@pytest.mark.parametrize("name,args", [p for p in METHODS if p.values[0] != "random"])
def test_informative_methods_beat_chance_on_their_own_signal(name: str, args: dict) -> None:
    """On data built so that informative items separate systems, every method's 20% subset
    ranks the systems at least as well as random subsets do on average."""
    data = synthetic(seed=3)
    human = data.human()
    method = make_subset_method(name, args)
    ours = np.mean([rank_agreement(human, choose(data, method, size=0.2, seed=s))[1] for s in range(5)])
    chance = np.mean(
        [rank_agreement(human, choose(data, make_subset_method("random"), size=0.2, seed=s))[1] for s in range(30)]
    )
    assert ours >= chance - 0.1


def test_variance_prefers_items_that_separate_systems() -> None:
    data = synthetic()
    u = make_subset_method("variance", {"metric": "bleu"}).utilities(data)
    spread = np.nanstd(data.human(), axis=1)
    assert np.corrcoef(u, spread)[0, 1] > 0.5


def test_signed_variance_counts_gaps_against_the_set_as_negative() -> None:
    # Three systems ranked a < b < c by the other items; item 0 agrees, item 1 reverses c and b.
    scores = np.array([[0.0, 1.0, 2.0], [0.0, 2.0, 1.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [5.0, 5.0, 5.0]])
    signed = signed_variance(scores)
    assert signed[0] == pytest.approx((1 + 4 + 1) / 3)
    assert signed[1] == pytest.approx((4 + 1 - 1) / 3)
    assert signed[4] == 0.0  # ties every pair
    # Absent systems leave their pairs out; an item with one system present has no pair.
    gappy = scores.copy()
    gappy[0, 2], gappy[1, 1:] = np.nan, np.nan
    assert signed_variance(gappy)[0] == pytest.approx(1.0) and signed_variance(gappy)[1] == 0.0


def test_signed_variance_is_the_same_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import budgetlab.evaluation.subset._agreement as agreement

    scores = synthetic().metric("bleu")
    whole = signed_variance(scores)
    monkeypatch.setattr(agreement, "_CHUNK_CELLS", 7)
    np.testing.assert_allclose(signed_variance(scores), whole)


def test_agreement_puts_agreeing_items_first_then_the_rest_by_variance() -> None:
    data = synthetic()
    method = make_subset_method("agreement", {"metric": "bleu"})
    signed = signed_variance(data.metric("bleu"))
    order = method.order(data, len(data), np.random.default_rng(0))
    agreeing = int((signed > 0).sum())
    assert 0 < agreeing < len(data)
    assert (signed[order[:agreeing]] > 0).all()
    assert np.all(np.diff(signed[order[:agreeing]]) <= 0)
    variance = np.nanvar(data.metric("bleu"), axis=1)
    assert np.all(np.diff(variance[order[agreeing:]]) <= 0)


def test_auto_metric_combines_metrics_with_their_direction() -> None:
    data = synthetic()
    auto, human = data.metric("auto"), data.human()
    # TER is lower-is-better: the combination must still correlate positively with the human score.
    assert np.corrcoef(auto.ravel(), human.ravel())[0, 1] > 0.6
    assert data.human_keys == ("human_overall",) and set(data.metric_keys) == {"bleu", "ter"}


# ---- IRT ---------------------------------------------------------------------------------------
def test_2pl_fit_recovers_synthetic_parameters() -> None:
    rng = np.random.default_rng(0)
    theta = rng.normal(0, 1, 80)
    a = np.exp(rng.normal(0, 0.3, 250))
    b = rng.normal(0, 1, 250)
    p = 1 / (1 + np.exp(-a * (theta[:, None] - b)))
    responses = (rng.random(p.shape) < p).astype(float)
    responses[rng.random(p.shape) < 0.1] = np.nan  # some missing responses
    fit = fit_2pl(responses)
    assert np.corrcoef(fit.ability, theta)[0, 1] > 0.95
    assert np.corrcoef(fit.difficulty, b)[0, 1] > 0.9
    assert np.corrcoef(fit.discrimination, a)[0, 1] > 0.5
    # Fisher information peaks for items whose difficulty is near the subjects' abilities.
    info = fisher_information(fit)
    assert np.corrcoef(info, -np.abs(fit.difficulty - fit.ability.mean()))[0, 1] > 0.3


def test_irt_keeps_a_pass_fail_metric_that_mostly_fails() -> None:
    """Median 0: splitting at ">= median" would make every response a success and leave the
    2PL fit nothing to learn; the pass/fail responses must reach the fit unchanged."""
    rng = np.random.default_rng(0)
    passed = (rng.random((40, 4)) < np.array([0.1, 0.2, 0.3, 0.45])).astype(float)  # items x systems
    items = [Item(id=str(i), scores={f"s{j}": {"pass": passed[i, j]} for j in range(4)}) for i in range(40)]
    fitted = make_subset_method("irt", {"metric": "pass"}).fit(ItemSet(items))
    assert np.all(np.diff(fitted.ability) > 0)  # the systems' pass rates, in order


def test_irt_keeps_a_pass_rate_over_few_samples_graded() -> None:
    """A pass rate over 3 samples, mostly 0: split at its median it would say "passed at least
    once", which ranks a system that passes 1 in 3 on most items (mean 0.23) above one that
    passes steadily on 60% of them; the graded responses keep the rates."""
    from budgetlab.evaluation.subset._irt import FEW_LEVELS, responses

    rng = np.random.default_rng(0)
    steady = [np.where(rng.random(200) < share, 1.0, 0.0) for share in (0.2, 0.4, 0.6)]
    rare = np.where(rng.random(200) < 0.7, 1 / 3, 0.0)
    rate = np.column_stack([*steady, rare])  # items x systems
    items = [Item(id=str(i), scores={f"s{j}": {"rate": rate[i, j]} for j in range(4)}) for i in range(200)]
    data = ItemSet(items)
    np.testing.assert_allclose(responses(rate.T), rate.T)  # few levels: kept as they are
    graded = make_subset_method("irt", {"metric": "rate"}).fit(data).ability
    split = make_subset_method("irt", {"metric": "rate", "binarize": True}).fit(data).ability
    assert graded[3] < graded[2] and split[3] > split[2]
    continuous = rng.normal(size=(5, 40))
    assert len(np.unique(continuous)) > FEW_LEVELS
    assert set(np.unique(responses(continuous))) == {0.0, 1.0}  # many levels: split at the median
    with pytest.raises(InputError, match="binarize must be true, false or auto"):
        make_subset_method("irt", {"binarize": "median"})


def test_2pl_rejects_responses_outside_zero_one() -> None:
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        fit_2pl(np.array([[0.0, 2.0], [1.0, 0.0]]))


# ---- rank separation -----------------------------------------------------------------------------
def test_expected_discordant_pairs() -> None:
    ability = np.array([-3.0, 0.0, 0.6, 3.0])
    none = expected_discordant_pairs(ability, np.zeros(4))
    much = expected_discordant_pairs(ability, np.full(4, 100.0))
    assert 0 < much < none < 6 / 2  # fewer than half the pairs wrong even knowing nothing
    # Information on the close pair (systems 1 and 2) helps more than on the far ones, whose
    # order is clear already.
    on_close = expected_discordant_pairs(ability, np.array([0.0, 10.0, 10.0, 0.0]))
    on_far = expected_discordant_pairs(ability, np.array([10.0, 0.0, 0.0, 10.0]))
    assert on_close < on_far
    batch = expected_discordant_pairs(ability, np.stack([np.zeros(4), np.full(4, 100.0)]))
    assert batch.tolist() == pytest.approx([none, much])


def test_separation_leaves_fewer_pairs_in_doubt_than_summed_information() -> None:
    """Under the fitted model, the items separation picks leave fewer system pairs expected in
    the wrong order than the same number of items with the most summed Fisher information."""
    data = synthetic(seed=5)
    method = make_subset_method("separation")
    params = method.fit(data)
    p = params.probability()
    info = (params.discrimination**2 * p * (1 - p)).T  # items x systems
    for k in (5, 12, 30):
        ours = method.order(data, k, np.random.default_rng(0))[:k]
        top = make_subset_method("irt").order(data, k, np.random.default_rng(0))[:k]
        mine = expected_discordant_pairs(params.ability, info[ours].sum(axis=0))
        theirs = expected_discordant_pairs(params.ability, info[top].sum(axis=0))
        assert mine <= theirs + 1e-9


def test_subsets_keep_the_mix_of_systems_per_item() -> None:
    """When some systems are on a fifth of the items only, a subset chosen by utility still
    holds about a fifth of those items, whatever the utility prefers."""
    rng = np.random.default_rng(1)
    items = []
    for i in range(100):
        on = ("a", "b") if i < 20 else ("b", "c")
        # Items with system "a" would all win on variance: the subset would have no "c" at all.
        spread = 3.0 if i < 20 else 1.0
        scores = {s: {"human": rng.normal(), "bleu": spread * rng.normal()} for s in on}
        items.append(Item(id=str(i), scores=scores, tgt={s: "x" for s in on}))
    data = ItemSet(items, "patterns")
    assert sorted(np.bincount(data.presence()).tolist()) == [20, 80]
    for name in ("variance", "irt", "separation", "diversity"):
        chosen = choose(data, make_subset_method(name), size=0.2, seed=0)
        assert 3 <= int(np.sum(chosen < 20)) <= 5, name


# ---- cost-aware ----------------------------------------------------------------------------------
def test_knapsack_finds_the_best_set() -> None:
    # Rank-normalized values 1/3, 2/3, 1 at costs 1, 2, 2: under budget 4 the best set is
    # {1, 2} (value 5/3), better than {0, 2} (4/3) or {0, 1} (1).
    utilities = np.array([1.0, 2.0, 3.0])
    costs = np.array([1.0, 2.0, 2.0])
    chosen = select_under_budget(utilities, costs, 4.0)
    assert sorted(chosen.tolist()) == [1, 2]
    assert select_under_budget(utilities, costs, 0.5).tolist() == []
    with pytest.raises(InputError):
        select_under_budget(utilities, np.array([1.0, 0.0, 1.0]), 3.0)


def test_similarity() -> None:
    assert similarity("a b c", "a b c") == 1.0
    assert similarity("a b", "c d") == 0.0
    assert 0 < similarity("the cat sat", "the cat ran", "char") < 1


# ---- reader ---------------------------------------------------------------------------------------
def _line(i: int, **extra) -> str:
    return json.dumps({"i": i, "src": "s", "ref": "r", "tgt": {"a": "x y", "b": "x z"},
                       "scores": {"a": {"human": 1.0, "bleu": 0.5}, "b": {"human": 0.0, "bleu": 0.2}}, **extra})  # fmt: skip


def test_reads_gzipped_sets(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(_line(i) for i in range(5)) + "\n")
    data = load_items(path)
    assert len(data) == 5 and data.systems == ("a", "b") and data.name == "set"
    assert data.human().shape == (5, 2)


@pytest.mark.parametrize(
    "text,message",
    [
        ("{nope\n", "not valid JSON"),
        ('{"i": 1, "scores": {}}\n', "'scores' must be"),
        ('{"i": 1, "scores": {"a": {"m": "high"}}}\n', "not a number"),
        (_line(1) + "\n" + _line(1) + "\n", "appears twice"),
        (_line(1, cost=-2) + "\n", "'cost' must be"),
        ("[1, 2]\n", "expected a JSON object"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        load_items(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_set_and_bad_method() -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_items("/no/such/set.jsonl")
    with pytest.raises(InputError, match="unknown subset method"):
        make_subset_method("oracle")
    with pytest.raises(InputError, match="does not take"):
        make_subset_method("variance", {"k": 3})


def test_metric_methods_need_a_metric() -> None:
    items = [
        Item(id=str(i), tgt={"a": "x", "b": "y"}, scores={"a": {"quality": 1.0}, "b": {"quality": 2.0}})
        for i in range(4)
    ]
    data = ItemSet(items, "humans-only")
    with pytest.raises(InputError, match="no automatic metric"):
        choose(data, make_subset_method("variance"), size=2)
    assert len(choose(data, make_subset_method("diversity"), size=2)) == 2


def test_choose_on_other_sets_never_reads_the_held_out_set() -> None:
    scores = {
        "steady": {"a": 0.9, "b": 0.9, "c": 0.9},
        "flaky": {"a": 1.0, "b": 1.0, "c": 0.5},  # best on a and b, poor on c
    }
    choices = {c.held_out: c for c in choose_on_other_sets(scores)}
    # Held out c: flaky has the better record elsewhere, so it is chosen and scores its 0.5.
    assert choices["c"].chosen == ("flaky",) and choices["c"].score == pytest.approx(0.5)
    assert choices["c"].record == pytest.approx(1.0)
    assert choices["a"].chosen == ("steady",) and choices["a"].score == pytest.approx(0.9)
    # Changing the held-out set's own scores changes its score, never its choice.
    scores["flaky"]["c"] = 0.0
    assert {c.held_out: c.chosen for c in choose_on_other_sets(scores)}["c"] == ("flaky",)


def test_choose_on_other_sets_averages_ties_and_checks_its_input() -> None:
    scores = {"x": {"a": 1.0, "b": 0.2}, "y": {"a": 1.0, "b": 0.6}, "z": {"a": 0.1, "b": 0.9}}
    b = next(c for c in choose_on_other_sets(scores) if c.held_out == "b")
    assert b.chosen == ("x", "y") and b.score == pytest.approx(0.4)  # level on "a": their mean on "b"
    with pytest.raises(InputError, match="same sets"):
        choose_on_other_sets({"x": {"a": 1.0, "b": 1.0}, "y": {"a": 1.0}})
    with pytest.raises(InputError, match="at least 2 sets"):
        choose_on_other_sets({"x": {"a": 1.0}})
    with pytest.raises(InputError, match="NaN"):
        choose_on_other_sets({"x": {"a": 1.0, "b": float("nan")}})
    with pytest.raises(InputError, match="at least one method"):
        choose_on_other_sets({})


# ---- bad values: refused at load time, naming file, line, system and key -------------------------
@pytest.mark.parametrize(
    "text,message",
    [
        ('{"i": 1, "scores": {"a": {"human": Infinity, "bleu": 1}, "b": {"human": 1, "bleu": 0}}}\n',
         r":1: score 'human' of system 'a' is not finite: inf"),
        ('{"i": 1, "scores": {"a": {"bleu": NaN}, "b": {"bleu": 1}}}\n', r":1: score 'bleu' of system 'a' is not fin"),
        ('{"i": 1, "scores": {"a": {"bleu": 1}}, "cost": NaN}\n', r":1: field 'cost' must be a positive finite number"),
        ('{"i": 1, "scores": {"a": {"bleu": 1}}, "cost": Infinity}\n', r":1: field 'cost' must be a positive finite"),
    ],
)  # fmt: skip
def test_non_finite_values_are_refused_where_they_are(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        load_items(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_reads_a_gz_suffix_in_any_case(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl.GZ"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(_line(i) for i in range(3)) + "\n")
    assert len(load_items(path)) == 3


def test_a_directory_is_not_called_missing_set(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        load_items(tmp_path)


def test_a_key_declared_human_is_never_a_metric(tmp_path: Path) -> None:
    """``rating`` is not named like a human score; declared human (as --human does), it leaves the metrics."""
    path = tmp_path / "set.jsonl"
    path.write_text(
        "".join(json.dumps({"i": i, "scores": {"a": {"rating": 1.0, "bleu": 0.5}, "b": {"bleu": 0.1}}}) + "\n"
                for i in range(3))
    )  # fmt: skip
    assert load_items(path).metric_keys == ("rating", "bleu")
    data = load_items(path, human="rating")
    assert data.human_keys == ("rating",) and data.metric_keys == ("bleu",)
    bleu = data.matrix("bleu")
    np.testing.assert_allclose(data.metric("auto"), (bleu - np.nanmean(bleu)) / np.nanstd(bleu))
    from budgetlab.evaluation import metric_controls

    assert metric_controls(data).shape == (3, 2, 1)


def test_no_human_score_names_what_counts_as_one() -> None:
    items = [Item(id=str(i), scores={"a": {"rating": 1.0}, "b": {"rating": 2.0}}) for i in range(3)]
    with pytest.raises(InputError, match="starts with 'human'.*it has: rating.*--human KEY"):
        ItemSet(items, name="x").human()


@pytest.mark.parametrize("size", [float("nan"), float("inf"), 1.5, -1, 0])
def test_a_size_that_is_neither_a_count_nor_a_fraction_is_refused(size: float) -> None:
    with pytest.raises(InputError, match=r"whole count of items or a fraction in \(0, 1\]"):
        choose(synthetic(), make_subset_method("random"), size=size)


def test_a_negative_seed_is_refused() -> None:
    with pytest.raises(InputError, match="seed must be a whole number >= 0"):
        choose(synthetic(), make_subset_method("random"), size=0.25, seed=-1)


def test_a_cost_budget_below_the_cheapest_item_or_infinite_is_refused() -> None:
    data = synthetic()  # costs 1..9
    with pytest.raises(InputError, match=r"no item fits a cost budget of 0.5; the cheapest, '\d+', costs 1 \(its 'c"):
        choose(data, make_subset_method("random"), cost_budget=0.5)
    for bad in (float("inf"), float("nan"), -1.0):
        with pytest.raises(InputError, match="the cost budget must be a positive finite number"):
            choose(data, make_subset_method("random"), cost_budget=bad)
    with pytest.raises(InputError, match="item 1's is nan"):
        select_under_budget(np.ones(3), np.array([1.0, np.nan, 1.0]), 3.0)


def test_rank_agreement_warns_nothing_for_a_system_never_rated() -> None:
    import warnings

    target = np.array([[np.nan, 1.0, 3.0], [np.nan, 2.0, 4.0], [np.nan, 3.0, 5.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rho, _ = rank_agreement(target, np.array([0, 1]))
    assert rho == pytest.approx(1.0)


def test_combined_places_each_item_by_its_mean_place_in_the_members_orders() -> None:
    data = synthetic(seed=5)
    n = len(data)
    places, rng = np.zeros(n), np.random.default_rng(0)  # the members break ties with the same generator
    for member in ("variance", "diversity"):
        places[make_subset_method(member).order(data, n, rng)] += np.arange(n)
    combined = make_subset_method("combined", {"methods": "variance+diversity"}).order(data, n, np.random.default_rng(0))
    # Without strata (every item has every system) the order is by mean place, best first.
    assert np.all(np.diff(places[combined]) >= 0)
    # An item first in both orders comes first.
    assert places[combined[0]] == places.min()


@pytest.mark.parametrize(
    "methods,message",
    [
        ("irt", "two or more methods"),
        ("irt+", "two or more methods"),
        ("irt+oracle", "cannot use 'oracle'"),
        ("irt+combined", "cannot use 'combined'"),
        ("irt+irt", "lists a method twice"),
    ],
)
def test_combined_refuses_a_bad_list_of_methods_when_made(methods: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_subset_method("combined", {"methods": methods})


def test_combined_with_a_metric_method_needs_a_metric() -> None:
    items = [
        Item(id=str(i), tgt={"a": f"x{i}", "b": "y"}, scores={"a": {"quality": 1.0}, "b": {"quality": 2.0}})
        for i in range(4)
    ]
    data = ItemSet(items, "humans-only")
    with pytest.raises(InputError, match="no automatic metric"):
        choose(data, make_subset_method("combined"), size=2)


def _lucky_subset_set(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Human scores, one cheap score that tracks them, and a rated subset of hard items: four
    systems one step apart; items differ a lot in difficulty, which both scores see."""
    rng = np.random.default_rng(seed)
    n, quality = 200, np.array([0.0, 0.5, 1.0, 1.5])
    difficulty = rng.normal(0, 3, n)
    human = quality + difficulty[:, None] + rng.normal(0, 0.3, (n, 4))
    cheap = human + rng.normal(0, 0.3, (n, 4))
    return human, cheap[:, :, None], np.argsort(difficulty)[:20]


def test_rated_means_with_controls_correct_for_which_items_were_rated() -> None:
    from budgetlab.evaluation.subset import rated_means

    human, controls, _ = _lucky_subset_set()
    # Each system rated on its own 12 items: the plain means follow the luck of those items.
    rows = np.arange(48)
    rated = np.full(human.shape, np.nan)
    for j in range(4):
        rated[j * 12 : (j + 1) * 12, j] = human[j * 12 : (j + 1) * 12, j]
    truth = human.mean(axis=0)
    plain = rated_means(rated, rows)
    estimated = rated_means(rated, rows, controls)
    assert np.abs(estimated - truth).max() < 0.3 < np.abs(plain - truth).max()
    assert list(np.argsort(estimated)) == [0, 1, 2, 3]


def test_rank_agreement_reads_the_subset_with_controls_when_given() -> None:
    human, controls, hard = _lucky_subset_set(seed=3)
    rho, tau = rank_agreement(human, hard, controls)
    assert (rho, tau) == pytest.approx((1.0, 1.0))
    assert rank_agreement(human, hard) == rank_agreement(human, hard, None)


def test_rated_means_fall_back_to_plain_means_where_control_variates_cannot_be_made() -> None:
    from budgetlab.errors import InvalidArgument
    from budgetlab.evaluation.subset import rated_means

    human, controls, _ = _lucky_subset_set()
    two_items = np.array([0, 1])  # two ratings per system: too few for the regression
    assert rated_means(human, two_items, controls) == pytest.approx(human[:2].mean(axis=0))
    with pytest.raises(InvalidArgument, match="at least 3"):
        rated_means(human, two_items, controls, fallback=False)
    assert rated_means(human, two_items, controls[:, :, :0]) == pytest.approx(human[:2].mean(axis=0))
