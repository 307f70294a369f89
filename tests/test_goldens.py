"""The committed goldens are exactly what `make goldens` makes, and small."""

import numpy as np

from conftest import GOLDENS
from jaxmodel.goldens import write_goldens
from jaxmodel.gguf_io import read_arrays, read_model


def test_committed_goldens_equal_a_fresh_run(tmp_path):
    written = write_goldens(tmp_path)
    committed = sorted(p.name for p in GOLDENS.glob("*.gguf"))
    assert sorted(p.name for p in written) == committed
    for path in written:
        assert path.read_bytes() == (GOLDENS / path.name).read_bytes(), f"{path.name} differs: run `make goldens`"


def test_goldens_are_small():
    # 3 MiB: quants.gguf, ggml's block types at their 256-value rows, is half a megabyte of it.
    assert sum(p.stat().st_size for p in GOLDENS.iterdir()) < 3 * 2**20


def test_golden_models_cover_both_heads_and_attention_kinds():
    gqa, mha = read_model(GOLDENS / "gqa.gguf"), read_model(GOLDENS / "mha.gguf")
    assert gqa.config.n_kv_heads < gqa.config.n_heads and not gqa.config.tie_embeddings
    assert mha.config.n_kv_heads == mha.config.n_heads and mha.config.tie_embeddings
    assert "output.weight" in gqa.tensors and "output.weight" not in mha.tensors


def test_activation_goldens_are_complete_and_nontrivial():
    for name in ("gqa", "mha"):
        model = read_model(GOLDENS / f"{name}.gguf")
        golden = read_arrays(GOLDENS / f"{name}.activations.gguf")
        assert golden.metadata["goldens.model"] == f"{name}.gguf"
        c = model.config
        layer_keys = ["attn_norm", "q_rope", "k_rope", "v", "attn", "attn_out", "attn_resid", "ffn_norm", "ffn_hidden", "ffn_out", "out"]
        expected = {"tokens", "embeddings", "output_norm", "logits", "decode.prompt", "decode.tokens", "decode.logits"}
        expected |= {f"blk.{layer}.{key}" for layer in range(c.n_layers) for key in layer_keys}
        assert set(golden.arrays) == expected
        logits = golden.arrays["logits"]
        assert logits.shape == (24, c.vocab_size) and logits.dtype == np.float32
        assert 0.3 < logits.std() < 10, "logits should be O(1) so that relative tolerances mean something"
        steps = golden.metadata["goldens.decode.steps"]
        assert golden.arrays["decode.logits"].shape == (steps, c.vocab_size)
        assert len(set(golden.arrays["decode.tokens"].tolist())) > 3, "a decode golden stuck on one token tests little"
