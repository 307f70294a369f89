"""The Flax model reproduces the goldens and converts to and from the spec's tensors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import CONFIGS, GOLDENS
from jaxmodel.config import load_config
from jaxmodel.goldens import mismatch
from jaxmodel.gguf_io import read_arrays, read_model, tensor_shapes
from jaxmodel import reference
from jaxmodel.model import ATTENTION_BLOCK, ATTENTION_ROWS, MAX_ATTENTION_BLOCKS, Transformer, attention, load_tensors, named_tensors


def golden_model(name):
    file = read_model(GOLDENS / f"{name}.gguf")
    model = Transformer(file.config, nnx.Rngs(0))
    load_tensors(model, file.tensors)
    return model


@pytest.mark.parametrize("name", ["gqa", "mha"])
def test_reproduces_golden_logits(name):
    model = golden_model(name)
    golden = read_arrays(GOLDENS / f"{name}.activations.gguf").arrays
    with jax.default_matmul_precision("highest"):
        logits = model(jnp.asarray(golden["tokens"])[None])[0]
    assert logits.dtype == jnp.float32
    assert mismatch(f"{name}: logits", np.asarray(logits), golden["logits"]) is None


# Lengths around the query blocks' edges: shorter than one block, one short of and one past
# a multiple, and long enough that the blocks grow (more than MAX_ATTENTION_BLOCKS of them);
# with two query heads a KV head the blocks have ATTENTION_BLOCK queries, with one ATTENTION_ROWS.
@pytest.mark.parametrize("n_kv_heads", [2, 4])
@pytest.mark.parametrize("n_tokens", [1, ATTENTION_BLOCK - 1, ATTENTION_BLOCK + 1, 3 * ATTENTION_BLOCK,
                                      ATTENTION_ROWS + 1, 3 * ATTENTION_ROWS - 1, ATTENTION_BLOCK * MAX_ATTENTION_BLOCKS + 7])
def test_attention_in_query_blocks_equals_the_reference(n_tokens, n_kv_heads):
    rng = np.random.default_rng(n_tokens)
    q = rng.standard_normal((2, n_tokens, 4, 8)).astype(np.float32)
    k, v = (rng.standard_normal((2, n_tokens, n_kv_heads, 8)).astype(np.float32) for _ in range(2))
    with jax.default_matmul_precision("highest"):
        got = np.asarray(attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v)))
    for b in range(2):  # float32 sums of at most a few hundred terms of size ~1: 1e-5 is ample
        want = reference.attention(q[b].astype(np.float64), k[b], v[b], np.arange(n_tokens))
        np.testing.assert_allclose(got[b], want, rtol=1e-5, atol=1e-5)


def test_jit_and_batch_give_the_same_logits():
    model = golden_model("gqa")
    golden = read_arrays(GOLDENS / "gqa.activations.gguf").arrays
    tokens = jnp.stack([jnp.asarray(golden["tokens"]), jnp.asarray(golden["tokens"][::-1])])

    @nnx.jit
    def run(model, tokens):
        return model(tokens)

    with jax.default_matmul_precision("highest"):
        batched = run(model, tokens)
        single = model(tokens[1:])
    assert mismatch("row 0", np.asarray(batched[0]), golden["logits"]) is None
    np.testing.assert_allclose(batched[1], single[0], rtol=1e-5, atol=1e-5)


def test_named_tensors_round_trip_and_match_the_spec():
    for config_file in ("goldens-gqa.yaml", "goldens-mha.yaml"):
        config = load_config(CONFIGS / config_file)
        model = Transformer(config, nnx.Rngs(1))
        tensors = named_tensors(model)
        assert {n: t.shape for n, t in tensors.items()} == tensor_shapes(config)
        other = Transformer(config, nnx.Rngs(2))
        load_tensors(other, tensors)
        for name, value in named_tensors(other).items():
            np.testing.assert_array_equal(value, tensors[name], err_msg=name)


def test_load_tensors_rejects_wrong_input():
    model = Transformer(load_config(CONFIGS / "goldens-gqa.yaml"), nnx.Rngs(0))
    tensors = named_tensors(model)
    with pytest.raises(ValueError, match="missing \\['output.weight'\\]"):
        load_tensors(model, {k: v for k, v in tensors.items() if k != "output.weight"})
    with pytest.raises(ValueError, match=r"blk\.0\.attn_k\.weight: expected shape \(32, 64\), found \(64, 64\)"):
        load_tensors(model, tensors | {"blk.0.attn_k.weight": np.zeros((64, 64), np.float32)})


def test_bfloat16_compute_stays_close():
    # bfloat16 matmuls (accelerators) keep ~3 significant digits; the logits stay float32.
    model = golden_model("gqa")
    model.dtype = jnp.bfloat16
    golden = read_arrays(GOLDENS / "gqa.activations.gguf").arrays
    logits = model(jnp.asarray(golden["tokens"])[None])[0]
    assert logits.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(logits - golden["logits"]))) < 0.25
