"""Export: a trained run becomes a GGUF file that every reader agrees on."""

import json
import subprocess
import sys

import gguf
import jax
import numpy as np
import pytest
import yaml

from conftest import ROOT
from jaxmodel import reference
from jaxmodel import tokenizer as tk
from jaxmodel.export import ExportError, export, load_run
from jaxmodel.goldens import mismatch
from jaxmodel.data import prepare
from jaxmodel.train import train

WORDS = "the a little robot turtle river tree rain sun moon garden friend happy sad big ran saw said".split()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tokenizer, shards and a short training run on generated text."""
    import random

    root = tmp_path_factory.mktemp("export")
    rng = random.Random(0)
    text = "\n<|endoftext|>\n".join(" ".join(rng.choice(WORDS) for _ in range(40)) + "." for _ in range(300))
    (root / "text.txt").write_text(text)
    vocab = tk.train([root / "text.txt"], 320, progress=False)
    tk.save(vocab, root / "tok")
    prepare([root / "text.txt"], root / "tok", root / "data", val_tokens=500, progress=False)
    config = root / "c.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"vocab_size": 320, "dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "ffn_dim": 128,
                  "context_length": 32, "rope_theta": 10000.0, "norm_eps": 1.0e-5, "tie_embeddings": False},
        "train": {"steps": 6, "batch_size": 4, "warmup_steps": 1, "checkpoint_every": 3, "eval_every": 6, "eval_batches": 1},
    }))
    train(config, root / "data", root / "run", [], progress=False)
    return root


def _goengine(root) -> str:
    """bin/goengine built once into the test's directory."""
    binary = root / "goengine"
    if not binary.exists():
        subprocess.run(["go", "build", "-o", str(binary), "./cmd/goengine"], cwd=ROOT / "goengine", check=True)
    return str(binary)


@pytest.mark.parametrize("dtype, atol", [("f32", 1e-4), ("f16", 1e-2), ("q8_0", None)])
def test_exported_logits_match_the_jax_model(run, dtype, atol):
    # f32: the goldens' tolerance. f16 rounds each weight by <= 2^-11 relative: logits move
    # by ~1e-3, and 1e-2 (+1e-2 relative) bounds it. Q8_0 rounds each weight by up to half a
    # step of max|block|/127 (~0.4% of the block's largest weight): the error is noise-like,
    # so it is bounded relative to the logits' own spread: the RMS error of ~0.5% per weight
    # grows through the layers to ~2% here, and 5% of the logits' RMS bounds it.
    path = export(run / "run", run / "tok", run / f"m-{dtype}.gguf", dtype=dtype)
    mc, tensors, _ = load_run(run / "run")
    from flax import nnx

    from jaxmodel.model import Transformer, load_tensors

    model = Transformer(mc, nnx.Rngs(0))
    load_tensors(model, tensors)
    tokens = np.array([1, 50, 60, 70, 80, 90, 100, 110, 120, 130], np.int32)
    with jax.default_matmul_precision("highest"):
        jax_logits = np.asarray(model(tokens[None])[0])
    ref_logits = reference.forward(reference.load_model(path), tokens)
    # goengine and the reference read the same weights from the same file. For f32 and f16 they
    # compute alike and agree within the goldens' float32 tolerance. For q8_0 goengine's decode
    # step also rounds each activation block to 8 bits, as llama.cpp does (spec/model.md §11):
    # a second rounding of the same size as the weights', so the same 5% relative RMS bound
    # (spec/goldens.md §5) holds against both the reference and JAX.
    go = subprocess.run([_goengine(run), "logits", "--model", str(path), "--tokens", " ".join(map(str, tokens))],
                        capture_output=True, text=True, check=True)
    go_logits = np.array(json.loads(go.stdout))
    if atol is not None:
        assert mismatch(f"goengine {dtype} logits", go_logits, ref_logits) is None
        assert mismatch(f"{dtype} logits", ref_logits, jax_logits, atol=atol, rtol=atol) is None
    else:
        for name, got, want in [("reference", ref_logits, jax_logits), ("goengine", go_logits, ref_logits),
                                ("goengine", go_logits, jax_logits)]:
            error = relative_rms(got, want)
            print(f"q8_0 {name} relative RMS logit error {error:.4f}")
            assert 0 < error < 0.05
    reader = gguf.GGUFReader(path)  # the gguf package's own reader opens it
    assert reader.fields["general.architecture"].contents() == "llama"


def relative_rms(got, want):
    return float(np.sqrt(np.mean((got - want) ** 2) / np.mean(want**2)))


def test_goengine_generates_what_the_reference_generates(run):
    from jaxmodel.sampler import Sampler

    path = export(run / "run", run / "tok", run / "m.gguf")
    model = reference.load_model(path, np.float32)
    enc = tk.encoding(model.vocab)
    prompt = "the little robot"
    ids, _ = reference.generate(model, [model.vocab.bos_id, *enc.encode_ordinary(prompt)], 12, Sampler(temperature=0))
    stops = {model.vocab.eos_id, model.vocab.special_tokens["<|eot_id|>"]}
    ids = ids[: next((i for i, t in enumerate(ids) if t in stops), len(ids))]  # goengine stops there too
    got = subprocess.run([_goengine(run), "generate", "--model", str(path), "--prompt", prompt, "--max-tokens", "12",
                          "--temperature", "0"], capture_output=True, text=True, check=True)
    assert got.stdout == prompt + enc.decode(ids) + "\n"


def test_export_errors(run, tmp_path):
    with pytest.raises(ExportError, match="not a training run"):
        export(tmp_path, run / "tok", tmp_path / "x.gguf")
    with pytest.raises(ExportError, match="no checkpoint at step 4"):
        export(run / "run", run / "tok", tmp_path / "x.gguf", step=4)
    other = tk.train([run / "text.txt"], 300, progress=False)
    tk.save(other, tmp_path / "other")
    with pytest.raises(ExportError, match="not the tokenizer the run's data was made with"):
        export(run / "run", tmp_path / "other", tmp_path / "x.gguf")
    cli = subprocess.run([sys.executable, "-m", "jaxmodel.export", "--run-dir", str(tmp_path), "--tokenizer", str(run / "tok"),
                          "--out", str(tmp_path / "x.gguf")], capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 1 and "Traceback" not in cli.stderr and "not a training run" in cli.stderr


def test_cli_out_must_be_a_file_in_an_existing_directory(tmp_path):
    # Checked before anything is loaded: the run directory here is not even a run.
    cli = [sys.executable, "-m", "jaxmodel.export", "--run-dir", str(tmp_path), "--tokenizer", str(tmp_path)]
    for out, message in [(tmp_path, f"error: {tmp_path}: a directory, not a file: --out names the .gguf file to write (e.g. {tmp_path / 'model.gguf'})\n"),
                         (tmp_path / "no" / "m.gguf", f"error: {tmp_path / 'no'}: no such directory (for --out {tmp_path / 'no' / 'm.gguf'})\n")]:
        run = subprocess.run([*cli, "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
        assert run.returncode == 1 and run.stderr == message, run.stderr
