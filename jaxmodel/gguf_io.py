"""The GGUF profile of spec/format.md: the one place Python reads and writes it.

    write_model(path, config, tensors, vocab, dtype="f32")   # config + tokenizer + weights
    read_model(path) -> Model                                  # checked against the profile
    write_arrays(path, arrays, metadata) / read_arrays(path)   # plain containers (goldens)

Tensors are passed around as NumPy arrays in row-major ("numpy") shape, e.g.
attn_q.weight is (n_heads * head_dim, dim); GGUF stores the reversed order (ne),
which the `gguf` package handles on both sides. Everything wrong with a file is a
`GGUFError` naming the file and the key or tensor.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from jaxmodel.config import ConfigError, ModelConfig
from jaxmodel.tokenizer import TokenizerError, Vocabulary, vocab_from_gguf, vocab_to_gguf

ARCH = "llama"
GOLDENS_ARCH = "gollm.goldens"

# Tensor dtypes of the profile, by the name used on command lines.
DTYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
}
# general.file_type, llama.cpp's LLAMA_FTYPE_* for each choice.
FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7}

# The tensor types a model file may store weights in (spec/format.md §5.3): what `export`
# writes (DTYPES) and ggml's other block types that published models use. Reading any of
# them dequantizes exactly as ggml does (gguf.quants, the NumPy twin of ggml-quants.c).
_T = gguf.GGMLQuantizationType
WEIGHT_TYPES = (_T.F32, _T.F16, _T.BF16, _T.Q4_0, _T.Q4_1, _T.Q5_0, _T.Q5_1, _T.Q8_0, _T.Q2_K, _T.Q3_K, _T.Q4_K, _T.Q5_K, _T.Q6_K)
# Byte offsets, inside one block, of each block type's float16 scales (d, and the min m or
# dmin where the type has one): a file with a NaN or infinite scale is refused on reading.
SCALE_OFFSETS = {
    _T.Q4_0: (0,), _T.Q4_1: (0, 2), _T.Q5_0: (0,), _T.Q5_1: (0, 2), _T.Q8_0: (0,),
    _T.Q2_K: (80, 82), _T.Q3_K: (108,), _T.Q4_K: (0, 2), _T.Q5_K: (0, 2), _T.Q6_K: (208,),
}


@dataclasses.dataclass(frozen=True)
class Blocks:
    """A matrix already in ggml blocks of `qtype`: `data` is (rows, bytes per row) uint8.
    `write_model` stores it as it is (the goldens of the block types are made this way)."""

    data: np.ndarray
    qtype: gguf.GGMLQuantizationType

    @property
    def shape(self) -> tuple[int, int]:
        values, size = gguf.GGML_QUANT_SIZES[self.qtype]
        return self.data.shape[0], self.data.shape[1] // size * values


def first_non_finite_scale(data: np.ndarray, qtype: gguf.GGMLQuantizationType) -> int | None:
    """The index of the first block of `data` (a tensor's bytes) whose float16 scale is NaN
    or infinite, or None: such a block would make every product it enters NaN."""
    if qtype not in SCALE_OFFSETS:
        return None
    size = gguf.GGML_QUANT_SIZES[qtype][1]
    blocks = np.asarray(data, np.uint8).reshape(-1, size)
    bad = np.zeros(len(blocks), bool)
    for offset in SCALE_OFFSETS[qtype]:
        bad |= ~np.isfinite(blocks[:, offset:offset + 2].copy().view("<f2")[:, 0])
    return int(np.argmax(bad)) if bad.any() else None

# ModelConfig field -> (metadata key, value type). tie_embeddings is not a key:
# it is the absence of output.weight.
CONFIG_KEYS = {
    "vocab_size": (f"{ARCH}.vocab_size", gguf.GGUFValueType.UINT32),
    "dim": (f"{ARCH}.embedding_length", gguf.GGUFValueType.UINT32),
    "n_layers": (f"{ARCH}.block_count", gguf.GGUFValueType.UINT32),
    "n_heads": (f"{ARCH}.attention.head_count", gguf.GGUFValueType.UINT32),
    "n_kv_heads": (f"{ARCH}.attention.head_count_kv", gguf.GGUFValueType.UINT32),
    "ffn_dim": (f"{ARCH}.feed_forward_length", gguf.GGUFValueType.UINT32),
    "context_length": (f"{ARCH}.context_length", gguf.GGUFValueType.UINT32),
    "rope_theta": (f"{ARCH}.rope.freq_base", gguf.GGUFValueType.FLOAT32),
    "norm_eps": (f"{ARCH}.attention.layer_norm_rms_epsilon", gguf.GGUFValueType.FLOAT32),
}
ROPE_DIMENSION_KEY = f"{ARCH}.rope.dimension_count"
# Published files may rotate more slowly than spec/model.md §7.2's θ_i (LLaMA 3.1/3.2's
# frequency factors, linear "position interpolation"): θ_i / (rope_freqs[i] · factor).
ROPE_FREQS_TENSOR = "rope_freqs.weight"  # (head_dim / 2,) F32, optional
ROPE_SCALING_TYPE_KEY = f"{ARCH}.rope.scaling.type"  # absent or "none", or "linear"
ROPE_SCALING_FACTOR_KEY = f"{ARCH}.rope.scaling.factor"
# A classifier (spec/finetune.md §6): llama.cpp's names for a sequence-classification head
# (n_classes, dim) and the label of each of its rows.
CLASSIFIER_LABELS_KEY = f"{ARCH}.classifier.output_labels"
CLASSIFIER_TENSOR = "cls.output.weight"
CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
# The LLaMA-3 chat format of spec/tokenizer.md §5 as the Jinja template LLaMA-3 models ship:
# llama.cpp recognises it by its header tokens and formats a conversation as goengine does.
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

_INTEGER_TYPES = {
    gguf.GGUFValueType.UINT8, gguf.GGUFValueType.INT8, gguf.GGUFValueType.UINT16, gguf.GGUFValueType.INT16,
    gguf.GGUFValueType.UINT32, gguf.GGUFValueType.INT32, gguf.GGUFValueType.UINT64, gguf.GGUFValueType.INT64,
}
_FLOAT_TYPES = {gguf.GGUFValueType.FLOAT32, gguf.GGUFValueType.FLOAT64}


class GGUFError(ValueError):
    """A GGUF file that cannot be read or does not follow the profile."""


def tensor_shapes(config: ModelConfig, n_classes: int = 0) -> dict[str, tuple[int, ...]]:
    """Every tensor of the profile with its row-major shape, in file order; a classifier
    (n_classes > 0) ends with its head."""
    d, q_dim = config.dim, config.n_heads * config.head_dim
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (config.vocab_size, d)}
    for layer in range(config.n_layers):
        shapes |= {
            f"blk.{layer}.attn_norm.weight": (d,),
            f"blk.{layer}.attn_q.weight": (q_dim, d),
            f"blk.{layer}.attn_k.weight": (config.kv_dim, d),
            f"blk.{layer}.attn_v.weight": (config.kv_dim, d),
            f"blk.{layer}.attn_output.weight": (d, q_dim),
            f"blk.{layer}.ffn_norm.weight": (d,),
            f"blk.{layer}.ffn_gate.weight": (config.ffn_dim, d),
            f"blk.{layer}.ffn_up.weight": (config.ffn_dim, d),
            f"blk.{layer}.ffn_down.weight": (d, config.ffn_dim),
        }
    shapes["output_norm.weight"] = (d,)
    if not config.tie_embeddings:
        shapes["output.weight"] = (config.vocab_size, d)
    if n_classes:
        shapes[CLASSIFIER_TENSOR] = (n_classes, d)
    return shapes


# --- writing -------------------------------------------------------------------------


def write_model(
    path: str | Path,
    config: ModelConfig,
    tensors: dict[str, np.ndarray],
    vocab: Vocabulary,
    dtype: str = "f32",
    name: str = "gollm",
    chat_template: str | None = None,
    labels: list[str] | None = None,
    rope_scale: float = 1.0,
) -> None:
    """Writes one self-contained model file: config, tokenizer and weights.

    `tensors` must hold exactly the names and shapes of `tensor_shapes(config, len(labels))`.
    Norm weights (1-D) are always F32; matrices are stored as `dtype`, or as they are
    when given as `Blocks` (already quantized).
    `chat_template` (a chat model's) goes to `tokenizer.chat_template` (spec/format.md).
    `labels` (a classifier's) go to llama.classifier.output_labels, and its head
    cls.output.weight is always F32: n_classes x dim numbers, too few to be worth rounding.
    `tensors` may hold rope_freqs.weight, and `rope_scale` != 1 writes linear RoPE scaling:
    the published-model features of spec/format.md §7 (the goldens use them).
    """
    path = Path(path)
    if dtype not in DTYPES:
        raise GGUFError(f"{path}: unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
    labels = list(labels or [])
    if labels:
        _check_labels(path, labels)
    _check_tensor_set(path, config, {n: tuple(t.shape) for n, t in tensors.items()}, len(labels))
    if vocab.size != config.vocab_size:
        raise GGUFError(f"{path}: tokenizer has {vocab.size} tokens but model.vocab_size is {config.vocab_size}")

    writer = gguf.GGUFWriter(None, ARCH)
    writer.add_name(name)
    writer.add_file_type(FILE_TYPES[dtype])
    if dtype == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for field, (key, value_type) in CONFIG_KEYS.items():
        writer.add_key_value(key, getattr(config, field), value_type)
    writer.add_key_value(ROPE_DIMENSION_KEY, config.head_dim, gguf.GGUFValueType.UINT32)
    for key, value in tokenizer_metadata(vocab).items():
        writer.add_key_value(key, value.value, value.type, value.sub_type)
    if chat_template is not None:
        writer.add_key_value(CHAT_TEMPLATE_KEY, chat_template, gguf.GGUFValueType.STRING)
    if rope_scale != 1.0:
        writer.add_key_value(ROPE_SCALING_TYPE_KEY, "linear", gguf.GGUFValueType.STRING)
        writer.add_key_value(ROPE_SCALING_FACTOR_KEY, rope_scale, gguf.GGUFValueType.FLOAT32)
    if labels:
        writer.add_key_value(CLASSIFIER_LABELS_KEY, labels, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING)
    for tensor_name in tensor_shapes(config, len(labels)):
        _add_tensor(writer, path, tensor_name, tensors[tensor_name], "f32" if tensor_name == CLASSIFIER_TENSOR else dtype)
    if ROPE_FREQS_TENSOR in tensors:
        _add_tensor(writer, path, ROPE_FREQS_TENSOR, tensors[ROPE_FREQS_TENSOR], "f32")
    _write_atomically(writer, path)


def tokenizer_metadata(vocab: Vocabulary) -> dict[str, gguf.GGUFValue]:
    """The `gpt2` tokenizer keys of spec/format.md §6.2 for `vocab`."""
    tokens, token_types, merges = vocab_to_gguf(vocab)
    string, array, uint32 = gguf.GGUFValueType.STRING, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32
    return {
        "tokenizer.ggml.model": gguf.GGUFValue("gpt2", string),
        "tokenizer.ggml.pre": gguf.GGUFValue("llama-bpe", string),
        "tokenizer.ggml.tokens": gguf.GGUFValue(tokens, array, string),
        "tokenizer.ggml.token_type": gguf.GGUFValue(token_types, array, gguf.GGUFValueType.INT32),
        "tokenizer.ggml.merges": gguf.GGUFValue(merges, array, string),
        "tokenizer.ggml.bos_token_id": gguf.GGUFValue(vocab.bos_id, uint32),
        "tokenizer.ggml.eos_token_id": gguf.GGUFValue(vocab.eos_id, uint32),
    }


def _add_tensor(writer: gguf.GGUFWriter, path: Path, name: str, value: np.ndarray | Blocks, dtype: str) -> None:
    if isinstance(value, Blocks):
        writer.add_tensor(name, np.ascontiguousarray(value.data, np.uint8), raw_dtype=value.qtype)
        return
    value = np.ascontiguousarray(value, dtype=np.float32)
    if not np.all(np.isfinite(value)):
        raise GGUFError(f"{path}: tensor {name} holds NaN or infinity")
    if value.ndim == 1 or dtype == "f32":
        writer.add_tensor(name, value)
    elif dtype == "f16":
        writer.add_tensor(name, value.astype(np.float16))
    else:
        qtype = DTYPES[dtype]
        block = gguf.GGML_QUANT_SIZES[qtype][0]
        if value.shape[-1] % block:
            raise GGUFError(f"{path}: tensor {name}: Q8_0 needs rows of a multiple of {block}, found {value.shape}")
        writer.add_tensor(name, gguf.quants.quantize(value, qtype), raw_dtype=qtype)


def write_arrays(path: str | Path, arrays: dict[str, np.ndarray], metadata: dict[str, gguf.GGUFValue]) -> None:
    """Writes named arrays and typed metadata as a plain GGUF container (goldens)."""
    path = Path(path)
    writer = gguf.GGUFWriter(None, GOLDENS_ARCH)
    for key, value in metadata.items():
        writer.add_key_value(key, value.value, value.type, value.sub_type)
    for name, array in arrays.items():
        writer.add_tensor(name, np.ascontiguousarray(array))
    _write_atomically(writer, path)


def _write_atomically(writer: gguf.GGUFWriter, path: Path) -> None:
    """Writes to a temporary file beside `path`, then renames: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        writer.write_header_to_file(path=tmp)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)


# --- reading -------------------------------------------------------------------------


@dataclasses.dataclass
class Model:
    """A model file's contents: config, tokenizer, and float32 weights (row-major)."""

    config: ModelConfig
    vocab: Vocabulary | None  # None when read without the tokenizer
    tensors: dict[str, np.ndarray]
    dtypes: dict[str, str]  # tensor name -> "F32", "Q8_0", "Q4_K", ... as stored
    labels: list[str] = dataclasses.field(default_factory=list)  # a classifier's, one per row of cls.output.weight
    rope_scale: float = 1.0  # linear RoPE scaling's factor (1: none); rope_freqs.weight, if any, is in tensors


@dataclasses.dataclass
class Arrays:
    """A plain GGUF container's contents: metadata values and arrays as stored."""

    metadata: dict[str, Any]
    arrays: dict[str, np.ndarray]


def _open(path: Path) -> gguf.GGUFReader:
    if not path.is_file():
        raise GGUFError(f"{path}: no such file")
    try:
        reader = gguf.GGUFReader(path)
    except Exception as err:  # the gguf package raises assorted errors on bad files
        raise GGUFError(f"{path}: not a readable GGUF file ({type(err).__name__}: {err})") from None
    size = os.path.getsize(path)
    end = 0
    for tensor in sorted(reader.tensors, key=lambda t: t.data_offset):
        if tensor.data_offset < end:
            raise GGUFError(f"{path}: tensor {tensor.name}: data at byte {tensor.data_offset} overlaps the previous tensor")
        end = tensor.data_offset + tensor.n_bytes
        if tensor.data_offset % reader.alignment:
            raise GGUFError(f"{path}: tensor {tensor.name}: offset {tensor.data_offset} is not aligned to {reader.alignment}")
        if tensor.data_offset + tensor.n_bytes > size:
            raise GGUFError(
                f"{path}: tensor {tensor.name}: data ends at byte {tensor.data_offset + tensor.n_bytes} "
                f"but the file has {size} bytes (truncated?)"
            )
    return reader


def _metadata(reader: gguf.GGUFReader) -> dict[str, tuple[gguf.GGUFValueType, Any]]:
    """Metadata key -> (value type, value); arrays are lists, strings are str."""
    return {name: (field.types[0], field.contents()) for name, field in reader.fields.items() if not name.startswith("GGUF.")}


def read_arrays(path: str | Path) -> Arrays:
    """Reads a plain container written by `write_arrays`."""
    path = Path(path)
    reader = _open(path)
    metadata = {key: value for key, (_, value) in _metadata(reader).items()}
    arrays = {t.name: np.array(t.data) for t in reader.tensors}
    return Arrays(metadata, arrays)


def read_model(path: str | Path, tokenizer: bool = True) -> Model:
    """Reads and checks a model file against the profile (spec/format.md, "Reading").

    Without `tokenizer`, the tokenizer keys are not read (Model.vocab is None): the
    weights of any llama-architecture file in the weight types, such as a published model
    whose SentencePiece or GPT-2 vocabulary this package does not implement, for
    computing its exact logits from token ids made elsewhere.
    """
    path = Path(path)
    reader = _open(path)
    metadata = _metadata(reader)
    config = _read_config(path, reader, metadata)
    vocab = _read_vocab(path, metadata, config) if tokenizer else None
    labels = _read_labels(path, metadata)
    rope_scale = _read_rope_scale(path, metadata)
    _check_tensor_set(path, config, {t.name: tuple(int(n) for n in reversed(t.shape)) for t in reader.tensors}, len(labels))
    tensors, dtypes = {}, {}
    for tensor in reader.tensors:
        kind = gguf.GGMLQuantizationType(tensor.tensor_type)
        if kind not in WEIGHT_TYPES:
            raise GGUFError(f"{path}: tensor {tensor.name}: type {kind.name} is not a weight type "
                            f"({', '.join(t.name for t in WEIGHT_TYPES)})")
        block = first_non_finite_scale(tensor.data, kind)
        if block is not None:
            raise GGUFError(f"{path}: tensor {tensor.name}: block {block} has a NaN or infinite scale")
        tensors[tensor.name] = gguf.quants.dequantize(tensor.data, kind).astype(np.float32, copy=False)
        dtypes[tensor.name] = kind.name
    freqs = tensors.get(ROPE_FREQS_TENSOR)
    if freqs is not None and not np.all(np.isfinite(freqs) & (freqs > 0)):
        raise GGUFError(f"{path}: tensor {ROPE_FREQS_TENSOR}: every frequency factor must be positive and finite")
    return Model(config, vocab, tensors, dtypes, labels, rope_scale)


def _read_rope_scale(path: Path, metadata: dict) -> float:
    """Linear RoPE scaling's factor, or 1; another kind of scaling is refused by name."""
    if ROPE_SCALING_TYPE_KEY not in metadata or _get(path, metadata, ROPE_SCALING_TYPE_KEY, str) == "none":
        return 1.0
    kind = _get(path, metadata, ROPE_SCALING_TYPE_KEY, str)
    if kind != "linear":
        raise GGUFError(f"{path}: {ROPE_SCALING_TYPE_KEY}: rope scaling {kind!r} is not supported")
    factor = _get(path, metadata, ROPE_SCALING_FACTOR_KEY, float)
    if not (np.isfinite(factor) and factor > 0):
        raise GGUFError(f"{path}: {ROPE_SCALING_FACTOR_KEY}: expected a positive factor, found {factor}")
    return factor


def _read_config(path: Path, reader: gguf.GGUFReader, metadata: dict) -> ModelConfig:
    arch = _get(path, metadata, "general.architecture", str)
    if arch != ARCH:
        raise GGUFError(f"{path}: general.architecture: expected {ARCH!r}, found {arch!r}")
    has_output = any(t.name == "output.weight" for t in reader.tensors)
    values: dict[str, Any] = {"tie_embeddings": not has_output}
    for field, (key, value_type) in CONFIG_KEYS.items():
        values[field] = _get(path, metadata, key, float if value_type in _FLOAT_TYPES else int)
    try:
        config = ModelConfig.from_dict(values, source=str(path))
    except ConfigError as err:
        raise GGUFError(str(err)) from None
    rope_dims = _get(path, metadata, ROPE_DIMENSION_KEY, int)
    if rope_dims != config.head_dim:
        raise GGUFError(f"{path}: {ROPE_DIMENSION_KEY}: expected head_dim = {config.head_dim}, found {rope_dims}")
    return config


def _read_labels(path: Path, metadata: dict) -> list[str]:
    """A classifier's labels, or [] for a language model."""
    if CLASSIFIER_LABELS_KEY not in metadata:
        return []
    value_type, labels = metadata[CLASSIFIER_LABELS_KEY]
    if value_type != gguf.GGUFValueType.ARRAY or not all(isinstance(label, str) for label in labels):
        raise GGUFError(f"{path}: {CLASSIFIER_LABELS_KEY}: expected an array of strings")
    _check_labels(path, labels)
    return list(labels)


def _check_labels(path: Path, labels: list[str]) -> None:
    if len(labels) < 2:
        raise GGUFError(f"{path}: {CLASSIFIER_LABELS_KEY}: a classifier needs at least two labels, found {len(labels)}")
    if any(not label for label in labels):
        raise GGUFError(f"{path}: {CLASSIFIER_LABELS_KEY}: a label is empty")
    if len(set(labels)) != len(labels):
        repeated = next(label for label in labels if labels.count(label) > 1)
        raise GGUFError(f"{path}: {CLASSIFIER_LABELS_KEY}: label {repeated!r} appears twice")


def _get(path: Path, metadata: dict[str, tuple[gguf.GGUFValueType, Any]], key: str, kind: type) -> Any:
    """A required scalar metadata value of the given Python kind (int, float or str)."""
    if key not in metadata:
        raise GGUFError(f"{path}: missing metadata key {key}")
    value_type, value = metadata[key]
    allowed = {int: _INTEGER_TYPES, float: _FLOAT_TYPES, str: {gguf.GGUFValueType.STRING}}[kind]
    if value_type not in allowed:
        raise GGUFError(f"{path}: {key}: expected {kind.__name__}, found {value_type.name}")
    if value_type == gguf.GGUFValueType.FLOAT32:
        # The shortest decimal that is this float32: 1e-5 reads back as 1e-5, not 9.99999975e-06.
        return float(np.format_float_scientific(np.float32(value), unique=True))
    return kind(value)


def _get_array(path: Path, metadata: dict[str, tuple[gguf.GGUFValueType, Any]], key: str) -> list:
    if key not in metadata:
        raise GGUFError(f"{path}: missing metadata key {key}")
    value_type, value = metadata[key]
    if value_type != gguf.GGUFValueType.ARRAY:
        raise GGUFError(f"{path}: {key}: expected an array, found {value_type.name}")
    return value


def _read_vocab(path: Path, metadata: dict, config: ModelConfig) -> Vocabulary:
    model = _get(path, metadata, "tokenizer.ggml.model", str)
    if model != "gpt2":
        raise GGUFError(f"{path}: tokenizer.ggml.model: expected 'gpt2' (byte-level BPE), found {model!r}")
    pre = _get(path, metadata, "tokenizer.ggml.pre", str)
    if pre != "llama-bpe":
        raise GGUFError(f"{path}: tokenizer.ggml.pre: expected 'llama-bpe' (the LLaMA-3 pre-tokenizer), found {pre!r}")
    tokens = _get_array(path, metadata, "tokenizer.ggml.tokens")
    token_types = _get_array(path, metadata, "tokenizer.ggml.token_type")
    if len(tokens) != config.vocab_size:
        raise GGUFError(
            f"{path}: tokenizer.ggml.tokens has {len(tokens)} tokens but {CONFIG_KEYS['vocab_size'][0]} "
            f"is {config.vocab_size}"
        )
    try:
        vocab = vocab_from_gguf(tokens, token_types)
    except TokenizerError as err:
        raise GGUFError(f"{path}: tokenizer: {err}") from None
    for key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"):
        token_id = _get(path, metadata, key, int)
        if not 0 <= token_id < config.vocab_size:
            raise GGUFError(f"{path}: {key}: id {token_id} is outside the vocabulary (0..{config.vocab_size - 1})")
    return vocab


def _check_tensor_set(path: Path, config: ModelConfig, found: dict[str, tuple[int, ...]], n_classes: int = 0) -> None:
    if CLASSIFIER_TENSOR in found and not n_classes:
        raise GGUFError(f"{path}: tensor {CLASSIFIER_TENSOR} (a classifier head) without {CLASSIFIER_LABELS_KEY}")
    expected = tensor_shapes(config, n_classes)
    if ROPE_FREQS_TENSOR in found:  # optional: published LLaMA 3.1/3.2 files have it
        expected[ROPE_FREQS_TENSOR] = (config.head_dim // 2,)
    for name, shape in expected.items():
        if name not in found:
            raise GGUFError(f"{path}: missing tensor {name} (expected shape {shape})")
        if tuple(found[name]) != shape:
            raise GGUFError(f"{path}: tensor {name}: expected shape {shape}, found {tuple(found[name])}")
    unknown = sorted(set(found) - set(expected))
    if unknown:
        raise GGUFError(f"{path}: unexpected tensor {unknown[0]} (not in the profile for this config)")
