"""Control variates: unbiasedness and interval coverage by simulation, the variance reduction
that the correlation promises, and the budget split."""

from __future__ import annotations

import numpy as np
import pytest

from budgetlab.errors import InputError
from budgetlab.evaluation import (
    TEXT_STATISTICS,
    cheap_controls,
    control_variate_mean,
    metric_controls,
    optimal_split,
    plain_mean,
    pooled_control_variate_means,
    pooled_held_out_correlation,
    pooled_plain_means,
    pooled_regression_r2,
    text_statistics,
)
from budgetlab.evaluation.subset import Item, ItemSet


def population(n_items: int = 2000, rho: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Costly scores and a cheap score correlated with them at about ``rho`` (skewed, not normal)."""
    rng = np.random.default_rng(seed)
    cheap = rng.gamma(2.0, 1.0, n_items)
    costly = rho * (cheap - cheap.mean()) / cheap.std() + np.sqrt(1 - rho**2) * rng.normal(size=n_items) + 3.0
    return costly, cheap


def _draws(costly: np.ndarray, cheap: np.ndarray, n: int, reps: int, seed: int, m: int | None = None):
    rng = np.random.default_rng(seed)
    N = len(costly)
    for _ in range(reps):
        scored = rng.permutation(N)[: m or N]
        labelled = scored[:n]
        y = np.full(N, np.nan)
        y[labelled] = costly[labelled]
        c = np.full(N, np.nan)
        c[scored] = cheap[scored]
        yield y, c


@pytest.mark.parametrize("n", [10, 40])
def test_unbiased_and_covers_at_the_nominal_rate(n: int) -> None:
    costly, cheap = population()
    truth = costly.mean()
    estimates, covered, plain_estimates, plain_covered = [], 0, [], 0
    reps = 2000
    for y, c in _draws(costly, cheap, n, reps, seed=n):
        est = control_variate_mean(y, c)
        estimates.append(est.mean)
        covered += est.lo <= truth <= est.hi
        plain = plain_mean(y)
        plain_estimates.append(plain.mean)
        plain_covered += plain.lo <= truth <= plain.hi
    estimates = np.array(estimates)
    # Unbiased: the mean of the estimates is within 4 Monte-Carlo standard errors of the truth.
    assert abs(estimates.mean() - truth) < 4 * estimates.std() / np.sqrt(reps)
    assert 0.925 <= covered / reps <= 0.97
    assert 0.925 <= plain_covered / reps <= 0.97
    # Variance falls by about rho^2 = 0.64.
    assert estimates.var() < 0.55 * np.var(plain_estimates)


def test_two_phase_cheap_scores_on_part_of_the_items() -> None:
    costly, cheap = population(seed=1)
    truth = costly.mean()
    covered, widths = 0, []
    reps = 1500
    for y, c in _draws(costly, cheap, 30, reps, seed=7, m=300):
        est = control_variate_mean(y, c)
        assert est.labels == 30 and est.cheap == 300
        covered += est.lo <= truth <= est.hi
        widths.append(est.width)
    assert 0.925 <= covered / reps <= 0.97


def test_several_controls() -> None:
    costly, cheap = population(seed=2)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=len(cheap))
    y = np.full(len(costly), np.nan)
    y[:50] = costly[:50]
    est = control_variate_mean(y, np.column_stack([cheap, noise]))
    assert len(est.beta) == 2 and est.rho is None
    assert abs(est.beta[1]) < abs(est.beta[0])


def test_uncorrelated_cheap_score_costs_little() -> None:
    rng = np.random.default_rng(3)
    costly, cheap = rng.normal(size=2000), rng.normal(size=2000)
    cv, plain = [], []
    for y, c in _draws(costly, cheap, 40, 500, seed=3):
        cv.append(control_variate_mean(y, c).width)
        plain.append(plain_mean(y).width)
    assert np.mean(cv) < 1.05 * np.mean(plain)


def test_input_checks() -> None:
    y = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    with pytest.raises(InputError, match="cheap score too"):
        control_variate_mean(y, np.array([1.0, np.nan, 3.0, 4.0, 5.0]))
    with pytest.raises(InputError, match="at least 4"):
        control_variate_mean(np.array([1.0, 2.0, np.nan]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(InputError, match="at least 2"):
        plain_mean(np.array([1.0, np.nan]))


def test_optimal_split() -> None:
    # No correlation: every unit of budget goes to costly labels.
    split = optimal_split(1000, 10, 0.1, 0.0)
    assert (split.costly, split.cheap, split.variance_ratio) == (100, 0, 1.0)
    # Strong correlation and cheap scores 100x cheaper: many more cheap scores, large saving.
    split = optimal_split(1000, 10, 0.1, 0.9)
    ratio = np.sqrt(0.81 / 0.19 * 100)
    assert split.cheap / split.costly == pytest.approx(ratio, rel=0.05)
    assert split.costly * 10 + split.cheap * 0.1 <= 1000
    assert split.saving > 0.6
    # Capped by the items available: the leftover buys costly labels.
    capped = optimal_split(1000, 10, 0.1, 0.9, n_items=200)
    assert capped.cheap == 200 and capped.costly == 98
    with pytest.raises(InputError):
        optimal_split(1000, 10, 0.1, 1.5)


def systems_population(
    n_items: int = 400, n_systems: int = 8, n_metrics: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Costly scores (items x systems) with an item difficulty shared by the systems, and cheap
    metrics (items x systems x metrics) that each see the costly score through their own noise:
    together they explain more than any one of them."""
    rng = np.random.default_rng(seed)
    level = np.linspace(-1, 1, n_systems)
    difficulty = rng.normal(size=(n_items, 1))
    quality = rng.gamma(2.0, 0.5, size=(n_items, n_systems))  # skewed, not normal
    costly = level + 0.7 * difficulty + quality + 0.6 * rng.normal(size=(n_items, n_systems))
    # Each metric sees the output's quality and a little of the item's difficulty.
    cheap = quality[:, :, None] + 0.3 * difficulty[:, :, None] + 0.8 * rng.normal(size=(n_items, n_systems, n_metrics))
    return costly, cheap


def _label(costly: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    y = np.full_like(costly, np.nan)
    rows = rng.permutation(len(costly))[:n]
    y[rows] = costly[rows]
    return y


@pytest.mark.parametrize("pool_variance", [True, False])
def test_pooled_means_are_unbiased_cover_and_beat_one_control(
    pool_variance: bool,
) -> None:
    costly, cheap = systems_population()
    truth = costly.mean(axis=0)
    rng = np.random.default_rng(1)
    errors, hits, widths, single_widths, plain_widths = [], [], [], [], []
    reps = 300
    for _ in range(reps):
        y = _label(costly, 30, rng)
        ests = pooled_control_variate_means(y, cheap, pool_variance=pool_variance)
        errors.append([e.mean - t for e, t in zip(ests, truth)])
        hits.append([e.lo <= t <= e.hi for e, t in zip(ests, truth)])
        widths.append(np.mean([e.width for e in ests]))
        single_widths.append(np.mean([control_variate_mean(y[:, j], cheap[:, j, 0]).width for j in range(8)]))
        plain_widths.append(np.mean([plain_mean(y[:, j]).width for j in range(8)]))
    errors = np.array(errors)
    # Unbiased for every system: mean error within 4 Monte-Carlo standard errors of 0.
    assert (np.abs(errors.mean(axis=0)) < 4 * errors.std(axis=0) / np.sqrt(reps)).all()
    assert 0.925 <= np.mean(hits) <= 0.975
    assert np.mean(hits, axis=0).min() >= 0.88
    # Several metrics and one slope for all systems: narrower than one metric per system.
    assert np.mean(widths) < 0.92 * np.mean(single_widths) < np.mean(plain_widths)


def test_pooled_means_cost_little_when_the_cheap_scores_are_noise() -> None:
    costly, _ = systems_population(seed=2)
    rng = np.random.default_rng(2)
    noise = rng.normal(size=(*costly.shape, 10))
    cv, plain, hits = [], [], []
    for _ in range(150):
        y = _label(costly, 25, rng)
        ests = pooled_control_variate_means(y, noise, pool_variance=False)
        cv.append(np.mean([e.width for e in ests]))
        plain.append(np.mean([plain_mean(y[:, j]).width for j in range(costly.shape[1])]))
        hits.append([e.lo <= t <= e.hi for e, t in zip(ests, costly.mean(axis=0))])
    # Twenty useless controls (with the item means) and the ridge keeps them from hurting.
    assert np.mean(cv) < 1.06 * np.mean(plain)
    assert np.mean(hits) >= 0.925


def test_pooled_means_with_systems_missing_on_items() -> None:
    costly, cheap = systems_population(n_items=300, n_systems=4, seed=3)
    absent = np.zeros(costly.shape, bool)
    absent[:150, 0] = True  # system 0 has outputs on half of the items only
    costly = np.where(absent, np.nan, costly)
    cheap = np.where(absent[:, :, None], np.nan, cheap)
    y = _label(costly, 60, np.random.default_rng(3))
    ests = pooled_control_variate_means(y, cheap)
    assert ests[0].cheap == 150 and ests[1].cheap == 300
    assert ests[0].labels == int((~np.isnan(y[:, 0])).sum())


def test_pooled_regression_r2_and_plain_means() -> None:
    costly, cheap = systems_population(seed=4)
    r2 = pooled_regression_r2(costly, cheap)
    assert 0.2 < r2 < 0.9
    noise = np.random.default_rng(4).normal(size=cheap.shape)
    assert pooled_regression_r2(costly, noise) < 0.05
    y = _label(costly, 40, np.random.default_rng(4))
    own = pooled_plain_means(y, pool_variance=False)
    assert [e.mean for e in own] == pytest.approx([plain_mean(y[:, j]).mean for j in range(costly.shape[1])])
    assert [e.width for e in own] == pytest.approx([plain_mean(y[:, j]).width for j in range(costly.shape[1])])


def test_pooled_input_checks() -> None:
    costly, cheap = systems_population(n_items=50, n_systems=3)
    y = _label(costly, 10, np.random.default_rng(5))
    with pytest.raises(InputError, match="items x systems"):
        pooled_control_variate_means(y, cheap[:, :2])
    holes = cheap.copy()
    holes[~np.isnan(y[:, 0]), 0, 0] = np.nan
    with pytest.raises(InputError, match="cheap scores too"):
        pooled_control_variate_means(y, holes)
    with pytest.raises(InputError, match="at least 3"):
        pooled_control_variate_means(_label(costly, 2, np.random.default_rng(5)), cheap)
    with pytest.raises(InputError, match="non-negative"):
        pooled_control_variate_means(y, cheap, ridge=-1.0)


def ceiling_population(n_items: int = 100, n_systems: int = 12, seed: int = 0) -> np.ndarray:
    """Ratings where better systems vary less (human ratings near the top of their scale do):
    the systems' variances differ tenfold, but with their means."""
    rng = np.random.default_rng(seed)
    mean = np.linspace(2.5, 4.5, n_systems)
    spread = 0.9 * np.exp(-(mean - 2.5))
    return mean + spread * rng.standard_t(8, size=(n_items, n_systems))


def test_variance_trend_pools_variances_that_follow_the_mean_and_keeps_coverage() -> None:
    costly = ceiling_population()
    truth = costly.mean(axis=0)
    rng = np.random.default_rng(6)
    options = {"trend": {}, "flat": {"variance_trend": False}, "own": {"pool_variance": False}}
    widths: dict[str, list] = {k: [] for k in options}
    hits: dict[str, list] = {k: [] for k in options}
    for _ in range(200):
        y = _label(costly, 20, rng)
        for key, kwargs in options.items():
            ests = pooled_plain_means(y, **kwargs)
            widths[key].append([e.width for e in ests])
            hits[key].append([e.lo <= t <= e.hi for e, t in zip(ests, truth)])
    mean_width = {k: np.mean(w, axis=0) for k, w in widths.items()}
    # One common level pulls the steadiest system's variance up; the trend keeps it near its own.
    assert mean_width["trend"][-1] < 0.92 * mean_width["flat"][-1]
    # Pooling along the trend buys degrees of freedom: narrower than each system on its own.
    assert mean_width["trend"].mean() < 0.98 * mean_width["own"].mean()
    assert 0.925 <= np.mean(hits["trend"]) <= 0.975
    assert np.mean(hits["trend"], axis=0).min() >= 0.88
    # Fewer than 6 systems: no trend (too few to fit one), the same as a common level.
    few = _label(costly[:, :5], 20, rng)
    assert [e.width for e in pooled_plain_means(few)] == pytest.approx(
        [e.width for e in pooled_plain_means(few, variance_trend=False)]
    )


def test_held_out_correlation_tracks_what_the_cheap_scores_know() -> None:
    costly, cheap = systems_population(seed=7)
    r = pooled_held_out_correlation(costly, cheap)
    assert r == pytest.approx(np.sqrt(max(pooled_regression_r2(costly, cheap), 0.0)), abs=0.05)
    assert 0.4 < r < 0.95
    noise = np.random.default_rng(7).normal(size=cheap.shape)
    assert abs(pooled_held_out_correlation(costly, noise)) < 0.15


def _text_set() -> ItemSet:
    source = "the cat sat on the mat and the dog slept"
    items = [
        Item("0", src=source, ref="the cat sat on the mat",
             tgt={"copy": "the cat sat on the mat", "loop": "dog dog dog dog dog", "new": "a bird flew away"},
             scores={s: {"bleu": v, "ter": 1 - v, "human": v} for s, v in (("copy", 0.9), ("loop", 0.1), ("new", 0.3))}),
        Item("1", src=source, ref=["a cat on a mat", "the cat"],
             tgt={"copy": "the dog slept", "new": "birds sing"},
             scores={"copy": {"bleu": 0.5, "ter": 0.4, "human": 0.6}, "new": {"bleu": 0.2, "ter": 0.9, "human": 0.2}}),
    ]  # fmt: skip
    return ItemSet(items, name="toy")


def test_text_statistics_of_outputs() -> None:
    data = _text_set()
    raw = text_statistics(data)
    assert raw.shape == (2, 3, len(TEXT_STATISTICS))
    assert np.isnan(raw[1, 1]).all() and not np.isnan(raw[0]).any()  # "loop" has no output on item 1
    stat = {name: raw[:, :, k] for k, name in enumerate(TEXT_STATISTICS)}
    # Standardized: the copied summary copies most, the looping one repeats most, and the
    # copied one shares the most with the reference.
    assert stat["source_bigram_copy"][0, 0] > stat["source_bigram_copy"][0, 2]
    assert stat["distinct_bigrams"][0, 1] == np.nanmin(stat["distinct_bigrams"])
    assert stat["reference_unigram_f1"][0, 0] == np.nanmax(stat["reference_unigram_f1"])
    assert np.nanmean(raw, axis=(0, 1)) == pytest.approx(np.zeros(len(TEXT_STATISTICS)), abs=1e-9)


def test_cheap_controls_orient_and_combine_metrics_and_text() -> None:
    data = _text_set()
    metrics = metric_controls(data)
    assert metrics.shape == (2, 3, 2)  # bleu and ter; "human" is a human dimension, not a control
    assert metrics[0, 0, 1] > metrics[0, 1, 1]  # ter is negated: lower is better
    both = cheap_controls(data)
    assert both.shape == (2, 3, 2 + len(TEXT_STATISTICS))
    assert np.array_equal(cheap_controls(data, text=False), metrics, equal_nan=True)


def test_cheap_controls_of_a_set_without_texts_are_its_metrics() -> None:
    """Scores only (a pass/fail run, a judge's grades): no text statistics, and no NaN that
    would mark every system as having no output."""
    items = [Item(id=str(i), scores={s: {"human": float(i % 3), "judge": float(i % 2)} for s in "ab"}) for i in range(6)]
    controls = cheap_controls(ItemSet(items))
    assert controls.shape == (6, 2, 1) and not np.isnan(controls).any()


def test_a_system_whose_graded_labels_are_all_alike_borrows_the_others_spread() -> None:
    """Every sampled label of one system the same mid-scale grade: its own variance is 0, which
    must neither give it a zero-width interval nor stop the others' pooling."""
    rng = np.random.default_rng(0)
    graded = np.round(rng.normal(3.0, 0.6, (80, 5)), 1)
    graded[:20, 4] = 3.0
    labels = np.full(graded.shape, np.nan)
    labels[:20] = graded[:20]  # 20 of the 80 items labelled
    plain = pooled_plain_means(labels)
    others = [e.width for e in plain[:4]]
    assert min(others) / 2 < plain[4].width < 2 * max(others)
    cheap = graded + rng.normal(0, 0.3, graded.shape)
    assert all(e.width > 0 for e in pooled_control_variate_means(labels, cheap))


def test_pass_fail_labels_that_all_pass_keep_room_for_an_unseen_failure() -> None:
    """A strong system passes all 20 labelled items and fails one of the other 60. Its interval
    must reach below 1, by about what one failure in 21 items would move the mean, no further."""
    rng = np.random.default_rng(0)
    outcomes = (rng.random((80, 5)) < np.array([0.6, 0.7, 0.5, 0.8, 0.97])).astype(float)
    outcomes[:, 4] = 1.0
    outcomes[40, 4] = 0.0  # one failure in 80, among the unlabelled items
    labels = np.full(outcomes.shape, np.nan)
    labels[:20] = outcomes[:20]
    for estimate in (pooled_plain_means(labels)[4],
                     pooled_control_variate_means(labels, outcomes + rng.normal(0, 0.3, outcomes.shape))[4]):  # fmt: skip
        assert estimate.lo <= outcomes[:, 4].mean() < 1.0 <= estimate.hi
        assert estimate.width < 0.2


def test_labels_alike_in_every_system_are_refused_not_given_a_zero_width_interval() -> None:
    labels = np.full((40, 3), np.nan)
    labels[:10] = 1.0  # ten labelled items, every system passes every one
    cheap = np.ones((40, 3))
    cheap[30:] = 0.0  # while the cheap scores show failures among the unlabelled items
    for estimate in (lambda: pooled_control_variate_means(labels, cheap), lambda: pooled_plain_means(labels)):
        with pytest.raises(InputError, match=r"do not vary within any system .*all 1\b.*label more items"):
            estimate()


def test_one_systems_pass_fail_labels_that_its_cheap_score_fits_exactly_keep_a_width() -> None:
    """19 passes and a failure, each foreseen by the cheap score: the residuals are all 0, yet
    60 unlabelled items may hold failures the cheap score misses."""
    cheap = np.ones(80)
    cheap[[5, 50, 60]] = 0.0
    costly = np.full(80, np.nan)
    costly[:20] = cheap[:20]
    estimate = control_variate_mean(costly, cheap)
    assert estimate.width > 0.05 and estimate.lo < estimate.mean < estimate.hi


def test_one_systems_labels_all_alike_need_their_possible_range() -> None:
    """20 passes out of 20 labels, one failure among 60 unlabelled items: with no range of their
    own the labels are refused; given the scale (0, 1), the interval keeps room for a failure."""
    outcomes = np.ones(80)
    outcomes[40] = 0.0
    costly = np.full(80, np.nan)
    costly[:20] = outcomes[:20]
    cheap = outcomes + np.random.default_rng(0).normal(0, 0.3, 80)
    with pytest.raises(InputError, match=r"20 costly labels are all 1: .*label_range=\(0, 1\)"):
        control_variate_mean(costly, cheap)
    estimate = control_variate_mean(costly, cheap, label_range=(0, 1))
    assert estimate.lo <= outcomes.mean() < 1.0 <= estimate.hi and estimate.width < 0.25
    with pytest.raises(InputError, match="outside label_range"):
        control_variate_mean(costly, cheap, label_range=(0, 0.5))
    with pytest.raises(InputError, match="low < high"):
        control_variate_mean(costly, cheap, label_range=(1, 0))


def test_a_cheap_score_alike_on_every_labelled_item_is_left_out() -> None:
    # A pass/fail cheap score on which every labelled item passed: its slope cannot be fitted,
    # and fitting it to rounding error used to give an interval about 1e13 wide.
    rng = np.random.default_rng(4)
    cheap = (rng.random(60) < 0.6).astype(float)
    costly = np.clip(0.5 * cheap + rng.normal(0.3, 0.2, 60), 0, 1)
    labelled = np.flatnonzero(cheap == 1)[:10]
    y = np.full(60, np.nan)
    y[labelled] = costly[labelled]
    est = control_variate_mean(y, cheap, label_range=(0, 1))
    plain = plain_mean(y)
    assert est.beta == (0.0,) and est.rho is None
    assert est.mean == pytest.approx(plain.mean)
    # The items that failed the cheap score are a stratum no label saw: the interval takes their
    # share (about 40%) at the ends of the label range, and so holds the truth, which plain
    # averaging of the passes misses.
    share = float(np.mean(cheap == 0))
    assert share < est.width < share + (1 - share) * plain.width * 1.05
    assert est.lo <= costly.mean() <= est.hi and not plain.lo <= costly.mean() <= plain.hi
    # With a second cheap score that does vary, that one is still used.
    other = costly + rng.normal(0, 0.05, 60)
    both = control_variate_mean(y, np.column_stack([cheap, other]), label_range=(0, 1))
    assert both.beta[0] == 0.0 and both.beta[1] > 0.5


def test_cheap_scores_on_part_of_the_items_count_the_first_phase_in_full() -> None:
    # Cheap scores on m of N items: the estimate's variance has the first phase's
    # (1 - m/N) S_y^2 / m in full (Cochran's double-sampling regression estimator).
    costly, cheap = population(n_items=1000, rho=0.9, seed=5)
    y = np.full(1000, np.nan)
    y[:40] = costly[:40]
    c = np.full(1000, np.nan)
    c[:200] = cheap[:200]
    est = control_variate_mean(y, c)
    resid_var = (1 - np.corrcoef(costly[:40], cheap[:40])[0, 1] ** 2) * costly[:40].var(ddof=1)
    assert est.stderr**2 >= (1 - 200 / 1000) * costly[:40].var(ddof=1) / 200 + (1 - 40 / 200) * resid_var / 40 * 0.99


# ---- edge cases: refused with a one-line error, never a wrong number or a raw numpy error -------
Y = np.array([1.0, 2.0, np.nan, 4.0, np.nan, 3.0])
C = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 3.0])


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: control_variate_mean(Y, C, label_range=(-np.inf, np.inf)), "label_range must be finite"),
        (lambda: control_variate_mean(Y, C, n_items=0), "n_items must be a whole number of items, at least the 6"),
        (lambda: control_variate_mean(Y, C, n_items=2), "n_items must be a whole number of items, at least the 6"),
        (lambda: plain_mean(Y, n_items=2), "at least the 4 costly labels"),
        (lambda: control_variate_mean(np.where(np.arange(6) == 0, np.inf, Y), C), "costly scores must be finite"),
        (lambda: control_variate_mean(Y, np.where(np.arange(6) == 0, np.inf, C)), "cheap scores must be finite"),
        (lambda: plain_mean(np.array([1.0, np.inf, 2.0])), "costly scores must be finite.*item 1 has inf"),
        (lambda: control_variate_mean(np.c_[Y, Y], C), r"costly scores must be one per item \(1-D"),
        (lambda: optimal_split(1000, 100, 1, 0.9, n_items=0), "n_items must be a whole number of items >= 2"),
        (lambda: optimal_split(np.inf, 100, 1, 0.9), "all finite"),
        (lambda: pooled_plain_means(np.array([[1.0, np.inf], [2.0, 3.0], [3.0, 1.0]])), "item 0 of system 1 has inf"),
    ],
)
def test_edge_cases_are_refused(call, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("rho", [1.0, -1.0, 0.9999])
def test_a_perfect_correlation_keeps_two_labels_and_buys_cheap_scores(rho: float) -> None:
    """rho = +-1 asks for next to no costly labels: 2 are kept (to fit the slope by), not an error
    saying 1000 does not buy 2 labels at 100 (it buys 10)."""
    split = optimal_split(1000, 100, 1, rho)
    assert split.costly == 2 and split.cheap == 800 and split.variance_ratio < 0.05
    capped = optimal_split(1000, 100, 1, rho, n_items=40)
    assert capped.cheap == 40 and capped.costly <= 10 and capped.costly * 100 + 40 <= 1000
    with pytest.raises(InputError, match="fewer than 2 costly labels"):
        optimal_split(150, 100, 1, rho)


def test_an_item_no_system_has_cheap_scores_on_warns_nothing() -> None:
    import warnings

    costly, cheap = systems_population(n_items=60, n_systems=3)
    costly[30:] = np.nan
    cheap[-1] = np.nan  # the last item: no system's output
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimates = pooled_control_variate_means(costly, cheap)
    assert all(np.isfinite(e.mean) for e in estimates)


def test_check_rated_sample_flags_items_chosen_by_the_metric_and_not_random_ones() -> None:
    from budgetlab.evaluation import check_rated_sample

    rng = np.random.default_rng(0)
    metric = rng.normal(size=(120, 4))
    spread, level = metric.std(axis=1), metric.mean(axis=1)
    metric[np.argmin(spread), :] = np.nan  # an item without the metric is left out, not a NaN mean
    by_spread = np.zeros(120, bool)
    by_spread[np.argsort(-spread)[:30]] = True
    check = check_rated_sample(metric, by_spread)
    assert check is not None and check.unlike_random and check.statistic == "spread" and check.rated > check.random_high
    by_level = np.zeros(120, bool)
    by_level[np.argsort(level)[:30]] = True
    assert check_rated_sample(metric, by_level).statistic == "level"  # type: ignore[union-attr]
    flagged = sum(
        check_rated_sample(metric, np.isin(np.arange(120), rng.choice(120, 30, replace=False)), draws=1000).unlike_random  # type: ignore[union-attr]
        for _ in range(50)
    )
    assert flagged <= 3
    assert check_rated_sample(metric, np.zeros(120, bool)) is None
    assert check_rated_sample(metric, np.ones(120, bool)) is None


def test_pooled_estimates_keep_plain_averaging_unless_the_controls_clearly_beat_it() -> None:
    """10 rated items and 60 controls of noise: the least cross-validated error among the ridge
    penalties is luck, and plain averaging is kept; one control that tracks the label is kept."""
    from budgetlab.evaluation import pooled_control_variate_means

    rng = np.random.default_rng(4)
    n, systems = 100, 5
    human = rng.normal(size=(n, systems)) + np.arange(systems) * 0.2
    rated = np.full(human.shape, np.nan)
    rated[:10] = human[:10]
    noise = rng.normal(size=(n, systems, 60))
    plain = rated[:10].mean(axis=0)
    estimates = pooled_control_variate_means(rated, noise)
    assert [e.mean for e in estimates] == pytest.approx(plain)
    assert all(e.beta == pytest.approx(tuple([0.0] * 120)) for e in estimates)
    tracking = human[:, :, None] + rng.normal(0, 0.3, (n, systems, 1))
    kept = pooled_control_variate_means(rated, tracking)
    assert kept[0].beta[0] > 0.5 and abs(kept[0].mean - human[:, 0].mean()) < abs(plain[0] - human[:, 0].mean())
