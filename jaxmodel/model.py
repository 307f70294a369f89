"""The Flax model of spec/model.md, for training.

Written with Flax NNX, the API the installed Flax (0.12) recommends: modules are
plain Python objects holding their parameters, so the code reads like the spec,
and `nnx.split`/`nnx.merge` turn a model into pure pytrees for `jax.jit` and
sharding. Every weight is stored as the spec stores it — the same name and the
same (out, in) shape as in the GGUF file — so converting to and from the spec's
tensors (`load_tensors`, `named_tensors`) is a renaming, used by the golden test
and by export alike.

Parameters are float32. `dtype` is the compute dtype of the matmuls (float32 on
CPU, bfloat16 on accelerators); RMSNorm, softmax and the logits stay float32.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxmodel.config import ModelConfig


def _normal(rngs: nnx.Rngs, shape: tuple[int, ...], std: float) -> nnx.Param:
    return nnx.Param(std * jax.random.normal(rngs.params(), shape, jnp.float32))


def _linear_weight(rngs: nnx.Rngs, out_dim: int, in_dim: int) -> nnx.Param:
    """A (out, in) matrix ~ N(0, 1/in): unit-scale inputs give unit-scale outputs."""
    return _normal(rngs, (out_dim, in_dim), 1 / math.sqrt(in_dim))


def linear(x: jax.Array, weight: jax.Array, dtype) -> jax.Array:
    """y = x W^T for W stored (out, in), multiplied in the compute dtype.

    The leading axes are flattened into one, so that the product and both of its
    gradients are plain 2-D matrix products: as a (B, T, in) einsum, XLA on a CPU
    contracted W's gradient over two axes at a third of the speed (spec/model.md is
    unchanged: the same sums, in the same order per output).
    """
    rows = x.reshape(-1, x.shape[-1]).astype(dtype)
    return (rows @ weight.astype(dtype).T).reshape(*x.shape[:-1], weight.shape[0])


def swiglu(x: jax.Array, w_gate: jax.Array, w_up: jax.Array, w_down: jax.Array, dtype) -> jax.Array:
    """(silu(x W_gate^T) * (x W_up^T)) W_down^T, the gated feed-forward of spec/model.md §10."""
    hidden = jax.nn.silu(linear(x, w_gate, dtype)) * linear(x, w_up, dtype)
    return linear(hidden, w_down, dtype)


def rms_norm(x: jax.Array, weight: jax.Array, eps: float) -> jax.Array:
    """x / sqrt(mean(x^2) + eps) * weight, always in float32."""
    x = x.astype(jnp.float32)
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope_angles(positions: np.ndarray, head_dim: int, theta: float) -> np.ndarray:
    """m * theta^(-2i/head_dim) for each position m and pair i: (T, head_dim // 2), float64.

    The positions are static under jit (0..T-1 of a training row), so the table is
    NumPy (spec/model.md §7.2) and becomes a constant: the reference's function, as is.
    """
    i = np.arange(head_dim // 2, dtype=np.float64)
    inv_freq = theta ** (-2.0 * i / head_dim)
    return np.asarray(positions, np.float64)[:, None] * inv_freq[None, :]


def apply_rope(x: jax.Array, positions: np.ndarray, theta: float) -> jax.Array:
    """Rotates adjacent pairs (x[2i], x[2i+1]) of each head by angle m * theta_i.

    x: (B, T, n_heads, head_dim); positions: (T,) absolute positions, static.
    """
    angles = rope_angles(positions, x.shape[-1], theta)[None, :, None, :]  # broadcast over batch and heads
    cos, sin = jnp.asarray(np.cos(angles), x.dtype), jnp.asarray(np.sin(angles), x.dtype)  # q, k and v share a dtype
    x0, x1 = x[..., 0::2], x[..., 1::2]
    rotated = jnp.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)
    return rotated.reshape(x.shape)


def attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
    """Causal grouped-query attention, softmax(q k^T / sqrt(hd) + causal mask) v, where
    query head h reads KV head h // n_rep (consecutive heads share, spec/model.md §8).

    q: (B, T, n_heads, hd); k, v: (B, T, n_kv_heads, hd). Returns (B, T, n_heads * hd).
    On accelerators jax.nn.dot_product_attention computes it with a fused (flash) kernel
    that never stores the T x T scores. On a CPU, XLA runs `_query_block` faster: the
    queries go in blocks, and a block reads only the keys up to its last position, so the
    upper triangle of the scores (about half of them) is never computed, and each block's
    scores stay small enough for the cache. At the demo's shapes (B 16, T 256, 4 heads of
    32) forward plus backward takes 15 ms against 38 ms for the whole T x T at once.
    """
    batch, n_tokens, n_heads, head_dim = q.shape
    if jax.default_backend() != "cpu":
        return jax.nn.dot_product_attention(q, k, v, is_causal=True).reshape(batch, n_tokens, n_heads * head_dim)
    n_rep = n_heads // k.shape[2]
    size = max(ATTENTION_BLOCK, ATTENTION_ROWS // n_rep, -(-n_tokens // MAX_ATTENTION_BLOCKS))
    blocks = [_query_block(q[:, start:start + size], k[:, :start + size], v[:, :start + size], start)
              for start in range(0, n_tokens, size)]
    return jnp.concatenate(blocks, axis=1)


# Queries per block on a CPU: at least ATTENTION_BLOCK, and enough that each product has
# ATTENTION_ROWS rows (a block's n_rep query heads of a KV head are its rows). Measured on 2
# cores, B 16, T 256, 4 heads of 32: with 4 KV heads (n_rep 1) blocks of 64 made the whole
# training step 13 % faster than blocks of 32 (204 against 235 ms), 128 were in between;
# with 2 KV heads (64 rows either way) 32 and 64 were level, and the seed's n_rep of 3 is
# fastest at 32 (96 rows).
ATTENTION_BLOCK = 32
ATTENTION_ROWS = 64
MAX_ATTENTION_BLOCKS = 16  # at long contexts the blocks grow instead, to keep the graph small


def _query_block(q: jax.Array, k: jax.Array, v: jax.Array, start: int) -> jax.Array:
    """Attention of the queries at positions start .. start + len(q) - 1 over keys 0 .. S - 1.

    q: (B, n, n_heads, hd); k, v: (B, S, n_kv_heads, hd). Returns (B, n, n_heads * hd).
    The n_rep query heads that share a KV head are stacked as rows, so that each product
    is one batched matrix product per (sequence, KV head).
    """
    batch, n_queries, n_heads, head_dim = q.shape
    n_keys, n_kv_heads = k.shape[1], k.shape[2]
    n_rep = n_heads // n_kv_heads
    # (B, n_kv_heads, n_rep * n, hd): row r * n + t is query head g * n_rep + r at position start + t
    rows = q.reshape(batch, n_queries, n_kv_heads, n_rep, head_dim).transpose(0, 2, 3, 1, 4)
    rows = rows.reshape(batch, n_kv_heads, n_rep * n_queries, head_dim)
    scores = jnp.matmul(rows, k.transpose(0, 2, 3, 1)).astype(jnp.float32) / math.sqrt(head_dim)  # (B, g, n_rep * n, S)
    query_pos = jnp.tile(jnp.arange(start, start + n_queries), n_rep)
    scores = jnp.where(query_pos[:, None] >= jnp.arange(n_keys)[None, :], scores, -jnp.inf)  # key s visible iff s <= t
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    out = jnp.matmul(probs, v.transpose(0, 2, 1, 3))  # (B, g, n_rep * n, hd)
    out = out.reshape(batch, n_kv_heads, n_rep, n_queries, head_dim).transpose(0, 3, 1, 2, 4)
    return out.reshape(batch, n_queries, n_heads * head_dim)


class Block(nnx.Module):
    """One pre-norm transformer block (spec/model.md §9); attributes are tensor names."""

    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        d, q_dim = config.dim, config.n_heads * config.head_dim
        self.attn_norm = nnx.Param(jnp.ones((d,), jnp.float32))
        self.attn_q = _linear_weight(rngs, q_dim, d)
        self.attn_k = _linear_weight(rngs, config.kv_dim, d)
        self.attn_v = _linear_weight(rngs, config.kv_dim, d)
        self.attn_output = _linear_weight(rngs, d, q_dim)
        self.ffn_norm = nnx.Param(jnp.ones((d,), jnp.float32))
        self.ffn_gate = _linear_weight(rngs, config.ffn_dim, d)
        self.ffn_up = _linear_weight(rngs, config.ffn_dim, d)
        self.ffn_down = _linear_weight(rngs, d, config.ffn_dim)
        self.config = config

    def __call__(self, x: jax.Array, positions: np.ndarray, dtype) -> jax.Array:
        c = self.config
        batch, n_tokens, _ = x.shape
        h = rms_norm(x, self.attn_norm[...], c.norm_eps)
        q = linear(h, self.attn_q[...], dtype).reshape(batch, n_tokens, c.n_heads, c.head_dim)
        k = linear(h, self.attn_k[...], dtype).reshape(batch, n_tokens, c.n_kv_heads, c.head_dim)
        v = linear(h, self.attn_v[...], dtype).reshape(batch, n_tokens, c.n_kv_heads, c.head_dim)
        q, k = apply_rope(q, positions, c.rope_theta), apply_rope(k, positions, c.rope_theta)
        x = x + linear(attention(q, k, v), self.attn_output[...], dtype).astype(jnp.float32)

        h = rms_norm(x, self.ffn_norm[...], c.norm_eps)
        return x + swiglu(h, self.ffn_gate[...], self.ffn_up[...], self.ffn_down[...], dtype).astype(jnp.float32)


class Transformer(nnx.Module):
    """tokens (B, T) -> logits (B, T, vocab_size), float32.

    With n_classes > 0 it is also a classifier (spec/finetune.md §6): `classify` puts
    the head cls_output (n_classes, dim) on the last real token's final-norm hidden state.
    """

    def __init__(self, config: ModelConfig, rngs: nnx.Rngs, dtype=jnp.float32, n_classes: int = 0):
        self.config, self.dtype = config, dtype
        self.token_embd = _normal(rngs, (config.vocab_size, config.dim), 1 / math.sqrt(config.dim))
        self.blocks = nnx.List([Block(config, rngs) for _ in range(config.n_layers)])
        self.output_norm = nnx.Param(jnp.ones((config.dim,), jnp.float32))
        if not config.tie_embeddings:
            self.output = _linear_weight(rngs, config.vocab_size, config.dim)
        if n_classes:
            self.cls_output = _linear_weight(rngs, n_classes, config.dim)

    def hidden(self, tokens: jax.Array) -> jax.Array:
        """The final-norm hidden state of every position: (B, T, dim), float32."""
        c = self.config
        positions = np.arange(tokens.shape[1])  # every row starts at position 0
        x = self.token_embd[...][tokens]  # (B, T, dim), the residual stream in float32
        for block in self.blocks:
            x = block(x, positions, self.dtype)
        return rms_norm(x, self.output_norm[...], c.norm_eps)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        head = self.token_embd if self.config.tie_embeddings else self.output
        return linear(self.hidden(tokens), head[...], self.dtype).astype(jnp.float32)

    def classify(self, tokens: jax.Array, last: jax.Array) -> jax.Array:
        """Class logits (B, n_classes) from the hidden state at position last[b] of each row:
        its last real token. Padding comes after it, and causal attention keeps it unseen."""
        h = jnp.take_along_axis(self.hidden(tokens), last[:, None, None], axis=1)[:, 0]  # (B, dim)
        return linear(h, self.cls_output[...], self.dtype).astype(jnp.float32)


# --- spec tensor names <-> parameters ---------------------------------------------------

_BLOCK_TENSORS = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")


def _params_by_name(model: Transformer) -> dict[str, nnx.Param]:
    """Every parameter under its spec tensor name (spec/format.md §7)."""
    params = {"token_embd.weight": model.token_embd, "output_norm.weight": model.output_norm}
    if not model.config.tie_embeddings:
        params["output.weight"] = model.output
    if hasattr(model, "cls_output"):
        params["cls.output.weight"] = model.cls_output
    for layer, block in enumerate(model.blocks):
        params |= {f"blk.{layer}.{name}.weight": getattr(block, name) for name in _BLOCK_TENSORS}
    return params


def named_tensors(model: Transformer) -> dict[str, np.ndarray]:
    """The model's weights as the spec's named float32 arrays (for export)."""
    return {name: np.asarray(param[...], np.float32) for name, param in _params_by_name(model).items()}


def load_tensors(model: Transformer, tensors: dict[str, np.ndarray]) -> None:
    """Sets every parameter from the spec's named arrays (e.g. read from a GGUF file).

    A classifier's head may be missing: a language model fine-tuned into a classifier
    keeps its freshly initialised head."""
    params = _params_by_name(model)
    if "cls.output.weight" not in tensors:
        params.pop("cls.output.weight", None)
    if set(tensors) != set(params):
        missing, extra = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
        raise ValueError(f"tensors do not match the model: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, param in params.items():
        if tuple(tensors[name].shape) != tuple(param[...].shape):
            raise ValueError(f"tensor {name}: expected shape {tuple(param[...].shape)}, found {tuple(tensors[name].shape)}")
        param[...] = jnp.asarray(tensors[name], jnp.float32)
