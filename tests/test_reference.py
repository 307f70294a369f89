"""The NumPy reference: properties of each op that a wrong implementation breaks,
and agreement with the goldens."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from conftest import CONFIGS, GOLDENS, ROOT
from jaxmodel import reference as ref
from jaxmodel.config import load_config
from jaxmodel.goldens import mismatch, random_weights
from jaxmodel.gguf_io import read_arrays
from jaxmodel.tokenizer import placeholder_vocabulary

MODELS = ["gqa", "mha"]


@pytest.fixture(scope="module", params=MODELS)
def golden(request):
    """(name, float64 model, golden arrays)."""
    name = request.param
    return name, ref.load_model(GOLDENS / f"{name}.gguf"), read_arrays(GOLDENS / f"{name}.activations.gguf").arrays


def test_imports_no_jax():
    code = "import sys, jaxmodel.reference; bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'flax')]; print(bad); sys.exit(bool(bad))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


# --- ops -----------------------------------------------------------------------------

vectors = st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=32).map(np.array)


@given(vectors)
def test_rms_norm_has_unit_rms_times_weight(x):
    assume(np.mean(x * x) > 1e-6)
    weight = np.linspace(0.5, 2.0, x.size)
    out = ref.rms_norm(x, weight, eps=0.0)
    np.testing.assert_allclose(np.sqrt(np.mean((out / weight) ** 2)), 1.0, rtol=1e-9)
    np.testing.assert_allclose(out / weight * np.sqrt(np.mean(x * x)), x, rtol=1e-9, atol=1e-12)


def test_rms_norm_eps_keeps_zero_finite():
    assert np.all(ref.rms_norm(np.zeros(8), np.ones(8), 1e-5) == 0)


def test_rope_rotates_adjacent_pairs():
    # head_dim 4: pair (x0, x1) turns by m * theta^0 = m rad, pair (x2, x3) by m * theta^(-1/2).
    x = np.array([[[1.0, 0.0, 1.0, 0.0]]])  # (T=1, heads=1, head_dim=4)
    out = ref.apply_rope(x, np.array([2]), theta=100.0)[0, 0]
    np.testing.assert_allclose(out, [np.cos(2), np.sin(2), np.cos(0.2), np.sin(0.2)], rtol=1e-12)


def test_rope_at_position_zero_is_identity():
    x = np.random.default_rng(0).standard_normal((1, 3, 16))
    np.testing.assert_array_equal(ref.apply_rope(x, np.array([0]), 10000.0), x)


@settings(max_examples=30)
@given(st.integers(0, 2000), st.integers(0, 2000), st.integers(-500, 500))
def test_rope_preserves_norm_and_scores_depend_on_distance(m, n, shift):
    rng = np.random.default_rng(m * 7919 + n)
    q, k = rng.standard_normal((2, 1, 1, 32))
    rq = ref.apply_rope(q, np.array([m]), 10000.0)
    np.testing.assert_allclose(np.linalg.norm(rq), np.linalg.norm(q), rtol=1e-12)
    score = lambda a, b: float(np.sum(ref.apply_rope(q, np.array([a]), 10000.0) * ref.apply_rope(k, np.array([b]), 10000.0)))  # noqa: E731
    m2, n2 = m + shift, n + shift
    if m2 >= 0 and n2 >= 0:
        np.testing.assert_allclose(score(m, n), score(m2, n2), rtol=1e-9, atol=1e-9)


def naive_attention(q, k, v, kv_head_of):
    """Loops written straight from the spec: one head, one query at a time."""
    n_tokens, n_heads, head_dim = q.shape
    out = np.zeros((n_tokens, n_heads, head_dim))
    for h in range(n_heads):
        j = kv_head_of(h)
        for i in range(n_tokens):
            scores = np.array([q[i, h] @ k[s, j] / np.sqrt(head_dim) for s in range(i + 1)])
            p = np.exp(scores - scores.max())
            out[i, h] = (p / p.sum()) @ v[: i + 1, j]
    return out.reshape(n_tokens, -1)


@pytest.mark.parametrize("n_heads, n_kv_heads", [(4, 4), (4, 2), (6, 3), (4, 1)])
def test_attention_matches_naive_loops(n_heads, n_kv_heads):
    rng = np.random.default_rng(n_heads * 10 + n_kv_heads)
    q = rng.standard_normal((5, n_heads, 8))
    k, v = rng.standard_normal((2, 5, n_kv_heads, 8))
    n_rep = n_heads // n_kv_heads
    got = ref.attention(q, k, v, np.arange(5))
    np.testing.assert_allclose(got, naive_attention(q, k, v, lambda h: h // n_rep), rtol=1e-12)
    if n_kv_heads not in (1, n_heads):  # the other plausible mapping gives other numbers
        assert not np.allclose(got, naive_attention(q, k, v, lambda h: h % n_kv_heads))


def test_gqa_with_all_heads_is_multi_head_attention():
    # n_kv_heads == n_heads: each query head has its own key/value head, no sharing.
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((3, 6, 4, 8))
    got = ref.attention(q, k, v, np.arange(6))
    for h in range(4):
        scores = q[:, h] @ k[:, h].T / np.sqrt(8) + np.triu(np.full((6, 6), -np.inf), 1)
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        np.testing.assert_allclose(got[:, h * 8 : (h + 1) * 8], (p / p.sum(axis=1, keepdims=True)) @ v[:, h], rtol=1e-12)


# --- the model -----------------------------------------------------------------------


def test_causal_mask_hides_the_future(golden):
    _, model, arrays = golden
    tokens = arrays["tokens"].copy()
    before = ref.forward(model, tokens)
    tokens[15:] = (tokens[15:] + 1) % 256
    after = ref.forward(model, tokens)
    np.testing.assert_array_equal(after[:15], before[:15])
    assert not np.allclose(after[15:], before[15:])


@pytest.mark.parametrize("chunks", [[24], [1] * 24, [8, 1, 1, 14], [5, 19]])
def test_kv_cache_decode_equals_full_forward(golden, chunks):
    _, model, arrays = golden
    tokens = arrays["tokens"]
    full = ref.forward(model, tokens)
    cache, rows, start = ref.KVCache(model.config), [], 0
    for size in chunks:
        rows.append(ref.forward(model, tokens[start : start + size], cache))
        start += size
    assert cache.length == 24
    np.testing.assert_allclose(np.concatenate(rows), full, rtol=1e-10, atol=1e-12)


def test_decode_step_continues_the_cache(golden):
    _, model, arrays = golden
    tokens = arrays["tokens"]
    cache = ref.KVCache(model.config)
    ref.forward(model, tokens[:10], cache)
    np.testing.assert_allclose(ref.decode_step(model, cache, int(tokens[10])), ref.forward(model, tokens[:11])[10], rtol=1e-10)
    assert cache.length == 11


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reference_reproduces_goldens(golden, dtype):
    # float64 is how the goldens were made; float32 shows the tolerance is met by a
    # float32 implementation, as the Go engine and JAX must.
    name, _, arrays = golden
    model = ref.load_model(GOLDENS / f"{name}.gguf", dtype)
    trace = {}
    ref.forward(model, arrays["tokens"], trace=trace)
    assert set(trace) == {k for k in arrays if k != "tokens" and not k.startswith("decode.")}
    failures = [m for key, value in trace.items() if (m := mismatch(f"{name}:{key}", value, arrays[key]))]
    assert not failures, "\n".join(failures)


def test_reference_reproduces_decode_goldens(golden):
    name, _, arrays = golden
    model = ref.load_model(GOLDENS / f"{name}.gguf", np.float32)
    from jaxmodel.sampler import Sampler

    tokens, logits = ref.generate(model, arrays["decode.prompt"], len(arrays["decode.tokens"]), Sampler(temperature=0))
    np.testing.assert_array_equal(tokens, arrays["decode.tokens"])
    assert mismatch(f"{name}:decode.logits", logits, arrays["decode.logits"]) is None
    # Row 0 is the last prefill position: the same numbers as the full forward there.
    np.testing.assert_array_equal(arrays["decode.logits"][0], arrays["logits"][len(arrays["decode.prompt"]) - 1])


def rope_on_halves(x, positions, theta, freq_factors=None, scale=1.0):
    """The 'rotate-half' layout (pairs i, i + head_dim/2): a plausible bug for this spec."""
    half = x.shape[-1] // 2
    angles = ref.rope_angles(positions, x.shape[-1], theta, freq_factors, scale)[:, None, :]
    x0, x1 = x[..., :half], x[..., half:]
    return np.concatenate([x0 * np.cos(angles) - x1 * np.sin(angles), x0 * np.sin(angles) + x1 * np.cos(angles)], -1)


_attention = ref.attention  # the real one, before a test patches the module


def attention_wrong_kv_head(q, k, v, q_positions):
    n_rep = q.shape[1] // k.shape[1]
    return _attention(q, np.tile(k, (1, n_rep, 1))[:, : q.shape[1]], np.tile(v, (1, n_rep, 1))[:, : q.shape[1]], q_positions)


BUGS = {
    "rope on halves": ("apply_rope", rope_on_halves),
    "kv head h % n_kv": ("attention", attention_wrong_kv_head),
    "no 1/sqrt(head_dim)": ("attention", lambda q, k, v, p, f=ref.attention: f(q * np.sqrt(q.shape[-1]), k, v, p)),
    "norm without weight": ("rms_norm", lambda x, w, eps, f=ref.rms_norm: f(x, np.ones_like(w), eps)),
    "mask off by one": ("attention", lambda q, k, v, p, f=ref.attention: f(q, k, v, np.maximum(p - 1, 0))),
    "eps outside sqrt": ("rms_norm", lambda x, w, eps: x / (np.sqrt(np.mean(x * x, -1, keepdims=True)) + 0.1) * w),
}


@pytest.mark.parametrize("bug", BUGS)
def test_tolerance_catches_real_bugs(monkeypatch, bug):
    # The goldens' tolerance is only useful if a wrong implementation falls outside it.
    arrays = read_arrays(GOLDENS / "gqa.activations.gguf").arrays
    model = ref.load_model(GOLDENS / "gqa.gguf", np.float32)
    function, replacement = BUGS[bug]
    monkeypatch.setattr(ref, function, replacement)
    assert mismatch("logits", ref.forward(model, arrays["tokens"]), arrays["logits"]) is not None


def test_mismatch_names_tensor_index_and_values():
    message = mismatch("blk.0.attn_out", np.array([[1.0, 2.0], [3.0, 4.5]]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert message.startswith("blk.0.attn_out[1, 1]: got 4.5, golden 4") and "1 of 4 values off" in message
    assert mismatch("x", np.array([1.00005]), np.array([1.0])) is None
    assert "shape" in mismatch("x", np.zeros(3), np.zeros(4))
    assert mismatch("x", np.array([np.nan]), np.array([1.0])) is not None


def test_bad_inputs_are_clear_errors(golden):
    _, model, _ = golden
    with pytest.raises(ValueError, match="token id 320 is outside the vocabulary"):
        ref.forward(model, [1, 320])
    with pytest.raises(ValueError, match="65 positions exceed the context length 64"):
        ref.forward(model, np.zeros(65, int))
    cache = ref.KVCache(model.config)
    ref.forward(model, np.zeros(64, int), cache)
    with pytest.raises(ValueError, match="65 positions exceed the context length 64"):
        ref.decode_step(model, cache, 1)
    with pytest.raises(ValueError, match="non-empty"):
        ref.forward(model, [])


def test_generate_stops_at_the_context(tmp_path):
    config = dataclasses.replace(load_config(CONFIGS / "goldens-gqa.yaml"), context_length=12)
    from jaxmodel.gguf_io import write_model
    from jaxmodel.sampler import Sampler

    write_model(tmp_path / "m.gguf", config, random_weights(config, 3), placeholder_vocabulary(320))
    model = ref.load_model(tmp_path / "m.gguf")
    tokens, logits = ref.generate(model, [1, 2, 3, 4], 100, Sampler(temperature=0))
    assert len(tokens) == 12 - 4 + 1 and logits.shape == (9, 320)


def test_cli_prints_the_logits_as_goengine_does():
    import json

    cli = [sys.executable, "-m", "jaxmodel.reference"]
    bare = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
    assert bare.returncode == 2 and bare.stderr.startswith("usage: python -m jaxmodel.reference") and "Traceback" not in bare.stderr
    run = subprocess.run([*cli, "logits", "--model", str(GOLDENS / "gqa.gguf"), "--tokens", "312 5 80"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    np.testing.assert_array_equal(np.array(json.loads(run.stdout)), ref.forward(ref.load_model(GOLDENS / "gqa.gguf"), [312, 5, 80]))
    for args, code, message in [
        (["--model", str(GOLDENS / "gqa.gguf"), "--tokens", "312 x"], 2, "--tokens: 'x' is not a token id"),
        (["--model", str(GOLDENS / "gqa.gguf"), "--tokens", "99999"], 1, "error: token id 99999 is outside the vocabulary (0..319)"),
        (["--model", str(GOLDENS), "--tokens", "1"], 1, "a directory, not a file: --model takes a .gguf model file"),
        (["--model", str(ROOT / "README.md"), "--tokens", "1"], 1, "README.md: not a readable GGUF file"),
    ]:
        bad = subprocess.run([*cli, "logits", *args], capture_output=True, text=True, cwd=ROOT)
        assert bad.returncode == code and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
