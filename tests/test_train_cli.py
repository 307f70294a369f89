"""python -m jaxmodel.train end to end: metrics, loss curve, errors, and exact resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from conftest import ROOT
from jaxmodel.shards import write_shards

MODEL = {"vocab_size": 320, "dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "ffn_dim": 128,
         "context_length": 32, "rope_theta": 10000.0, "norm_eps": 1.0e-5, "tie_embeddings": True}
TRAIN = {"steps": 60, "batch_size": 8, "warmup_steps": 5, "learning_rate": 3.0e-3, "checkpoint_every": 5,
         "keep_checkpoints": 2, "eval_every": 20, "eval_batches": 1}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    # Documents with structure to learn: runs that count upwards from a random start.
    documents = [(np.arange(n) + rng.integers(0, 200)) % 300 for n in rng.integers(20, 120, 400)]
    write_shards(root / "data", documents, vocab_size=320, eos_id=313, shard_tokens=8192, val_tokens=2000)
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": MODEL, "train": TRAIN}))
    return root, config


def train_cmd(config, data, run_dir, *extra):
    return [sys.executable, "-m", "jaxmodel.train", "--config", str(config), "--data", str(data),
            "--run-dir", str(run_dir), "--no-progress", *extra]


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def uninterrupted(setup):
    root, config = setup
    run = subprocess.run(train_cmd(config, root / "data", root / "a"), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return root / "a"


def test_run_writes_metrics_curve_checkpoints_and_config(uninterrupted):
    rows = metrics(uninterrupted)
    assert [r["step"] for r in rows] == list(range(1, 61))
    assert rows[-1]["loss"] < rows[0]["loss"] - 1.0, "the loss should fall on learnable data"
    assert {"loss", "learning_rate", "grad_norm", "tokens_per_s"} <= set(rows[0])
    assert [r["step"] for r in rows if "val_loss" in r] == [20, 40, 60]
    assert (uninterrupted / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (uninterrupted / "checkpoints").iterdir() if p.name.isdigit()) == ["55", "60"]
    saved = json.loads((uninterrupted / "config.json").read_text())
    assert saved["train"]["steps"] == 60 and "jax" in saved["versions"]


def test_sigkill_and_resume_repeat_every_loss(setup, uninterrupted):
    root, config = setup
    run_dir = root / "b"
    process = subprocess.Popen(train_cmd(config, root / "data", run_dir), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        path = run_dir / "metrics.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= 12:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    assert process.wait(timeout=60) == -signal.SIGKILL, "the run should have been killed mid-way"
    killed_at = len(metrics(run_dir))
    assert 12 <= killed_at < 60

    resumed = subprocess.run(train_cmd(config, root / "data", run_dir), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got, want = metrics(run_dir), metrics(uninterrupted)
    assert [r["step"] for r in got] == list(range(1, 61))
    for a, b in zip(got, want):  # the same machine and program: bit-identical losses
        assert a["loss"] == b["loss"] and a.get("val_loss") == b.get("val_loss"), (a["step"], a["loss"], b["loss"])


@pytest.mark.parametrize(
    "extra, data, message",
    [
        ((), "missing", "missing"),
        (("--set", "train.stepz=3"), "data", r"unknown key train\.stepz"),
        (("--set", "model.vocab_size=256", "--set", "model.tie_embeddings=true"), "data", "vocabulary of 320"),
    ],
)
def test_errors_are_one_line(setup, extra, data, message):
    import re

    root, config = setup
    run = subprocess.run(train_cmd(config, root / data, root / "err", *extra), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert re.search(message, run.stderr), run.stderr
