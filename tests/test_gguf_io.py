"""The GGUF profile in Python: what we write is what we read, and bad files are clear errors."""

import dataclasses
import struct

import gguf
import numpy as np
import pytest

from conftest import CONFIGS, GOLDENS
from jaxmodel.config import load_config
from jaxmodel.goldens import random_weights
from jaxmodel.gguf_io import WEIGHT_TYPES, GGUFError, first_non_finite_scale, read_model, tensor_shapes, write_model
from jaxmodel.tokenizer import placeholder_vocabulary

CONFIG = load_config(CONFIGS / "goldens-gqa.yaml")
VOCAB = placeholder_vocabulary(CONFIG.vocab_size)
WEIGHTS = random_weights(CONFIG, seed=5)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "m.gguf"
    write_model(path, CONFIG, WEIGHTS, VOCAB)
    return path


def test_f32_round_trip_is_exact(model_path):
    model = read_model(model_path)
    assert model.config == CONFIG and model.vocab == VOCAB
    assert list(model.tensors) == list(tensor_shapes(CONFIG))
    for name, value in WEIGHTS.items():
        np.testing.assert_array_equal(model.tensors[name], value, err_msg=name)
    assert set(model.dtypes.values()) == {"F32"}


def test_tied_model_has_no_output_tensor(tmp_path):
    config = dataclasses.replace(CONFIG, tie_embeddings=True)
    path = tmp_path / "tied.gguf"
    write_model(path, config, random_weights(config, 1), VOCAB)
    model = read_model(path)
    assert model.config.tie_embeddings and "output.weight" not in model.tensors


def test_metadata_follows_llama_cpp_keys(model_path):
    # Read with the gguf package directly, as llama.cpp's tools would see the file.
    reader = gguf.GGUFReader(model_path)
    value = lambda key: reader.fields[key].contents()  # noqa: E731
    assert value("general.architecture") == "llama"
    assert value("llama.embedding_length") == 64 and value("llama.block_count") == 2
    assert value("llama.attention.head_count") == 4 and value("llama.attention.head_count_kv") == 2
    assert value("llama.feed_forward_length") == 192 and value("llama.context_length") == 64
    assert value("llama.rope.dimension_count") == 16 and value("llama.vocab_size") == 320
    assert value("tokenizer.ggml.model") == "gpt2" and value("tokenizer.ggml.pre") == "llama-bpe"
    assert len(value("tokenizer.ggml.tokens")) == 320
    q = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight")
    assert list(q.shape) == [64, 64] and q.tensor_type == gguf.GGMLQuantizationType.F32
    k = next(t for t in reader.tensors if t.name == "blk.0.attn_k.weight")
    assert list(k.shape) == [64, 32]  # GGUF order: ne[0] = dim (the input), ne[1] = kv_dim
    assert all(t.data_offset % reader.alignment == 0 for t in reader.tensors)


@pytest.mark.parametrize("dtype, bound", [("f16", 2.0**-11), ("q8_0", 1.0 / 127)])
def test_reduced_precision_round_trip(tmp_path, dtype, bound):
    # F16 keeps 11 significant bits: relative error <= 2^-11. Q8_0 rounds to a step of
    # d = max|block| / 127, so the error is <= d / 2, plus |q| <= 127 times the error of
    # storing d itself in f16 (<= 2^-11 d).
    path = tmp_path / f"{dtype}.gguf"
    write_model(path, CONFIG, WEIGHTS, VOCAB, dtype=dtype)
    model = read_model(path)
    for name, want in WEIGHTS.items():
        got = model.tensors[name]
        if want.ndim == 1:
            assert model.dtypes[name] == "F32"
            np.testing.assert_array_equal(got, want)
            continue
        assert model.dtypes[name] == dtype.upper()
        if dtype == "f16":
            assert np.all(np.abs(got - want) <= bound * np.abs(want) + 1e-7), name
        else:
            blocks = np.abs(want).reshape(-1, 32).max(axis=1, keepdims=True)
            err = np.abs(got - want).reshape(-1, 32)
            assert np.all(err <= blocks * bound * (0.5 + 127 * 2.0**-11) + 1e-9), name
            assert np.max(err) > 0  # it really was quantized


def test_writer_rejects_wrong_tensors(tmp_path):
    missing = {k: v for k, v in WEIGHTS.items() if k != "blk.1.ffn_up.weight"}
    with pytest.raises(GGUFError, match=r"missing tensor blk\.1\.ffn_up\.weight"):
        write_model(tmp_path / "x.gguf", CONFIG, missing, VOCAB)
    wrong = {**WEIGHTS, "blk.0.attn_k.weight": np.zeros((64, 64), np.float32)}
    with pytest.raises(GGUFError, match=r"blk\.0\.attn_k\.weight: expected shape \(32, 64\), found \(64, 64\)"):
        write_model(tmp_path / "x.gguf", CONFIG, wrong, VOCAB)
    with pytest.raises(GGUFError, match="unknown dtype 'q4_0'"):
        write_model(tmp_path / "x.gguf", CONFIG, WEIGHTS, VOCAB, dtype="q4_0")
    nan = {**WEIGHTS, "output_norm.weight": np.full(64, np.nan, np.float32)}
    with pytest.raises(GGUFError, match="output_norm.weight holds NaN"):
        write_model(tmp_path / "x.gguf", CONFIG, nan, VOCAB)
    assert not list(tmp_path.iterdir()), "a failed write must leave no file behind"


def rewrite(tmp_path, drop_tensor=None, drop_key=None, change=None):
    """Copies the golden-style model with one thing removed or changed, via the gguf writer."""
    writer = gguf.GGUFWriter(tmp_path / "bad.gguf", "llama")
    source = gguf.GGUFReader(GOLDENS / "gqa.gguf")
    for name, field in source.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", drop_key):
            continue
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), field.types[0], sub_type)
    for key, (value, value_type) in (change or {}).items():
        writer.add_key_value(key, value, value_type)
    for tensor in source.tensors:
        if tensor.name != drop_tensor:
            writer.add_tensor(tensor.name, np.array(tensor.data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tmp_path / "bad.gguf"


def test_reader_rejects_missing_tensor(tmp_path):
    with pytest.raises(GGUFError, match=r"bad\.gguf: missing tensor blk\.1\.attn_v\.weight \(expected shape \(32, 64\)\)"):
        read_model(rewrite(tmp_path, drop_tensor="blk.1.attn_v.weight"))


def test_reader_rejects_missing_key(tmp_path):
    with pytest.raises(GGUFError, match=r"bad\.gguf: missing metadata key llama\.attention\.head_count_kv"):
        read_model(rewrite(tmp_path, drop_key="llama.attention.head_count_kv"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"llama.block_count": (3, gguf.GGUFValueType.UINT32)}, r"missing tensor blk\.2\.attn_norm\.weight"),
        ({"llama.embedding_length": ("64", gguf.GGUFValueType.STRING)}, r"llama\.embedding_length: expected int, found STRING"),
        ({"llama.attention.head_count_kv": (3, gguf.GGUFValueType.UINT32)}, r"must be divisible by model\.n_kv_heads \(3\)"),
        ({"llama.rope.dimension_count": (8, gguf.GGUFValueType.UINT32)}, r"rope\.dimension_count: expected head_dim = 16, found 8"),
        ({"llama.vocab_size": (321, gguf.GGUFValueType.UINT32)}, r"tokenizer\.ggml\.tokens has 320 tokens but llama\.vocab_size is 321"),
        ({"tokenizer.ggml.model": ("llama", gguf.GGUFValueType.STRING)}, r"tokenizer\.ggml\.model: expected 'gpt2'"),
        ({"tokenizer.ggml.pre": ("qwen2", gguf.GGUFValueType.STRING)}, r"tokenizer\.ggml\.pre: expected 'llama-bpe'"),
        ({"tokenizer.ggml.bos_token_id": (999, gguf.GGUFValueType.UINT32)}, r"bos_token_id: id 999 is outside"),
    ],
)
def test_reader_rejects_inconsistent_metadata(tmp_path, change, message):
    with pytest.raises(GGUFError, match=message):
        read_model(rewrite(tmp_path, change=change))


def test_reader_rejects_other_architecture(tmp_path):
    path = tmp_path / "other.gguf"
    writer = gguf.GGUFWriter(path, "gpt2")
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(GGUFError, match=r"general\.architecture: expected 'llama', found 'gpt2'"):
        read_model(path)


def test_reader_rejects_every_truncation(tmp_path):
    data = (GOLDENS / "gqa.gguf").read_bytes()
    cuts = sorted({*range(0, 64), *range(64, len(data), 997), len(data) - 1})
    for cut in cuts:
        path = tmp_path / "cut.gguf"
        path.write_bytes(data[:cut])
        with pytest.raises(GGUFError, match="cut.gguf"):
            read_model(path)


@pytest.mark.parametrize(
    "offset, value, message",
    [
        (0, b"GGUX", "not a readable GGUF file"),  # magic
        (4, struct.pack("<I", 7), "not a readable GGUF file"),  # version
        (8, struct.pack("<Q", 2**40), "not a readable GGUF file"),  # tensor count far past the file
        (16, struct.pack("<Q", 2**40), "not a readable GGUF file"),  # metadata count far past the file
    ],
)
def test_reader_rejects_corrupt_header(tmp_path, offset, value, message):
    data = bytearray((GOLDENS / "gqa.gguf").read_bytes())
    data[offset : offset + len(value)] = value
    path = tmp_path / "corrupt.gguf"
    path.write_bytes(bytes(data))
    with pytest.raises(GGUFError, match=message):
        read_model(path)


def test_reader_rejects_overlapping_tensors(tmp_path):
    # Point the second tensor's offset (the last 8 bytes of its info) at the first tensor's data.
    reader = gguf.GGUFReader(GOLDENS / "gqa.gguf")
    info = reader.tensors[1].field
    data = bytearray((GOLDENS / "gqa.gguf").read_bytes())
    end = info.offset + sum(part.nbytes for part in info.parts)
    data[end - 8 : end] = struct.pack("<Q", 0)
    path = tmp_path / "overlap.gguf"
    path.write_bytes(bytes(data))
    with pytest.raises(GGUFError, match=r"overlap\.gguf: tensor .*overlaps the previous tensor"):
        read_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(GGUFError, match=r"nothing\.gguf: no such file"):
        read_model(tmp_path / "nothing.gguf")


def test_every_weight_type_reads_as_ggml_dequantizes_it():
    # goldens/quants.gguf stores each matrix in another type (spec/goldens.md §2.6).
    model = read_model(GOLDENS / "quants.gguf")
    stored = {model.dtypes[name] for name, value in model.tensors.items() if value.ndim == 2}
    assert stored == {t.name for t in WEIGHT_TYPES} - {"F32", "Q8_0"}
    for name, value in model.tensors.items():
        if value.ndim == 2:  # random_blocks' aim: mean ~0, std ~1/sqrt(in) per matrix
            assert abs(value.mean()) < 0.2 * value.std() and 0.9 < value.std() * np.sqrt(value.shape[1]) < 1.1, name


def _quants_with(tmp_path, name: str, edit):
    """goldens/quants.gguf with tensor `name`'s bytes changed in place by edit(bytes)."""
    data = bytearray((GOLDENS / "quants.gguf").read_bytes())
    tensor = next(t for t in gguf.GGUFReader(GOLDENS / "quants.gguf").tensors if t.name == name)
    start = int(tensor.data_offset)
    data[start:start + int(tensor.n_bytes)] = edit(bytearray(data[start:start + int(tensor.n_bytes)]))
    path = tmp_path / "bad.gguf"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("name, offset, what", [
    ("blk.0.attn_q.weight", 18 * 3, "d of block 3"),  # Q4_0: d at byte 0 of an 18-byte block
    ("blk.1.attn_k.weight", 20 * 5 + 2, "m of block 5"),  # Q4_1: m at byte 2
    ("blk.0.ffn_gate.weight", 84 * 7 + 82, "dmin of block 7"),  # Q2_K: dmin at byte 82
])
@pytest.mark.parametrize("bits", [0x7E00, 0x7C00, 0xFC00])  # NaN, +Inf, -Inf
def test_reader_rejects_a_non_finite_block_scale(tmp_path, name, offset, what, bits):
    def edit(blocks):
        blocks[offset:offset + 2] = struct.pack("<H", bits)
        return blocks

    block = int(what.rsplit(" ", 1)[1])
    with pytest.raises(GGUFError, match=rf"tensor {name}: block {block} has a NaN or infinite scale"):
        read_model(_quants_with(tmp_path, name, edit))
    assert first_non_finite_scale(np.zeros(18 * 4, np.uint8), gguf.GGMLQuantizationType.Q4_0) is None


def test_reader_rejects_a_type_that_is_not_a_weight_type(tmp_path):
    path = tmp_path / "iq.gguf"
    reader = gguf.GGUFReader(GOLDENS / "quants.gguf")
    data = bytearray((GOLDENS / "quants.gguf").read_bytes())
    # The type field of the first tensor info follows its name, n_dims and ne.
    name = reader.tensors[0].name.encode()
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", data, at)[0]
    type_at = at + 4 + 8 * n_dims
    assert struct.unpack_from("<I", data, type_at)[0] == int(gguf.GGMLQuantizationType.Q4_K)
    struct.pack_into("<I", data, type_at, int(gguf.GGMLQuantizationType.IQ4_XS))  # same 4.25 bits, unsupported
    path.write_bytes(bytes(data))
    with pytest.raises(GGUFError, match=r"token_embd\.weight: type IQ4_XS is not a weight type \(F32, F16, BF16, Q4_0"):
        read_model(path)


def test_reading_without_the_tokenizer(tmp_path):
    # A file whose vocabulary this package cannot read still gives its config and weights.
    bad_vocab = rewrite(tmp_path, change={"tokenizer.ggml.model": ("llama", gguf.GGUFValueType.STRING)})
    with pytest.raises(GGUFError, match="tokenizer.ggml.model"):
        read_model(bad_vocab)
    model, golden = read_model(bad_vocab, tokenizer=False), read_model(GOLDENS / "gqa.gguf")
    assert model.vocab is None and model.config == golden.config
    assert all(np.array_equal(model.tensors[name], golden.tensors[name]) for name in golden.tensors)


def test_rope_golden_reads_its_scaling_and_factors(tmp_path):
    model = read_model(GOLDENS / "rope.gguf")
    assert model.rope_scale == 4.0 and model.tensors["rope_freqs.weight"].tolist() == [1.0, 1.5, 3.0, 8.0]
    assert read_model(GOLDENS / "gqa.gguf").rope_scale == 1.0
    for change, message in [
        ({"llama.rope.scaling.type": ("yarn", gguf.GGUFValueType.STRING)}, r"rope scaling 'yarn' is not supported"),
        ({"llama.rope.scaling.type": ("linear", gguf.GGUFValueType.STRING),
          "llama.rope.scaling.factor": (-2.0, gguf.GGUFValueType.FLOAT32)}, r"expected a positive factor"),
    ]:
        with pytest.raises(GGUFError, match=message):
            read_model(rewrite(tmp_path, change=change))
