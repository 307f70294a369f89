"""The sampler and its generator (spec/sampling.md): exact streams and the right distribution."""

import numpy as np
import pytest

from conftest import GOLDENS, SPEC
from jaxmodel.gguf_io import read_arrays
from jaxmodel.sampler import MASK64, Rng, Sampler, splitmix64


@pytest.fixture(scope="module")
def cases():
    return read_arrays(GOLDENS / "sampler.gguf")


def test_splitmix64_known_value():
    # The first output of the SplitMix64 generator seeded with 0, as published with the algorithm.
    assert splitmix64(0) == 0xE220A8397B1DCDAF


def test_rng_matches_goldens(cases):
    meta = cases.metadata
    assert meta["rng.count"] >= 4
    for k in range(meta["rng.count"]):
        rng = Rng(meta[f"rng.{k}.seed"])
        assert [rng.next_u64() for _ in range(8)] == meta[f"rng.{k}.next_u64"]
        assert [rng.uniform() for _ in range(8)] == meta[f"rng.{k}.uniform"]


def test_rng_stream_is_written_in_the_spec():
    # spec/sampling.md lists the first outputs for seed 0 so that an implementer can check by eye.
    rng = Rng(0)
    first = rng.next_u64()
    assert f"{first:016x}" in (SPEC / "sampling.md").read_text().lower()


def test_uniform_is_in_unit_interval_and_uses_53_bits():
    rng = Rng(123)
    values = np.array([rng.uniform() for _ in range(20000)])
    assert values.min() >= 0 and values.max() < 1
    assert abs(values.mean() - 0.5) < 0.01
    assert all(float(v * 2**53).is_integer() for v in values[:100])


def test_seed_range():
    Rng(MASK64)
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        Rng(-1)


def test_sampler_matches_goldens(cases):
    meta = cases.metadata
    assert meta["sampler.count"] >= 8
    for k in range(meta["sampler.count"]):
        sampler = Sampler(meta[f"sampler.{k}.temperature"], meta[f"sampler.{k}.top_k"], meta[f"sampler.{k}.top_p"], meta[f"sampler.{k}.seed"])
        logits = cases.arrays[f"sampler.{k}.logits"]
        got = [sampler.sample(logits) for _ in range(len(meta[f"sampler.{k}.ids"]))]
        assert got == meta[f"sampler.{k}.ids"], f"sampler case {k}"
        assert sampler.rng.next_u64() == meta[f"sampler.{k}.next_u64"], f"sampler case {k}: draws per sample"


def test_spec_worked_example():
    # spec/sampling.md, "Worked example".
    logits = np.array([1.0, 3.0, 2.0, 3.0, 0.5, -1.0], np.float32)
    sampler = Sampler(0.8, top_k=4, top_p=0.9, seed=0)
    order, probs = sampler.candidates(logits)
    assert order.tolist() == [1, 3, 2]
    np.testing.assert_allclose(probs, [0.4373487435378189, 0.4373487435378189, 0.12530251292436217], rtol=1e-15)
    assert [sampler.sample(logits) for _ in range(8)] == [3, 3, 3, 2, 3, 1, 1, 1]


def test_greedy_takes_lowest_id_on_ties_and_draws_nothing():
    sampler = Sampler(temperature=0, seed=9)
    state = sampler.rng.state
    assert sampler.sample(np.array([0.0, 3.0, 1.0, 3.0])) == 1
    assert sampler.rng.state == state


def test_top_k_one_and_tiny_top_p_are_argmax():
    logits = np.random.default_rng(0).standard_normal(50).astype(np.float32)
    best = int(np.argmax(logits))
    for sampler in (Sampler(1.0, top_k=1, seed=1), Sampler(1.0, top_p=1e-6, seed=2)):
        assert {sampler.sample(logits) for _ in range(50)} == {best}


def test_top_k_limits_support_and_breaks_ties_by_id():
    logits = np.array([5.0, 1.0, 4.0, 4.0, 4.0, 0.0], np.float32)
    sampler = Sampler(1.0, top_k=3, seed=3)
    assert {sampler.sample(logits) for _ in range(500)} == {0, 2, 3}


def test_top_p_keeps_smallest_prefix_reaching_p():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    sampler = Sampler(1.0, top_p=0.8, seed=4)  # 0.5 + 0.3 >= 0.8: two tokens survive
    assert {sampler.sample(logits) for _ in range(500)} == {0, 1}


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_frequencies_follow_softmax(temperature):
    logits = np.array([2.0, 1.0, 0.5, 0.0, -1.0], np.float32)
    sampler = Sampler(temperature, seed=5)
    n = 40000
    counts = np.bincount([sampler.sample(logits) for _ in range(n)], minlength=5)
    p = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
    # each count is binomial: within 5 standard deviations
    assert np.all(np.abs(counts - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1), (counts, n * p)


def test_same_seed_same_stream_other_seed_other_stream():
    logits = np.zeros(1000, np.float32)
    draw = lambda seed: [Sampler(1.0, seed=seed).sample(logits) for _ in range(1)]  # noqa: E731
    a, b = Sampler(1.0, seed=7), Sampler(1.0, seed=7)
    assert [a.sample(logits) for _ in range(20)] == [b.sample(logits) for _ in range(20)]
    assert len({tuple(draw(s)) for s in range(20)}) > 10


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_invalid_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Sampler(**kwargs)


def test_invalid_logits():
    with pytest.raises(ValueError, match="NaN"):
        Sampler(1.0).sample(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="non-empty vector"):
        Sampler(1.0).sample(np.zeros((2, 2)))
