"""Fixtures shared by the evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def items_jsonl(tmp_path: Path) -> Path:
    """40 items x 3 systems of rising quality, with a human score and a noisy metric (bleu)."""
    rng = np.random.default_rng(1)
    lines = []
    for i in range(40):
        scores = {
            s: {"human_overall": q + rng.normal(0, 0.3), "bleu": q + rng.normal(0, 0.5)}
            for s, q in (("a", 0.0), ("b", 0.5), ("c", 1.0))
        }
        lines.append(
            json.dumps(
                {"i": i, "src": f"src {i}", "ref": "r", "tgt": {s: f"out {s} {i}" for s in scores}, "scores": scores}
            )
        )
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path
