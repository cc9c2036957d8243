"""A simulated recorded-samples file for the out-of-the-box demo and for tests.

The samples are *simulated*, not drawn from a model: each problem has a difficulty, each
configuration a skill, a sample is correct with a logistic probability of the two, and wrong
answers come from a few per-problem distractors (so majority vote can fail). Token counts and
prices are plausible, so budgets in tokens and dollars behave as they would on real data.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

__all__ = ["DEMO_CONFIGS", "write_demo_samples"]

# name: (skill, temperature-like spread of wrong answers, dollars per 1M completion tokens)
DEMO_CONFIGS = {
    "sim-small-t0.2": (-0.4, 0.4, 0.2),
    "sim-small-t0.8": (-0.7, 1.2, 0.2),
    "sim-large-t0.7": (0.6, 1.0, 2.0),
}


def write_demo_samples(path: str | Path, *, problems: int = 120, samples: int = 32, seed: int = 0) -> Path:
    """Write a samples JSONL (see the README's replay formats) and return its path."""
    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for p in range(problems):
            difficulty = rng.gauss(0.8, 1.6)
            truth = str(rng.randint(10, 999))
            distractors = [str(rng.randint(10, 999)) for _ in range(4)]
            prompt_tokens = rng.randint(60, 140)
            for config, (skill, spread, price) in DEMO_CONFIGS.items():
                p_correct = 1 / (1 + math.exp(-(2.2 * (skill - difficulty))))
                weights = [math.exp(-i / spread) for i in range(len(distractors))]
                for _ in range(samples):
                    correct = rng.random() < p_correct
                    answer = truth if correct else rng.choices(distractors, weights)[0]
                    if rng.random() < 0.03:
                        answer = None  # an unparseable sample, as real models produce
                    completion_tokens = int(rng.lognormvariate(5.0, 0.4))
                    record = {
                        "problem": f"sim-{p:04d}",
                        "config": config,
                        "answer": answer,
                        "correct": bool(correct and answer is not None),
                        "text": None,
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "cost": round(completion_tokens * price / 1e6, 9),
                    }
                    fh.write(json.dumps(record) + "\n")
    return path
