"""NumPy reference of the model in spec/model.md: the goldens come from here.

Imports no JAX (a test proves it): it is the plain statement of the math that the
JAX model and the Go engine are both checked against. Each op is a small function
named as in the spec. By default it computes in float64 from the file's float32
weights, so the goldens hold the exact math rounded once to float32.

    model = load_model("goldens/gqa.gguf")
    logits = forward(model, tokens)                 # (T, vocab_size), full sequence
    cache = KVCache(model.config)
    logits = forward(model, prompt, cache)          # prefill: positions 0..P-1
    next_logits = decode_step(model, cache, token)  # one token at position P

From the shell, the logits of every position as JSON rows, as `goengine logits` prints them:

    python -m jaxmodel.reference logits --model goldens/gqa.gguf --tokens "312 5 80"
    python -m jaxmodel.reference classify --model goldens/classifier.gguf --text "a story"   # JSON lines
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from jaxmodel.config import ModelConfig
from jaxmodel.gguf_io import GGUFError, read_model
from jaxmodel.sampler import Sampler
from jaxmodel.tokenizer import Vocabulary


@dataclasses.dataclass
class Model:
    """Config, tokenizer and weights (spec tensor names -> arrays in compute dtype)."""

    config: ModelConfig
    vocab: Vocabulary
    weights: dict[str, np.ndarray]
    labels: list[str] = dataclasses.field(default_factory=list)  # a classifier's (spec/finetune.md §6)
    rope_scale: float = 1.0  # linear RoPE scaling's factor; weights may hold rope_freqs.weight (spec/model.md §7.2)

    def weight(self, name: str) -> np.ndarray:
        return self.weights[name]

    @property
    def output_weight(self) -> np.ndarray:
        """The output head: its own matrix, or the token embedding when tied."""
        return self.weights.get("output.weight", self.weights["token_embd.weight"])


def load_model(path: str | Path, dtype: type = np.float64, tokenizer: bool = True) -> Model:
    """Reads a GGUF model file (checked against the profile) and casts weights to `dtype`.
    Without `tokenizer` its vocabulary is not read (vocab None: logits from token ids only)."""
    file = read_model(path, tokenizer=tokenizer)
    weights = {name: tensor.astype(dtype) for name, tensor in file.tensors.items()}
    return Model(file.config, file.vocab, weights, file.labels, file.rope_scale)


class KVCache:
    """Keys (after RoPE) and values of every layer for positions 0..length-1."""

    def __init__(self, config: ModelConfig, dtype: type = np.float64):
        shape = (config.n_layers, config.context_length, config.n_kv_heads, config.head_dim)
        self.k = np.zeros(shape, dtype)  # (n_layers, context_length, n_kv_heads, head_dim)
        self.v = np.zeros(shape, dtype)
        self.length = 0  # positions filled so far


# --- the ops -------------------------------------------------------------------------


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """x / sqrt(mean(x^2) + eps) * weight, over the last axis."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope_angles(positions: np.ndarray, head_dim: int, theta: float, freq_factors: np.ndarray | None = None,
                scale: float = 1.0) -> np.ndarray:
    """m * theta_i for each position m and pair i: (T, head_dim // 2), float64, where
    theta_i = theta^(-2i/head_dim), divided by freq_factors[i] and by the linear scale
    when a published file has them (spec/model.md §7.2)."""
    i = np.arange(head_dim // 2, dtype=np.float64)
    inv_freq = theta ** (-2.0 * i / head_dim)
    if freq_factors is not None:
        inv_freq = inv_freq / np.asarray(freq_factors, np.float64)
    inv_freq = inv_freq / scale
    return positions.astype(np.float64)[:, None] * inv_freq[None, :]


def apply_rope(x: np.ndarray, positions: np.ndarray, theta: float, freq_factors: np.ndarray | None = None,
               scale: float = 1.0) -> np.ndarray:
    """Rotates adjacent pairs (x[2i], x[2i+1]) of each head by angle m * theta_i.

    x: (T, n_heads, head_dim); positions: (T,) absolute positions.
    """
    angles = rope_angles(positions, x.shape[-1], theta, freq_factors, scale)[:, None, :]  # (T, 1, head_dim // 2)
    cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, q_positions: np.ndarray) -> np.ndarray:
    """Causal grouped-query attention.

    q: (T, n_heads, head_dim) at absolute positions q_positions (T,);
    k, v: (S, n_kv_heads, head_dim) for positions 0..S-1. Query head h reads KV head
    h // n_rep. Returns (T, n_heads * head_dim).
    """
    n_tokens, n_heads, head_dim = q.shape
    n_rep = n_heads // k.shape[1]
    k = np.repeat(k, n_rep, axis=1)  # (S, n_heads, head_dim): KV head j serves heads j*n_rep..
    v = np.repeat(v, n_rep, axis=1)
    scores = np.einsum("thd,shd->hts", q, k) / np.sqrt(head_dim)  # (n_heads, T, S)
    future = np.arange(k.shape[0])[None, :] > q_positions[:, None]  # (T, S): key after query
    scores = np.where(future[None], -np.inf, scores)
    out = np.einsum("hts,shd->thd", softmax(scores), v)  # (T, n_heads, head_dim)
    return out.reshape(n_tokens, n_heads * head_dim)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def swiglu(x: np.ndarray, w_gate: np.ndarray, w_up: np.ndarray, w_down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(silu(x W_gate^T) * (x W_up^T)) W_down^T; also returns the hidden (T, ffn_dim)."""
    hidden = silu(x @ w_gate.T) * (x @ w_up.T)
    return hidden @ w_down.T, hidden


# --- the model -----------------------------------------------------------------------


def block(model: Model, layer: int, x: np.ndarray, positions: np.ndarray, cache: KVCache | None, trace: dict | None) -> np.ndarray:
    """One transformer block on the residual stream x: (T, dim) -> (T, dim)."""
    c = model.config
    w = lambda name: model.weight(f"blk.{layer}.{name}.weight")  # noqa: E731
    record = _recorder(trace, f"blk.{layer}.")
    n_tokens = x.shape[0]

    h = record("attn_norm", rms_norm(x, w("attn_norm"), c.norm_eps))
    q = (h @ w("attn_q").T).reshape(n_tokens, c.n_heads, c.head_dim)
    k = (h @ w("attn_k").T).reshape(n_tokens, c.n_kv_heads, c.head_dim)
    v = (h @ w("attn_v").T).reshape(n_tokens, c.n_kv_heads, c.head_dim)
    factors = model.weights.get("rope_freqs.weight")
    q = apply_rope(q, positions, c.rope_theta, factors, model.rope_scale)
    k = apply_rope(k, positions, c.rope_theta, factors, model.rope_scale)
    record("q_rope", q.reshape(n_tokens, -1))
    record("k_rope", k.reshape(n_tokens, -1))
    record("v", v.reshape(n_tokens, -1))
    if cache is not None:  # keys and values of all positions so far, this chunk included
        cache.k[layer, positions], cache.v[layer, positions] = k, v
        k, v = cache.k[layer, : positions[-1] + 1], cache.v[layer, : positions[-1] + 1]
    attn = record("attn", attention(q, k, v, positions))
    attn_out = record("attn_out", attn @ w("attn_output").T)
    x = record("attn_resid", x + attn_out)

    h = record("ffn_norm", rms_norm(x, w("ffn_norm"), c.norm_eps))
    ffn_out, hidden = swiglu(h, w("ffn_gate"), w("ffn_up"), w("ffn_down"))
    record("ffn_hidden", hidden)
    record("ffn_out", ffn_out)
    return record("out", x + ffn_out)


def forward(model: Model, tokens, cache: KVCache | None = None, trace: dict | None = None) -> np.ndarray:
    """Logits (T, vocab_size) for `tokens`.

    Without a cache the tokens are positions 0..T-1. With one they continue it at
    positions cache.length.., are appended to it, and attend to everything before.
    `trace`, if given, receives every intermediate activation by its golden name.
    """
    x = hidden_states(model, tokens, cache, trace)
    return _recorder(trace, "")("logits", x @ model.output_weight.T)  # (T, vocab_size)


def hidden_states(model: Model, tokens, cache: KVCache | None = None, trace: dict | None = None) -> np.ndarray:
    """The final-norm hidden state of every position (T, dim): what the heads read."""
    c = model.config
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.ndim != 1 or tokens.size == 0:
        raise ValueError(f"tokens must be a non-empty 1-D sequence, found shape {tokens.shape}")
    bad = tokens[(tokens < 0) | (tokens >= c.vocab_size)]
    if bad.size:
        raise ValueError(f"token id {bad[0]} is outside the vocabulary (0..{c.vocab_size - 1})")
    start = cache.length if cache is not None else 0
    if start + tokens.size > c.context_length:
        raise ValueError(f"{start + tokens.size} positions exceed the context length {c.context_length}")
    positions = np.arange(start, start + tokens.size)
    record = _recorder(trace, "")

    x = record("embeddings", model.weight("token_embd.weight")[tokens])  # (T, dim)
    for layer in range(c.n_layers):
        x = block(model, layer, x, positions, cache, trace)
    x = record("output_norm", rms_norm(x, model.weight("output_norm.weight"), c.norm_eps))
    if cache is not None:
        cache.length += tokens.size
    return x


# --- classification (spec/finetune.md §6) ------------------------------------------------


def classifier_tokens(text: str, vocab: Vocabulary, encoding=None) -> list[int]:
    """What a classifier reads: BOS, then the text as ordinary text (special-token text
    included). Its last id is the last real token, whose hidden state is classified.
    `encoding` is `tokenizer.encoding(vocab)`, made here when not given."""
    if encoding is None:
        from jaxmodel.tokenizer import encoding as make_encoding

        encoding = make_encoding(vocab)
    return [vocab.bos_id, *encoding.encode_ordinary(text)]


def classify(model: Model, tokens) -> np.ndarray:
    """Class logits (n_classes,): cls.output.weight times the last position's final-norm hidden state."""
    if not model.labels:
        raise ValueError("the model has no classifier head (no llama.classifier.output_labels)")
    return model.weight("cls.output.weight") @ hidden_states(model, tokens)[-1]


def decode_step(model: Model, cache: KVCache, token: int) -> np.ndarray:
    """Logits (vocab_size,) for one token at position cache.length, using the cache."""
    return forward(model, [token], cache)[0]


def generate(model: Model, prompt, max_tokens: int, sampler: Sampler) -> tuple[list[int], np.ndarray]:
    """Prefills `prompt`, then samples up to `max_tokens` tokens (fewer at the context end).

    Returns the new token ids and the logits each was drawn from (n, vocab_size).
    """
    cache = KVCache(model.config, model.weights["token_embd.weight"].dtype)
    logits = forward(model, prompt, cache)[-1]
    tokens, all_logits = [], []
    for step in range(max_tokens):
        token = sampler.sample(logits)
        tokens.append(token)
        all_logits.append(logits)
        if step + 1 == max_tokens or cache.length == model.config.context_length:
            break
        logits = decode_step(model, cache, token)
    return tokens, np.array(all_logits)


def _recorder(trace: dict | None, prefix: str):
    """A function that stores an activation under prefix+name (if tracing) and returns it."""

    def record(name: str, value: np.ndarray) -> np.ndarray:
        if trace is not None:
            trace[prefix + name] = value.copy()
        return value

    return record


def classify_texts(model: Model, texts) -> list[dict]:
    """{"label", "probs"} for each text: the JSON lines `goengine classify` prints."""
    from jaxmodel.tokenizer import encoding

    rows, enc = [], encoding(model.vocab)
    for text in texts:
        probs = softmax(classify(model, classifier_tokens(text, model.vocab, enc)))
        rows.append({"label": model.labels[int(np.argmax(probs))],
                     "probs": {label: float(p) for label, p in zip(model.labels, probs)}})
    return rows


def read_texts(path: Path) -> list[str]:
    """The "text" of every line of a JSONL file (other keys, such as "label", are ignored)."""
    from jaxmodel.documents import json_lines

    texts = []
    for number, item in json_lines(path):  # a DocumentError is a ValueError, as the CLI expects
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ValueError(f'{path}:{number}: expected an object with a "text" string')
        texts.append(item["text"])
    return texts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.reference", description="The NumPy reference of spec/model.md.")
    commands = parser.add_subparsers(dest="command", required=True)
    logits_cmd = commands.add_parser("logits", help="print the logits of every position for given token ids, as JSON")
    logits_cmd.add_argument("--model", type=Path, required=True, help="model file (.gguf)")
    logits_cmd.add_argument("--tokens", required=True, help='token ids separated by spaces, e.g. "1 50 60"')
    classify_cmd = commands.add_parser("classify", help='print {"label", "probs"} per text as JSON lines, as goengine classify does')
    classify_cmd.add_argument("--model", type=Path, required=True, help="a classifier model file (.gguf)")
    source = classify_cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="one text")
    source.add_argument("--jsonl", type=Path, help='a JSON Lines file of {"text": ...}')
    args = parser.parse_args(argv)
    if args.model.is_dir():
        print(f"error: {args.model}: a directory, not a file: --model takes a .gguf model file", file=sys.stderr)
        return 1
    if args.command == "classify":
        try:
            model = load_model(args.model)
            if not model.labels:
                raise ValueError(f"{args.model}: not a classifier (no llama.classifier.output_labels)")
            for row in classify_texts(model, [args.text] if args.text is not None else read_texts(args.jsonl)):
                print(json.dumps(row))
        except (GGUFError, ValueError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        return 0
    for field in args.tokens.split():
        if not field.lstrip("-").isdigit():
            logits_cmd.error(f"--tokens: {field!r} is not a token id")
    tokens = [int(field) for field in args.tokens.split()]
    if not tokens:
        logits_cmd.error("--tokens: at least one token id is needed")
    try:
        logits = forward(load_model(args.model), tokens)  # (T, vocab_size), float64
    except (GGUFError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(logits.tolist()))
    return 0


if __name__ == "__main__":
    from jaxmodel import cli

    sys.exit(cli.run(main))
