"""The sampler and its random generator, exactly as spec/sampling.md defines them.

Python and Go draw the same token ids from the same logits and seed, so both
follow the spec step by step: xorshift64* seeded by SplitMix64, one uniform draw
per sampled token, temperature -> top-k -> top-p, ties to the lowest id.
"""

from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def splitmix64(z: int) -> int:
    """One SplitMix64 step: scrambles a seed so that nearby seeds give unrelated streams."""
    z = (z + GOLDEN_GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


class Rng:
    """xorshift64*: a 64-bit state, three shifts and a multiply per draw."""

    def __init__(self, seed: int):
        if not 0 <= seed <= MASK64:
            raise ValueError(f"seed must be an unsigned 64-bit integer, found {seed}")
        # Zero is a fixed point of xorshift; SplitMix64 reaches it for one seed only.
        self.state = splitmix64(seed) or GOLDEN_GAMMA

    def next_u64(self) -> int:
        x = self.state
        x ^= x >> 12
        x ^= (x << 25) & MASK64
        x ^= x >> 27
        self.state = x
        return (x * 0x2545F4914F6CDD1D) & MASK64

    def uniform(self) -> float:
        """A float64 in [0, 1) from the top 53 bits: every value is exact."""
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))


class Sampler:
    """Picks the next token id from logits; one Sampler continues one random stream."""

    def __init__(self, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0):
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, found {temperature}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 = no limit), found {top_k}")
        if not (0 < top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1] (1 = no limit), found {top_p}")
        self.temperature, self.top_k, self.top_p = float(temperature), top_k, float(top_p)
        self.rng = Rng(seed)

    def sample(self, logits: np.ndarray) -> int:
        logits = _check_logits(logits)
        if self.temperature == 0:
            return int(np.argmax(logits))  # argmax returns the first (lowest) id on ties
        order, probs = self.candidates(logits)
        return int(order[_pick(probs, self.rng.uniform())])

    def candidates(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ids that may be drawn, most likely first, and their probabilities
        (temperature, then top-k, then top-p). Draws nothing."""
        logits = _check_logits(logits)
        z = logits.astype(np.float64) / self.temperature
        order = np.lexsort((np.arange(z.size), -z))  # z descending, then id ascending
        if 0 < self.top_k < z.size:
            order = order[: self.top_k]
        weights = np.exp(z[order] - z[order[0]])
        probs = weights / _sequential_sum(weights)
        if self.top_p < 1:
            cumulative = np.cumsum(probs)  # np.cumsum adds left to right, as the spec says
            reached = np.flatnonzero(cumulative >= self.top_p)
            keep = int(reached[0]) + 1 if reached.size else probs.size  # smallest prefix reaching top_p
            order, probs = order[:keep], probs[:keep] / _sequential_sum(probs[:keep])
        return order, probs


def _check_logits(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim != 1 or logits.size == 0:
        raise ValueError(f"logits must be a non-empty vector, found shape {logits.shape}")
    if np.isnan(logits).any():
        raise ValueError("logits contain NaN")
    return logits


def _sequential_sum(values: np.ndarray) -> float:
    """Left-to-right float64 sum (np.sum adds pairwise, which Go would not match)."""
    return float(np.cumsum(values)[-1])


def _pick(probs: np.ndarray, u: float) -> int:
    """Index of the first cumulative probability above u (the last if rounding left none)."""
    cumulative = 0.0
    for i, p in enumerate(probs):
        cumulative += float(p)
        if u < cumulative:
            return i
    return len(probs) - 1
