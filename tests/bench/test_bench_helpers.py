"""The pure parts of bench/stopping.py (Pareto front and plot), bench/forcing.py (prompts and
settings), bench/confidence.py (calibration report, fixed k as a stopping rule), bench/subset.py
(the gap's interval), bench/subset_validation.py (the declaration rule, answer scoring) and
bench/pacing.py (fixed k over a stream)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from budgetlab.analysis._stopping import simulate_stopping

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # its dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_pareto_front_keeps_only_undominated_points() -> None:
    stopping = load("stopping")
    points = [(5.0, 0.80), (3.0, 0.78), (10.0, 0.79), (4.0, 0.81), (40.0, 0.82), (4.0, 0.70), (20.0, 0.815)]
    assert stopping.pareto_front(points) == [(3.0, 0.78), (4.0, 0.81), (20.0, 0.815), (40.0, 0.82)]


def test_pareto_plot_writes_a_png_with_a_panel_per_dataset(tmp_path: Path) -> None:
    stopping = load("stopping")
    rows = [{"family": "esc", "window": w, "accuracy": a, "mean_samples": s} for w, a, s in [(3, 0.80, 4.0), (5, 0.81, 8.0)]]
    rows += [{"family": "bayes", "cost": c, "accuracy": a, "mean_samples": s} for c, a, s in [(0.001, 0.805, 3.0), (0.0003, 0.812, 6.0)]]
    dataset = {"label": "toy", "configs": rows, "maj_at_k": {"5": 0.79, "10": 0.80, "20": 0.81, "40": 0.812},
               "accuracy_floor": 0.811}  # fmt: skip
    result = {"orderings": 200, "datasets": {"a": dataset, "b": dataset}}
    out = stopping.plot_pareto(result, tmp_path / "sub" / "pareto.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    height, width = imread(out).shape[:2]
    assert width > 1.8 * height  # two panels side by side


def test_forcing_bench_prompts_ask_the_task_questions() -> None:
    forcing = load("forcing")
    plain, thinking = forcing.thinking_problems(5, 2, 3, 0)
    for p, t in zip(plain, thinking):
        assert p.id == t.id and p.reference == t.reference
        a, b = p.metadata["a"], p.metadata["b"]
        assert t.prompt.endswith(f"Q: What is {a} + {b}?\nA:") and t.prompt.count("<think>") == 3
    assert forcing.parse_setting("plain", 2) is None
    assert forcing.parse_setting("min=32:max=64", 3) == {"think_start": " <think>", "max_waits": 3,
                                                         "min_thinking_tokens": 32, "max_thinking_tokens": 64}  # fmt: skip


def test_confidence_bench_calibration_and_fixed_k() -> None:
    confidence = load("confidence")
    rng = np.random.default_rng(0)

    def rows(n: int) -> list:
        out = []
        for i in range(n):
            conf = list(rng.uniform(0.3, 1.0, 8))
            correct = [bool(rng.random() < c**3) for c in conf]  # overconfident raw confidences
            out.append((f"p{i}", 1, ["a" if ok else "b" for ok in correct], correct, conf))
        return out

    report = confidence.calibrate(rows(300), rows(300))
    assert report["fit_samples"] == report["test_samples"] == 2400
    for kind in ("isotonic", "platt"):
        assert report[kind]["ece"] < report["raw"]["ece"] and report[kind]["brier"] < report["raw"]["brier"]
    fixed = confidence.FixedStop(4, 8)
    sim = simulate_stopping(fixed, [(["a"] * 8, [True] * 8), (["b"] * 6, [False] * 6)], orderings=5)
    assert sim.drawn.tolist() == [[4, 4]] * 5 and sim.accuracy == pytest.approx(0.5)


def test_subset_bench_gap_interval_is_over_the_sets() -> None:
    subset = load("subset")
    assert subset._paired_interval([0.9, 0.8, 1.0], [0.9, 0.8, 1.0]) == [0.0, 0.0]
    low, high = subset._paired_interval([1.0, 1.0, 0.9, 1.0], [0.5, 0.9, 0.8, 0.6])
    assert 0 < low < high <= 0.5


def test_pacing_bench_fixed_k_is_the_majority_of_the_first_k_draws() -> None:
    pacing = load("pacing")
    stream = [(["a", "b", "b", "a"], [True, False, False, True]), (["c", "c", "d", "d"], [False, False, True, True])]
    draws = [np.array([1, 2, 0, 3]), np.array([2, 3, 0, 1])]
    assert pacing.fixed_k(stream, [0, 1], draws, 2) == 0.5  # b (wrong), then d (right)
    assert pacing.fixed_k(stream, [0, 1], draws, 1) == 0.5


def test_subset_validation_declares_the_best_overall_and_breaks_ties_by_listing_order() -> None:
    validation = load("subset_validation")
    flat = {m: 0.5 for m in validation.METHODS}
    assert validation.declare(flat) == next(iter(validation.METHODS))
    flat["irt"] = 0.6
    assert validation.declare({**flat, "random": 1.0}) == "irt"  # random is never declared
    subset = load("subset")
    assert subset.DECLARED.removesuffix(subset.CV) in subset.OURS


def test_round5_declares_the_best_mean_over_sources_with_each_source_counted_once() -> None:
    heldout = load("subset_heldout")
    candidates = heldout.round5_candidates()
    assert candidates[:2] == ["variance", "variance+cv"] and candidates[-2:] == ["random", "random+cv"]
    assert not {"diversity", "combined", "diversity+cv"} & set(candidates)  # HANNA has no texts

    def score(value: float, sets: int) -> dict[str, np.ndarray]:
        return {f"set{k}": np.full((3, 2), value) for k in range(sets)}

    flat = {"realsumm": {c: score(0.5, 2) for c in candidates}, "hanna": {c: score(0.5, 6) for c in candidates}}
    assert heldout.round5_declare(flat)[0] == "variance"  # ties: the first listed
    # One source's two sets weigh as much as the other's six.
    flat["realsumm"]["irt+cv"] = score(0.9, 2)
    flat["hanna"]["agreement"] = score(0.8, 6)
    declared, overall = heldout.round5_declare(flat)
    assert declared == "irt+cv" and overall["irt+cv"] == pytest.approx(0.7) and overall["agreement"] == pytest.approx(0.65)
    # A candidate missing from a source is not a candidate.
    del flat["hanna"]["irt+cv"]
    assert heldout.round5_declare(flat)[0] == "agreement"


def test_subset_validation_scores_recorded_answers() -> None:
    validation = load("subset_validation")
    assert validation._correct(18.0, "18") == 1.0 and validation._correct("18.5", 18) == 0.0
    assert validation._correct(" Yes", "yes") == 1.0 and validation._correct(None, "yes") == 0.0
    costly, cheap = validation._from_counts(np.array([[0.0, 10.0], [5.0, 3.0]]), 10, np.random.default_rng(0))
    assert costly.tolist() == [[0.0, 1.0], [0.5, 0.3]]
    assert cheap[0].tolist() == [0.0, 1.0] and set(np.unique(cheap)) <= {0.0, 1.0}
    # Graded: the pass rate of 3 samples drawn without replacement from the recorded 10.
    counts = np.array([[0.0, 10.0], [5.0, np.nan]])
    costly, cheap = validation._from_counts(counts, 10, np.random.default_rng(0), graded=3)
    assert cheap[0].tolist() == [0.0, 1.0] and np.isnan(cheap[1, 1]) and cheap[1, 0] in (0, 1 / 3, 2 / 3, 1)
    assert validation.kind("osca-2-graded") == "graded" and validation.kind("osca-2") == "pass/fail"


def test_the_held_out_subset_bench_reads_plain_score_files_and_refuses_code(tmp_path: Path) -> None:
    import os
    import pickle

    heldout = load("subset_heldout")
    docs = {7: {"doc_id": 7, "ref_summ": "<t> a b . </t>",
                "system_summaries": {f"s{j}.txt": {"system_summary": f"<t> out {j} </t>",
                                                   "scores": {"litepyramid_recall": j / 4, "rouge_1_f_score": np.float64(j)}}
                                     for j in range(3)}}}  # fmt: skip
    (tmp_path / "abs.pkl").write_bytes(pickle.dumps(docs))
    data = heldout.load_realsumm(tmp_path / "abs.pkl", "abs")
    assert data.systems == ("s0", "s1", "s2") and data.human_keys == ("litepyramid_recall",)
    assert data.items[0].tgt["s1"] == "out 1" and data.items[0].ref == "a b ."

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, ("echo pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({1: Payload()}))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        heldout.load_realsumm(tmp_path / "evil.pkl", "evil")


def test_the_held_out_subset_bench_reads_hanna_one_set_per_criterion(tmp_path: Path) -> None:
    heldout = load("subset_heldout")
    criteria = list(heldout.HANNA_CRITERIA)
    metrics = ["BLEU Ξ§", "Text length ¤§", "BaryScore-W Ξε", "BARTScore-SP ¤Δ"]
    rows = [["Model", *criteria, *metrics, "Human 1 RE"]]
    for j, system in enumerate(("Human", "A", "B")):
        rows.append([system, *(str([j + 1.0, j + 2.0]) for _ in criteria), *(str([10.0 * j, 5.0]) for _ in metrics), "[1, 2]"])
    path = tmp_path / "hanna.csv"
    path.write_text("\n".join(",".join(f'"{c}"' for c in r) for r in rows) + "\n", encoding="utf-8")
    sets = heldout.load_hanna(path)
    assert [s.name for s in sets] == [f"hanna_{c.lower()}" for c in criteria]
    first = sets[0]
    assert first.systems == ("A", "B") and len(first) == 2  # the human-written stories are left out
    assert first.human_keys == ("human_relevance",)
    # Text statistics are dropped, distances negated, and the raters' columns never read as metrics.
    assert first.metric_keys == ("BLEU", "neg BaryScore-W", "BARTScore-SP")
    assert first.items[0].scores["B"]["neg BaryScore-W"] == -20.0 and first.items[1].scores["A"]["human_relevance"] == 3.0
