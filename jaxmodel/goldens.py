"""Writes the golden files of spec/goldens.md from the NumPy reference.

    python -m jaxmodel.goldens --out goldens     # what `make goldens` runs

Everything comes from fixed seeds and the output is byte-identical on every run;
tests/test_goldens.py checks that the committed files equal a fresh run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gguf
import numpy as np
from gguf import GGUFValue, GGUFValueType

from jaxmodel import reference
from jaxmodel.config import ModelConfig, load_config
from jaxmodel.gguf_io import SCALE_OFFSETS, Blocks, tensor_shapes, tokenizer_metadata, write_arrays, write_model
from jaxmodel.sampler import Rng, Sampler
from jaxmodel.tokenizer import placeholder_vocabulary

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# golden model name -> (config file, weight seed)
MODELS = {"gqa": ("goldens-gqa.yaml", 1), "mha": ("goldens-mha.yaml", 2)}
SEQUENCE_LENGTH = 24  # tokens in the full-forward golden
PROMPT_LENGTH = 8  # prefill length of the decode golden
DECODE_STEPS = 16  # greedy steps after the prefill
N_SPECIAL = 8

# A float32 implementation matches every activation and logit within
# |got - want| <= ATOL + RTOL * |want| (spec/goldens.md, "Tolerances", says why).
ATOL = 1e-4
RTOL = 1e-4


def mismatch(name: str, got: np.ndarray, want: np.ndarray, atol: float = ATOL, rtol: float = RTOL) -> str | None:
    """None if `got` matches the golden `want`; else a message naming the tensor,
    the worst index and both values."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return f"{name}: shape {got.shape}, golden has {want.shape}"
    excess = np.abs(got - want) - (atol + rtol * np.abs(want))
    excess[np.isnan(got)] = np.inf
    if not np.any(excess > 0):
        return None
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), excess.shape))
    bad = int(np.sum(excess > 0))
    return (
        f"{name}{list(index)}: got {got[index]:.7g}, golden {want[index]:.7g} "
        f"(|diff| {abs(got[index] - want[index]):.3g} > {atol:g} + {rtol:g}*|golden|; {bad} of {excess.size} values off)"
    )


def random_weights(config: ModelConfig, seed: int, n_classes: int = 0) -> dict[str, np.ndarray]:
    """Weights that keep activations and logits O(1): every matrix N(0, 1/shape[1])
    (token_embd too, so a tied head's logits stay O(1)), norm weights 1 + 0.1 N(0, 1)
    so that a forgotten weight multiply shows."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in tensor_shapes(config, n_classes).items():
        if len(shape) == 1:
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            value = rng.standard_normal(shape) / np.sqrt(shape[1])
        weights[name] = value.astype(np.float32)
    return weights


# The quants golden (spec/goldens.md §2.6): each matrix in one of ggml's types, so that one
# file holds them all, mixed as a published file mixes them. Q8_0 is left out: the fast
# path multiplies it with activations quantized to int8, which is not within the float32
# tolerance (spec/goldens.md §5); the F32-vs-Q8_0 tests cover it.
QUANTS_SEED = 3
QUANTS_ROWS = 2
QUANTS_TYPES = {
    "token_embd.weight": "Q4_K",
    "blk.0.attn_q.weight": "Q4_0", "blk.0.attn_k.weight": "BF16", "blk.0.attn_v.weight": "F16",
    "blk.0.attn_output.weight": "Q5_1", "blk.0.ffn_gate.weight": "Q2_K", "blk.0.ffn_up.weight": "Q3_K",
    "blk.0.ffn_down.weight": "Q5_K",
    "blk.1.attn_q.weight": "Q5_0", "blk.1.attn_k.weight": "Q4_1", "blk.1.attn_v.weight": "Q6_K",
    "blk.1.attn_output.weight": "Q3_K", "blk.1.ffn_gate.weight": "Q4_K", "blk.1.ffn_up.weight": "Q6_K",
    "blk.1.ffn_down.weight": "Q2_K",
}


def random_blocks(qtype: str, shape: tuple[int, int], std: float, rng: np.random.Generator) -> Blocks:
    """A (rows, cols) matrix of random but valid `qtype` blocks whose values have mean ~0
    and standard deviation ~`std` per block: random quant and sub-block scale bytes, then
    the float16 super-scales chosen to give that mean and spread. The values are whatever
    ggml makes of these bytes; no quantizer is involved, so every type is made the same way.
    F16 and BF16 are N(0, std²) values rounded to the type."""
    kind = gguf.GGMLQuantizationType[qtype]
    if qtype in ("F16", "BF16"):
        value = (rng.standard_normal(shape) * std).astype(np.float32)
        return Blocks(np.ascontiguousarray(gguf.quants.quantize(value, kind)).view(np.uint8), kind)
    values, size = gguf.GGML_QUANT_SIZES[kind]
    rows, cols = shape
    blocks = rng.integers(0, 256, (rows * cols // values, size), dtype=np.uint8)
    d_at, *m_at = SCALE_OFFSETS[kind]

    def decoded(d: float, m: float) -> np.ndarray:  # the blocks' values with every d = d, m (or dmin) = m
        trial = blocks.copy()
        trial[:, d_at:d_at + 2] = np.full((len(blocks), 1), d, "<f2").view(np.uint8)
        for offset in m_at:
            trial[:, offset:offset + 2] = np.full((len(blocks), 1), m, "<f2").view(np.uint8)
        return gguf.quants.dequantize(trial, kind).astype(np.float64).reshape(len(blocks), values)

    # Values are linear in the scales: x = d * by_d + m * by_m (by_m is 1 for Q4_1's and
    # Q5_1's offset m, minus the sub-block mins for the K-quants' dmin).
    by_d, by_m = decoded(1.0, 0.0), decoded(0.0, 1.0)
    ratio = np.zeros(len(blocks))  # m / d that centres each block
    if m_at:
        mean_m = by_m.mean(axis=1)
        ratio = np.divide(-by_d.mean(axis=1), mean_m, out=np.zeros(len(blocks)), where=mean_m != 0)
    spread = (by_d + ratio[:, None] * by_m).std(axis=1)
    d = np.divide(std, spread, out=np.zeros(len(blocks)), where=spread > 0)
    blocks[:, d_at:d_at + 2] = d.astype("<f2")[:, None].view(np.uint8)
    for offset in m_at:
        blocks[:, offset:offset + 2] = (ratio * d).astype("<f2")[:, None].view(np.uint8)
    return Blocks(blocks.reshape(rows, -1), kind)


def quants_weights(config: ModelConfig, seed: int) -> dict[str, np.ndarray | Blocks]:
    """random_weights' scales (N(0, 1/in) matrices, norms 1 + 0.1 N(0, 1)) in QUANTS_TYPES."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in tensor_shapes(config).items():
        if len(shape) == 1:
            weights[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            weights[name] = random_blocks(QUANTS_TYPES[name], shape, 1 / np.sqrt(shape[1]), rng)
    return weights


# The RoPE golden (spec/goldens.md §2.7): LLaMA 3.1-style frequency factors (one per pair
# of a head's 8 values, from 1 to 8 so that every pair turns at another rate) and linear
# scaling by 4 (positions 0..63 turn as 0..16 would).
ROPE_SEED = 4
ROPE_FREQS = np.array([1.0, 1.5, 3.0, 8.0], np.float32)
ROPE_SCALE = 4.0


def write_rope_goldens(out: Path) -> list[Path]:
    config = load_config(CONFIGS / "goldens-rope.yaml")
    model_path = out / "rope.gguf"
    weights = random_weights(config, ROPE_SEED) | {"rope_freqs.weight": ROPE_FREQS}
    write_model(model_path, config, weights, placeholder_vocabulary(config.vocab_size, N_SPECIAL),
                name="gollm-goldens-rope", rope_scale=ROPE_SCALE)
    arrays, metadata = model_goldens("rope", reference.load_model(model_path), ROPE_SEED)
    write_arrays(out / "rope.activations.gguf", arrays, metadata)
    return [model_path, out / "rope.activations.gguf"]


def write_quants_goldens(out: Path) -> list[Path]:
    config = load_config(CONFIGS / "goldens-quants.yaml")
    model_path = out / "quants.gguf"
    vocab = placeholder_vocabulary(config.vocab_size, N_SPECIAL)
    write_model(model_path, config, quants_weights(config, QUANTS_SEED), vocab, name="gollm-goldens-quants")
    model = reference.load_model(model_path)
    arrays, metadata = model_goldens("quants", model, QUANTS_SEED, per_layer=False)
    # Two rows of every matrix as ggml dequantizes them (gguf.quants, float32), to check each
    # type's decoder on its own before the model's logits check them all together.
    arrays |= {f"rows.{name}": value[:QUANTS_ROWS].astype(np.float32)
               for name, value in model.weights.items() if value.ndim == 2}
    write_arrays(out / "quants.activations.gguf", arrays, metadata)
    return [model_path, out / "quants.activations.gguf"]


def model_goldens(name: str, model: reference.Model, seed: int, per_layer: bool = True) -> tuple[dict, dict]:
    """Activations of a full forward and the logits of a greedy KV-cache decode; without
    `per_layer`, only the embeddings, the final norm and the logits of the forward."""
    rng = np.random.default_rng(seed + 1000)
    n_ordinary = len(model.vocab.mergeable_ranks)  # random ids avoid the special tokens
    tokens = np.concatenate([[model.vocab.bos_id], rng.integers(0, n_ordinary, SEQUENCE_LENGTH - 1)])
    trace: dict[str, np.ndarray] = {}
    reference.forward(model, tokens, trace=trace)

    prompt = tokens[:PROMPT_LENGTH]
    decoded, logits = reference.generate(model, prompt, DECODE_STEPS, Sampler(temperature=0))
    for step, row in enumerate(logits):
        second, top = np.sort(row)[-2:]
        # Implementations each within tolerance of the golden can then never swap the top two.
        if top - second <= 2 * (ATOL + RTOL * abs(top)):
            raise RuntimeError(f"{name}: decode step {step}: top-2 margin {top - second:.2e} is within the tolerance; change the seed")

    arrays = {"tokens": tokens.astype(np.int32)}
    arrays |= {key: value.astype(np.float32) for key, value in trace.items() if per_layer or not key.startswith("blk.")}
    arrays |= {
        "decode.prompt": prompt.astype(np.int32),
        "decode.tokens": np.array(decoded, dtype=np.int32),
        "decode.logits": logits.astype(np.float32),
    }
    metadata = {
        "goldens.model": GGUFValue(f"{name}.gguf", GGUFValueType.STRING),
        "goldens.decode.prompt_length": GGUFValue(PROMPT_LENGTH, GGUFValueType.UINT32),
        "goldens.decode.steps": GGUFValue(DECODE_STEPS, GGUFValueType.UINT32),
    }
    return arrays, metadata


RNG_SEEDS = (0, 1, 42, 2**64 - 1)
SAMPLER_VOCAB = 64
SAMPLER_DRAWS = 16
# (temperature, top_k, top_p, seed, logits tweak)
SAMPLER_CASES = (
    (0.0, 0, 1.0, 0, "tie_at_top"),  # greedy; the lowest of two tied ids wins
    (1.0, 0, 1.0, 1, None),
    (0.3, 0, 1.0, 2, None),
    (2.0, 0, 1.0, 3, None),
    (1.0, 1, 1.0, 4, None),  # top-k 1: always the argmax, still one draw each
    (1.0, 5, 1.0, 5, None),
    (0.8, 0, 0.9, 6, None),
    (1.2, 10, 0.7, 7, None),
    (1.0, 4, 1.0, 8, "tie_at_k"),  # ranks 4 and 5 tie; the lower id is kept
    (1.0, 0, 0.01, 2**63 + 5, None),  # top-p so small that only the top token survives
)


def sampler_goldens() -> tuple[dict, dict]:
    metadata = {"rng.count": GGUFValue(len(RNG_SEEDS), GGUFValueType.UINT32)}
    for k, seed in enumerate(RNG_SEEDS):
        rng = Rng(seed)
        metadata[f"rng.{k}.seed"] = GGUFValue(seed, GGUFValueType.UINT64)
        metadata[f"rng.{k}.next_u64"] = GGUFValue([rng.next_u64() for _ in range(8)], GGUFValueType.ARRAY, GGUFValueType.UINT64)
        metadata[f"rng.{k}.uniform"] = GGUFValue([rng.uniform() for _ in range(8)], GGUFValueType.ARRAY, GGUFValueType.FLOAT64)

    data_rng = np.random.default_rng(7)
    arrays = {}
    metadata["sampler.count"] = GGUFValue(len(SAMPLER_CASES), GGUFValueType.UINT32)
    for k, (temperature, top_k, top_p, seed, tweak) in enumerate(SAMPLER_CASES):
        logits = (2.0 * data_rng.standard_normal(SAMPLER_VOCAB)).astype(np.float32)
        order = np.argsort(-logits, kind="stable")
        if tweak == "tie_at_top":
            logits[max(order[0], order[1])] = logits[min(order[0], order[1])] = logits[order[0]]
        elif tweak == "tie_at_k":
            logits[order[4]] = logits[order[3]]
        sampler = Sampler(temperature, top_k, top_p, seed)
        ids = [sampler.sample(logits) for _ in range(SAMPLER_DRAWS)]
        if temperature > 0:
            _check_draws_clear_of_boundaries(k, Sampler(temperature, top_k, top_p, seed), logits)
        arrays[f"sampler.{k}.logits"] = logits
        metadata |= {
            f"sampler.{k}.temperature": GGUFValue(temperature, GGUFValueType.FLOAT64),
            f"sampler.{k}.top_k": GGUFValue(top_k, GGUFValueType.UINT32),
            f"sampler.{k}.top_p": GGUFValue(top_p, GGUFValueType.FLOAT64),
            f"sampler.{k}.seed": GGUFValue(seed, GGUFValueType.UINT64),
            f"sampler.{k}.ids": GGUFValue(ids, GGUFValueType.ARRAY, GGUFValueType.INT32),
            # the stream position after the samples: catches a skipped or extra draw
            f"sampler.{k}.next_u64": GGUFValue(sampler.rng.next_u64(), GGUFValueType.UINT64),
        }
    return arrays, metadata


def _check_draws_clear_of_boundaries(case: int, sampler: Sampler, logits: np.ndarray) -> None:
    """Every draw's u must sit far from a cumulative-probability boundary, so that
    last-ulp differences in exp between languages cannot change the id."""
    _, probs = sampler.candidates(logits)
    boundaries = np.cumsum(probs)
    for draw in range(SAMPLER_DRAWS):
        u = sampler.rng.uniform()
        if np.min(np.abs(boundaries - u)) < 1e-9:
            raise RuntimeError(f"sampler case {case}, draw {draw}: u = {u} is within 1e-9 of a boundary; change the seed")


# (text, special tokens recognised?): the categories of spec/goldens.md §2.4
TOKENIZER_CASES = (
    ("the little robot rolled into the garden.", False),
    ("Hello, World! It's 3:45pm; they'LL say 'hi'.", False),
    ("café naïve façade Ærø Ünïcödé", False),
    ("日本語のテキスト, 中文, 한국어", False),
    ("emoji 🦙🤖👍🏽 and ZWJ 👨‍👩‍👧", False),
    ("digits 1 12 123 1234 12345 1234567 ½ Ⅻ ٣٤٥", False),
    ("spaces   hi\t\ttabs\n\n\nnewlines  \n  trailing   ", False),
    ("def forward(x):\r\n    return x @ w.T  # (T, dim)\r\n", False),
    ("\u00a0nbsp\u3000ideographic\u2028line", False),
    ("<|begin_of_text|>special text as ordinary text<|eot_id|>", False),
    ("<|begin_of_text|>hello<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi", True),
)


def tokenizer_goldens(vocab) -> dict:
    """Text -> ids by tiktoken with the golden models' vocabulary. The file carries the
    vocabulary's own tokenizer keys, so it is also a vocabulary-only GGUF file."""
    from jaxmodel.tokenizer import encoding

    enc = encoding(vocab)
    metadata = tokenizer_metadata(vocab) | {"tokenizer.count": GGUFValue(len(TOKENIZER_CASES), GGUFValueType.UINT32)}
    for k, (text, special) in enumerate(TOKENIZER_CASES):
        ids = enc.encode(text, allowed_special="all") if special else enc.encode_ordinary(text)
        if enc.decode(ids) != text:
            raise RuntimeError(f"tokenizer case {k}: decode(encode(text)) != text")
        metadata |= {
            f"tokenizer.{k}.text": GGUFValue(text, GGUFValueType.STRING),
            f"tokenizer.{k}.special": GGUFValue(special, GGUFValueType.BOOL),
            f"tokenizer.{k}.ids": GGUFValue(ids, GGUFValueType.ARRAY, GGUFValueType.INT32),
        }
    return metadata


CLASSIFIER_CONFIG, CLASSIFIER_SEED = "goldens-classifier.yaml", 3
CLASSIFIER_LABELS = ("alpha", "beta", "gamma", "δέλτα")  # one not ASCII: labels are UTF-8 strings
# Texts of several lengths: BOS alone (the empty text), one token, prose, special-token
# text read as ordinary text, and one that nearly fills the context of 64.
CLASSIFIER_TEXTS = (
    "",
    "a",
    "the little robot rolled into the garden.",
    "<|eot_id|> is ordinary text here",
    "Once upon a time, a small fox lived near the river. It looked for berries.",
)


def classifier_goldens(model: reference.Model) -> tuple[dict, dict]:
    """Each text's ids, the last position's final-norm hidden state, the class logits and
    their softmax, and the label; every top-2 logit gap is wider than the tolerance allows to swap."""
    arrays, metadata = {}, {"goldens.model": GGUFValue("classifier.gguf", GGUFValueType.STRING),
                            "classifier.count": GGUFValue(len(CLASSIFIER_TEXTS), GGUFValueType.UINT32)}
    for k, text in enumerate(CLASSIFIER_TEXTS):
        tokens = reference.classifier_tokens(text, model.vocab)
        if len(tokens) > model.config.context_length:
            raise RuntimeError(f"classifier case {k}: {len(tokens)} tokens exceed the context")
        hidden = reference.hidden_states(model, tokens)[-1]
        logits = model.weight("cls.output.weight") @ hidden
        second, top = np.sort(logits)[-2:]
        if top - second <= 2 * (ATOL + RTOL * abs(top)):
            raise RuntimeError(f"classifier case {k}: top-2 margin {top - second:.2e} is within the tolerance; change the seed")
        arrays |= {f"classifier.{k}.tokens": np.array(tokens, np.int32), f"classifier.{k}.output_norm": hidden.astype(np.float32),
                   f"classifier.{k}.logits": logits.astype(np.float32), f"classifier.{k}.probs": reference.softmax(logits).astype(np.float32)}
        metadata |= {f"classifier.{k}.text": GGUFValue(text, GGUFValueType.STRING),
                     f"classifier.{k}.label": GGUFValue(model.labels[int(np.argmax(logits))], GGUFValueType.STRING)}
    return arrays, metadata


def write_classifier_goldens(out: Path) -> list[Path]:
    config = load_config(CONFIGS / CLASSIFIER_CONFIG)
    model_path = out / "classifier.gguf"
    weights = random_weights(config, CLASSIFIER_SEED, len(CLASSIFIER_LABELS))
    write_model(model_path, config, weights, placeholder_vocabulary(config.vocab_size, N_SPECIAL),
                name="gollm-goldens-classifier", labels=list(CLASSIFIER_LABELS))
    arrays, metadata = classifier_goldens(reference.load_model(model_path))
    write_arrays(out / "classifier.cases.gguf", arrays, metadata)
    return [model_path, out / "classifier.cases.gguf"]


def write_goldens(out: Path) -> list[Path]:
    """Writes every golden file into `out` and returns their paths."""
    written = []
    for name, (config_file, seed) in MODELS.items():
        config = load_config(CONFIGS / config_file)
        model_path = out / f"{name}.gguf"
        vocab = placeholder_vocabulary(config.vocab_size, N_SPECIAL)
        write_model(model_path, config, random_weights(config, seed), vocab, name=f"gollm-goldens-{name}")
        model = reference.load_model(model_path)  # goldens come from the file, as an engine sees it
        arrays, metadata = model_goldens(name, model, seed)
        write_arrays(out / f"{name}.activations.gguf", arrays, metadata)
        written += [model_path, out / f"{name}.activations.gguf"]
    arrays, metadata = sampler_goldens()
    write_arrays(out / "sampler.gguf", arrays, metadata)
    write_arrays(out / "tokenizer.gguf", {}, tokenizer_goldens(placeholder_vocabulary(320, N_SPECIAL)))
    written += write_quants_goldens(out) + write_rope_goldens(out)
    return written + write_classifier_goldens(out) + [out / "sampler.gguf", out / "tokenizer.gguf"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.goldens", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("goldens"), help="directory for the golden files")
    args = parser.parse_args(argv)
    for path in write_goldens(args.out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    from jaxmodel import cli

    sys.exit(cli.run(main))
