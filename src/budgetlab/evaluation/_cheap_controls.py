"""Cheap controls for an evaluation set: every automatic metric, and surface statistics of the
outputs that cost nothing to compute.

Control variates gain with what the cheap scores explain of the costly (human) score. The
set's metrics are one source; the outputs' text is another. A few plain statistics of it bear
on how people rate generated text: how long the output is, how much of it is copied from the
source (extractiveness, as Grusky et al. measure it for "Newsroom", 2018: copied text is seldom
unfaithful or disfluent), how much it repeats itself, and how much it shares with the
reference. They are fixed here, not searched for, and the pooled regression
(:func:`budgetlab.evaluation.pooled_control_variate_means`) weighs them by cross-validation, so
one that says nothing on a set costs little (on the NLG sets of bench/control_variates.py they
help most on summeval_gpt: 32% fewer human labels against 28% with the metrics alone).
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from typing import Any

import numpy as np

from budgetlab.evaluation.subset._data import LOWER_IS_BETTER, ItemSet

__all__ = ["TEXT_STATISTICS", "cheap_controls", "metric_controls", "text_statistics"]

#: The text statistics of :func:`text_statistics`, in order.
TEXT_STATISTICS = (
    "log_words",  # log(1 + words in the output)
    "source_unigram_copy",  # share of the output's words that occur in the source
    "source_bigram_copy",  # share of its word bigrams that occur in the source
    "distinct_bigrams",  # distinct bigrams / bigrams: 1 when nothing repeats
    "reference_unigram_f1",  # unigram F1 overlap with the reference(s)
)


def metric_controls(data: ItemSet) -> np.ndarray:
    """Items x systems x metrics: every automatic metric of the set, standardized over the set,
    higher is better (lower-is-better ones negated); NaN where a system has no score."""
    parts = []
    for key in data.metric_keys:
        m = data.matrix(key)
        sd = np.nanstd(m)
        z = (m - np.nanmean(m)) / (sd if sd > 0 else 1.0)
        parts.append(-z if key.lower() in LOWER_IS_BETTER else z)
    return np.stack(parts, axis=-1) if parts else np.empty((len(data), len(data.systems), 0))


def text_statistics(data: ItemSet) -> np.ndarray:
    """Items x systems x ``len(TEXT_STATISTICS)``: the statistics of each output's text,
    standardized over the set (a statistic that is constant on the set, e.g. a copy rate
    where there are no sources, is 0); NaN where a system has no output on the item."""
    out = np.full((len(data), len(data.systems), len(TEXT_STATISTICS)), np.nan)
    for i, item in enumerate(data.items):
        source = _words(item.src)
        source_words, source_bigrams = set(source), set(pairwise(source))
        reference = Counter(_words(item.ref))
        for j, system in enumerate(data.systems):
            if system not in item.tgt:
                continue
            words = _words(item.tgt[system])
            bigrams = list(pairwise(words))
            overlap = sum((Counter(words) & reference).values())
            out[i, j] = (
                np.log1p(len(words)),
                np.mean([w in source_words for w in words]) if words else 0.0,
                np.mean([b in source_bigrams for b in bigrams]) if bigrams else 0.0,
                len(set(bigrams)) / len(bigrams) if bigrams else 1.0,
                2 * overlap / (len(words) + sum(reference.values())) if words and reference else 0.0,
            )
    mean, sd = np.nanmean(out, axis=(0, 1)), np.nanstd(out, axis=(0, 1))
    return (out - mean) / np.where(sd > 0, sd, 1.0)


def cheap_controls(data: ItemSet, *, text: bool = True) -> np.ndarray:
    """Items x systems x controls for control variates: :func:`metric_controls`, then (with
    ``text``, on a set that has output texts) :func:`text_statistics`. NaN where a system has
    no output or score."""
    parts = [metric_controls(data)]
    # A set of scores without texts (pass/fail runs, judge scores) would otherwise read as
    # "no system has an output anywhere".
    if text and any(item.tgt for item in data.items):
        parts.append(text_statistics(data))
    return np.concatenate(parts, axis=-1)


def _words(text: Any) -> list[str]:
    if text is None:
        return []
    if isinstance(text, (list, tuple)):  # several references: their words together
        return [w for t in text for w in _words(t)]
    return str(text).lower().split()
