"""Draw one token from a row of logits: temperature, top-k, top-p, with the sample's own RNG.

Every sample owns a :class:`numpy.random.Generator` seeded with its seed and draws exactly one
uniform number per sampled token (none when greedy), so the tokens a sample gets depend only on
its seed and its own logits, never on which other sequences shared the batch.

The recorded log-probability of a token is its log-softmax under the model's own distribution:
the temperature-1 logits, before temperature, top-k and top-p (so it does not depend on the
sampling parameters, and greedy decoding gets a real value rather than 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["RowSampler", "SamplingParams"]

# Tokens whose weight is below this fraction of the largest are tried last for top-p: the
# nucleus is found among the others whenever they already hold top_p of the mass (else a full sort).
_NUCLEUS_CANDIDATES = 1e-7
_BLOCK = 1024


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


class RowSampler:
    """Scratch buffers for one vocabulary size; one per thread (not thread-safe)."""

    def __init__(self, n_vocab: int) -> None:
        self.n_vocab = n_vocab
        self._shifted = np.empty(n_vocab, dtype=np.float32)
        self._weights = np.empty(n_vocab, dtype=np.float32)
        self._blocks = n_vocab // _BLOCK

    def sample(self, row: np.ndarray, params: SamplingParams, rng: np.random.Generator | None) -> tuple[int, float]:
        """The token drawn from ``row`` (float32 logits, not modified) and its log-probability
        under the temperature-1 distribution. ``rng`` may be ``None`` only when greedy."""
        s, w = self._shifted, self._weights
        top = float(row.max())
        if not math.isfinite(top):
            raise FloatingPointError(f"the model produced a non-finite logit ({top})")
        np.subtract(row, np.float32(top), out=s)  # <= 0; the largest is 0
        np.exp(s, out=w)
        log_z1 = math.log(float(w.sum()))  # >= 0 (the largest term is 1)
        if params.greedy:
            token = int(row.argmax())
            return token, float(s[token]) - log_z1
        assert rng is not None
        u = rng.random()
        if params.temperature != 1.0:
            np.multiply(s, np.float32(1.0 / params.temperature), out=w)
            np.exp(w, out=w)
        if params.top_k > 0 and params.top_k < self.n_vocab or params.top_p < 1.0:
            token = self._truncated(w, params, u)
        else:
            token = self._draw_full(w, u)
        return token, float(s[token]) - log_z1

    def _draw_full(self, w: np.ndarray, u: float) -> int:
        """Inverse CDF over the whole vocabulary: block sums first, then one block's prefix sums."""
        nb = self._blocks
        head = nb * _BLOCK
        sums = np.empty(nb + (1 if head < self.n_vocab else 0), dtype=np.float64)
        if nb:
            sums[:nb] = w[:head].reshape(nb, _BLOCK).sum(axis=1)
        if head < self.n_vocab:
            sums[-1] = w[head:].sum()
        cum = np.cumsum(sums)
        target = u * cum[-1]
        b = min(int(np.searchsorted(cum, target, side="right")), len(cum) - 1)
        while b > 0 and sums[b] == 0.0:  # never land in an empty block
            b -= 1
        start = b * _BLOCK
        block = w[start : min(start + _BLOCK, self.n_vocab)]
        inner = np.cumsum(block, dtype=np.float64) + (cum[b - 1] if b else 0.0)
        i = min(int(np.searchsorted(inner, target, side="right")), len(block) - 1)
        while i > 0 and block[i] == 0.0:
            i -= 1
        return start + i

    def _truncated(self, w: np.ndarray, params: SamplingParams, u: float) -> int:
        """Top-k, then top-p, then a draw among what is left (in order of decreasing weight)."""
        n = self.n_vocab
        if 0 < params.top_k < n:
            idx = np.argpartition(w, n - params.top_k)[n - params.top_k :]
        else:
            idx = None
        if params.top_p < 1.0:
            total = float(w[idx].sum()) if idx is not None else float(w.sum())
            if idx is None:
                cand = np.flatnonzero(w >= np.float32(_NUCLEUS_CANDIDATES))
                if float(w[cand].sum()) < params.top_p * total:
                    cand = np.arange(n)
                idx = cand
            order = idx[np.argsort(-w[idx], kind="stable")]
            cum = np.cumsum(w[order], dtype=np.float64)
            keep = min(int(np.searchsorted(cum, params.top_p * total, side="left")) + 1, len(order))
            idx = order[:keep]
        else:
            idx = idx[np.argsort(-w[idx], kind="stable")]
        cum = np.cumsum(w[idx], dtype=np.float64)
        j = min(int(np.searchsorted(cum, u * cum[-1], side="right")), len(idx) - 1)
        return int(idx[j])
