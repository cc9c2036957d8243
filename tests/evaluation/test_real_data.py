"""The evaluation family on the shared real data (skipped, with the reason, where the shared
data folder is absent): LiveCodeBench's 45 x 400 matrix and the NLG human-evaluation sets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from budgetlab.evaluation import TEXT_STATISTICS, cheap_controls, load_score_matrix
from budgetlab.evaluation.selection import make_algorithm, simulate
from budgetlab.evaluation.subset import SUBSET_METHODS, choose, load_items, make_subset_method, rank_agreement

DATA = Path(os.environ.get("BUDGETLAB_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
LCB = DATA / "livecodebench" / "performances_generation_2024-04-17_45models.json.gz"
NLG = sorted((DATA / "subset2evaluate_nlg").glob("*.jsonl.gz"))


@pytest.mark.skipif(not LCB.exists(), reason=f"shared data not found: {LCB} (set BUDGETLAB_SHARED_DATA)")
def test_livecodebench_best_model_from_a_tenth_of_the_evaluations() -> None:
    matrix = load_score_matrix(LCB)
    assert matrix.shape == (45, 400) and matrix.available == 18_000
    truth = matrix.methods[int(np.argmax(matrix.means()))]
    assert truth == "GPT-4-Turbo-2024-04-09"
    for name in ("ucbe", "ucbe-lrf"):
        hits = [simulate(make_algorithm(name), matrix, 0.1, seed=s).best == truth for s in range(3)]
        assert sum(hits) >= 2


@pytest.mark.skipif(
    not NLG, reason=f"shared data not found: {DATA / 'subset2evaluate_nlg'} (set BUDGETLAB_SHARED_DATA)"
)
@pytest.mark.parametrize("path", NLG, ids=lambda p: p.name.split(".")[0])
def test_nlg_sets_load_and_every_method_chooses(path: Path) -> None:
    data = load_items(path)
    human = data.human()
    assert human.shape == (len(data), len(data.systems)) and data.human_keys
    for name in SUBSET_METHODS:
        method = make_subset_method(name)
        if hasattr(method, "metric") and not data.has_metric:  # the metric-based methods
            continue
        chosen = choose(data, method, size=0.25, seed=0)
        assert len(set(chosen.tolist())) == max(1, round(0.25 * len(data)))
        rho, tau = rank_agreement(human, chosen)
        assert -1 <= tau <= 1 and -1 <= rho <= 1


@pytest.mark.skipif(
    not NLG, reason=f"shared data not found: {DATA / 'subset2evaluate_nlg'} (set BUDGETLAB_SHARED_DATA)"
)
@pytest.mark.parametrize("path", NLG, ids=lambda p: p.name.split(".")[0])
def test_nlg_sets_give_cheap_controls_wherever_a_system_has_an_output(path: Path) -> None:
    data = load_items(path)
    controls = cheap_controls(data)
    assert controls.shape == (len(data), len(data.systems), len(data.metric_keys) + len(TEXT_STATISTICS))
    has_output = np.array([[s in item.tgt for s in data.systems] for item in data.items])
    text = controls[:, :, len(data.metric_keys) :]
    assert not np.isnan(text[has_output]).any() and np.isnan(text[~has_output]).all()
