"""`make demo` and `make demo-classify` end to end at a very small size: every stage runs, and a second run reuses them."""

import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT


@pytest.mark.skipif(shutil.which("go") is None or shutil.which("make") is None, reason="needs go and make")
def test_make_demo_small(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"vocab_size": 1024, "dim": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 1, "ffn_dim": 64,
                  "context_length": 256, "rope_theta": 10000.0, "norm_eps": 1.0e-5, "tie_embeddings": True},
        "train": {"steps": 4, "batch_size": 4, "warmup_steps": 1, "checkpoint_every": 2, "eval_every": 4, "eval_batches": 1},
    }))
    demo = tmp_path / "demo"
    args = ["make", "--no-print-directory", "demo", f"DEMO={demo}", f"DEMO_CONFIG={config}", "DEMO_STORIES=300", "DEMO_VAL_TOKENS=2000"]
    first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert first.stdout.count("Once upon a time") >= 1 and "tokens/s" in first.stderr
    for made in ("corpus.txt", "tokenizer/tokenizer.model", "data/index.json", "run/loss.png", "model.gguf"):
        assert (demo / made).is_file(), made

    second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    for stage in ("jaxmodel.corpus", "jaxmodel.tokenizer train", "jaxmodel.data prepare", "jaxmodel.train", "jaxmodel.export"):
        assert stage not in second.stdout, f"the second run should reuse {stage}"

    # demo-classify on top: fine-tune, export, and score held-out stories with goengine.
    classify_config = tmp_path / "classify.yaml"
    classify_config.write_text(yaml.safe_dump({"train": {"steps": 4, "batch_size": 4, "warmup_steps": 1, "eval_every": 4, "checkpoint_every": 4}}))
    args = [*args[:2], "demo-classify", *args[3:], f"CLASSIFY_CONFIG={classify_config}", "CLASSIFY_STORIES=40", "CLASSIFY_HELDOUT=10"]
    third = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert (demo / "classify.gguf").is_file() and (demo / "classify" / "confusion.png").is_file()
    assert len((demo / "classify-heldout.predictions.jsonl").read_text().splitlines()) == 10
    assert "accuracy: " in third.stderr and "true \\ predicted" in third.stderr and "validation accuracy" in third.stdout
