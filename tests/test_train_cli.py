"""python -m jaxmodel.train end to end: metrics, loss curve, errors, and exact resume after SIGKILL."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from conftest import ROOT, write_counting_shards
from jaxmodel.shards import write_shards

MODEL = {"vocab_size": 320, "dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "ffn_dim": 128,
         "context_length": 32, "rope_theta": 10000.0, "norm_eps": 1.0e-5, "tie_embeddings": True}
TRAIN = {"steps": 60, "batch_size": 8, "warmup_steps": 5, "learning_rate": 3.0e-3, "checkpoint_every": 5,
         "keep_checkpoints": 2, "eval_every": 20, "eval_batches": 1}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_counting_shards(root / "data")
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


def interrupt(command, run_dir, signum, after_rows=12):
    """Starts `command`, sends `signum` once metrics.jsonl has `after_rows` rows; returns (exit code, stderr)."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        path = run_dir / "metrics.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= after_rows:
            process.send_signal(signum)
            break
        time.sleep(0.005)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_interrupt_and_resume_repeat_every_loss(setup, uninterrupted, signum):
    root, config = setup
    run_dir = root / f"stop-{signal.Signals(signum).name}"
    code, stderr = interrupt(train_cmd(config, root / "data", run_dir), run_dir, signum)
    killed_at = len(metrics(run_dir))
    assert 12 <= killed_at < 60, "the run should have been stopped mid-way"
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        # A clean stop: a checkpoint of the step it stopped at, one line, the shell's exit code.
        assert code == 128 + signum and "Traceback" not in stderr, stderr[-3000:]
        assert f"stopped at step {killed_at}; run the same command to resume" in stderr
        assert (run_dir / "checkpoints" / str(killed_at)).is_dir()

    resumed = subprocess.run(train_cmd(config, root / "data", run_dir), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"resumed from step \d+ \(checkpoint .*checkpoints/\d+\)", resumed.stderr)
    if signum != signal.SIGKILL:
        assert f"resumed from step {killed_at} " in resumed.stderr
    got, want = metrics(run_dir), metrics(uninterrupted)
    assert [r["step"] for r in got] == list(range(1, 61))
    for a, b in zip(got, want):  # the same machine and program: bit-identical losses
        assert a["loss"] == b["loss"] and a.get("val_loss") == b.get("val_loss"), (a["step"], a["loss"], b["loss"])


def snapshot(directory):
    """Every file under `directory` with its bytes and mtime: what "left untouched" means."""
    return {p.relative_to(directory): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_refused_resume_leaves_the_run_byte_identical(setup, uninterrupted):
    root, config = setup
    before = snapshot(uninterrupted)
    run = subprocess.run(train_cmd(config, root / "data", uninterrupted, "--set", "model.dim=32", "--set", "train.seed=3"),
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert "model.dim: run has 64, command has 32" in run.stderr and "train.seed: run has 0, command has 3" in run.stderr
    assert snapshot(uninterrupted) == before


def test_shards_that_changed_under_a_run_are_refused_by_name(setup, uninterrupted, tmp_path):
    import shutil

    root, config = setup
    before = snapshot(uninterrupted)
    # The same index, a shard's bytes changed: found by its sha256 before anything is written.
    changed = tmp_path / "changed"
    shutil.copytree(root / "data", changed)
    shard = changed / "train-00000.bin"
    data = bytearray(shard.read_bytes())
    data[100:102] = bytes([7, 0]) if data[100:102] != bytes([7, 0]) else bytes([8, 0])
    shard.write_bytes(bytes(data))
    run = subprocess.run(train_cmd(config, changed, uninterrupted), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "train-00000.bin" in run.stderr and "sha256" in run.stderr, run.stderr
    # Data written again (another split): the index itself differs from what the run recorded.
    rng = np.random.default_rng(1)
    documents = [(np.arange(n) + rng.integers(0, 200)) % 300 for n in rng.integers(20, 120, 400)]
    write_shards(tmp_path / "other", documents, vocab_size=320, eos_id=313, shard_tokens=8192, val_tokens=2000)
    run = subprocess.run(train_cmd(config, tmp_path / "other", uninterrupted), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1 and re.search(r"shard train-00000\.bin: changed since the run started", run.stderr), run.stderr
    assert snapshot(uninterrupted) == before


def test_validation_is_checked_before_step_one(setup, tmp_path):
    root, config = setup
    rng = np.random.default_rng(2)
    documents = [(np.arange(n) + rng.integers(0, 200)) % 300 for n in rng.integers(20, 120, 200)]
    write_shards(tmp_path / "small-val", documents, vocab_size=320, eos_id=313, val_tokens=100)
    write_shards(tmp_path / "no-val", documents, vocab_size=320, eos_id=313, val_tokens=0)
    for data, message in [("small-val", r"has a validation split of \d+ windows? of 33 tokens, and one eval batch needs 8"),
                          ("no-val", "has no validation split")]:
        run = subprocess.run(train_cmd(config, tmp_path / data, tmp_path / f"run-{data}"), capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
        assert re.search(message, run.stderr) and "train.eval_every=0" in run.stderr, run.stderr
        assert not (tmp_path / f"run-{data}").exists(), "nothing is written for a run that cannot start"
    # With validation off, the same data trains.
    run = subprocess.run(train_cmd(config, tmp_path / "no-val", tmp_path / "run-off", "--set", "train.eval_every=0", "--set", "train.steps=3"),
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [r["step"] for r in metrics(tmp_path / "run-off")] == [1, 2, 3] and not any("val_loss" in r for r in metrics(tmp_path / "run-off"))


def test_progress_lines_and_warnings(setup, tmp_path):
    root, config = setup
    run = subprocess.run(train_cmd(config, root / "data", tmp_path / "run", "--set", "train.steps=4", "--set", "train.warmup_steps=4",
                                   "--set", "train.eval_every=2", "--set", "train.checkpoint_every=2"),
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "warning: train.warmup_steps (4) >= train.steps (4)" in run.stderr
    assert re.search(r"memory: ~[\d.]+ [MG]iB estimated", run.stderr)
    for step in (2, 4):
        assert re.search(rf"step {step}: validation loss \d+\.\d+", run.stderr) and f"step {step}: saved checkpoint" in run.stderr


@pytest.mark.parametrize(
    "extra, data, message",
    [
        ((), "missing", "missing"),
        (("--set", "train.stepz=3"), "data", r"unknown key train\.stepz"),
        (("--set", "model.vocab_size=256", "--set", "model.tie_embeddings=true"), "data", "vocabulary of 320"),
        (("--set", "model.dim=abc"), "data", r"^error: --set model\.dim=abc: model\.dim: expected an integer"),
        ((), "data/index.json", r"index\.json: is the shard index file; pass the directory that holds it: --data .*data$"),
        ((), "data/train-00000.bin", r"train-00000\.bin: is one file of a shard directory; pass the directory: --data .*data$"),
        (("--set", "model.dim=65536", "--set", "model.n_heads=64", "--set", "model.n_kv_heads=64", "--set", "model.ffn_dim=262144",
          "--set", "model.n_layers=64"), "data", r"the config needs about [\d,.]+ GiB to train and [\d,.]+ GiB is available"),
    ],
)
def test_errors_are_one_line(setup, extra, data, message):
    import re

    root, config = setup
    run = subprocess.run(train_cmd(config, root / data, root / "err", *extra), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert re.search(message, run.stderr, re.MULTILINE), run.stderr
    assert not (root / "err").exists(), "a run that cannot start writes nothing"


# --- raw text straight into training ----------------------------------------------------------

RAW_TRAIN = ["--set", "train.steps=3", "--set", "train.warmup_steps=1", "--set", "train.eval_every=3", "--set", "train.checkpoint_every=3"]


@pytest.fixture(scope="module")
def raw_text(tmp_path_factory):
    """A directory of raw text in two formats: generated stories as .txt and .parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jaxmodel.corpus import generate_corpus

    root = tmp_path_factory.mktemp("raw")
    stories = list(generate_corpus(240, seed=3))
    (root / "text").mkdir()
    (root / "text" / "a.txt").write_text("<|endoftext|>".join(stories[:200]), encoding="utf-8")
    pq.write_table(pa.table({"text": stories[200:]}), root / "text" / "b.parquet")
    return root


def test_raw_text_trains_in_one_command_and_is_reused(setup, raw_text):
    _, config = setup
    run_dir = raw_text / "run"
    first = subprocess.run(train_cmd(config, raw_text / "text", run_dir, *RAW_TRAIN), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "data: training a 320-token tokenizer on 2 files" in first.stderr
    assert re.search(r"data: [\d,]+ train tokens and [\d,]+ validation tokens -> .*run/data", first.stderr), first.stderr
    for made in ("tokenizer/tokenizer.model", "tokenizer/tokenizer.json", "data/index.json", "source.json", "checkpoints/3"):
        assert (run_dir / made).exists(), made
    index = json.loads((run_dir / "data" / "index.json").read_text())
    windows = sum((s["tokens"] - 1) // 32 for s in index["shards"] if s["split"] == "val")
    assert windows >= 8, "the held-out split fills one eval batch of the config"
    assert [r["step"] for r in metrics(run_dir)] == [1, 2, 3] and "val_loss" in metrics(run_dir)[-1]
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["tokenizer"] == str((run_dir / "tokenizer").absolute())

    # The same input again: nothing is rebuilt, and training goes on from step 3.
    again = subprocess.run(train_cmd(config, raw_text / "text", run_dir, *RAW_TRAIN, "--set", "train.steps=4"),
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "data: reusing" in again.stderr and "training a" not in again.stderr and "resumed from step 3" in again.stderr

    # Changed text under a run with checkpoints: refused, and the run is left as it was.
    before = snapshot(run_dir)
    changed = raw_text / "changed"
    import shutil

    shutil.copytree(raw_text / "text", changed)
    with open(changed / "a.txt", "a", encoding="utf-8") as f:
        f.write("<|endoftext|>One more story.")
    refused = subprocess.run(train_cmd(config, changed, run_dir, *RAW_TRAIN), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert "has changed" in refused.stderr and "--run-dir" in refused.stderr
    assert snapshot(run_dir) == before

    # The run knows its tokenizer: export needs no --tokenizer.
    out = raw_text / "model.gguf"
    export = subprocess.run([sys.executable, "-m", "jaxmodel.export", "--run-dir", str(run_dir), "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert export.returncode == 0, export.stderr[-3000:]
    assert out.read_bytes()[:4] == b"GGUF"


def test_export_of_a_shard_run_asks_for_its_tokenizer(uninterrupted, tmp_path):
    run = subprocess.run([sys.executable, "-m", "jaxmodel.export", "--run-dir", str(uninterrupted), "--out", str(tmp_path / "m.gguf")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "does not record its tokenizer" in run.stderr and "pass --tokenizer DIR" in run.stderr


def test_raw_text_is_rebuilt_when_its_content_changes(setup, raw_text, tmp_path):
    from jaxmodel.config import load_train_config
    from jaxmodel.train import prepare_raw_data

    _, config = setup
    mc, tc = load_train_config(config)
    text = tmp_path / "stories.txt"
    shutil_copy = (raw_text / "text" / "a.txt").read_text(encoding="utf-8")
    text.write_text(shutil_copy, encoding="utf-8")
    said = []
    run_dir = tmp_path / "run"
    prepare_raw_data(text, run_dir, mc, tc, None, False, said.append)
    index = (run_dir / "data" / "index.json").read_bytes()
    os.utime(text, (0, 0))  # a new timestamp alone is no change
    prepare_raw_data(text, run_dir, mc, tc, None, False, said.append)
    assert said[-1].startswith("data: reusing")
    text.write_text(shutil_copy.replace("Once", "Twice"), encoding="utf-8")
    prepare_raw_data(text, run_dir, mc, tc, None, False, said.append)
    assert any("training a 320-token tokenizer" in line for line in said[-3:]), said
    assert (run_dir / "data" / "index.json").read_bytes() != index


def test_raw_text_with_a_given_tokenizer(setup, raw_text, tmp_path):
    from jaxmodel import tokenizer as tk

    _, config = setup
    tok = raw_text / "run" / "tokenizer"
    if not tok.is_dir():  # made by the test above; make one here when run alone
        tk.save(tk.train([raw_text / "text" / "a.txt"], 320, progress=False), tmp_path / "tok")
        tok = tmp_path / "tok"
    run = subprocess.run(train_cmd(config, raw_text / "text" / "b.parquet", tmp_path / "run", "--tokenizer", str(tok), *RAW_TRAIN,
                                   "--set", "train.eval_every=0"), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"data: using the tokenizer {tok}" in run.stderr and "training a" not in run.stderr
    assert tk.fingerprint(tmp_path / "run" / "tokenizer") == tk.fingerprint(tok)
    for extra, message in [(("--tokenizer", str(tok / "tokenizer.model")), r"is a file; --tokenizer takes the directory"),
                           (("--tokenizer", str(tmp_path / "nope")), "no such directory")]:
        bad = subprocess.run(train_cmd(config, raw_text / "text", tmp_path / "bad", *extra), capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert bad.returncode == 1 and "Traceback" not in bad.stderr and re.search(message, bad.stderr), bad.stderr


def test_check_resume_names_each_difference_and_accepts_an_older_record(tmp_path):
    from jaxmodel.config import ConfigError
    from jaxmodel.train import check_resume

    shard = {"file": "train-00000.bin", "split": "train", "tokens": 10, "sha256": "0" * 64}
    import dataclasses

    from jaxmodel.config import TrainConfig

    full = dataclasses.asdict(TrainConfig(steps=60))
    current = {"model": dict(MODEL), "train": full, "tokenizer_sha256": "a" * 64, "shards": [shard], "versions": {}}
    said = []
    older = {k: v for k, v in current.items() if k != "shards"}  # recorded before shard hashes were kept
    check_resume(tmp_path, older, current, said.append)
    changed = dict(current, model=dict(MODEL, dim=128), shards=[dict(shard, sha256="1" * 64)])
    with pytest.raises(ConfigError) as err:
        check_resume(tmp_path, changed, current, said.append)
    assert "model.dim: run has 128, command has 64" in str(err.value)
    assert "shard train-00000.bin: changed since the run started" in str(err.value)
    check_resume(tmp_path, dict(current, train=dict(full, steps=30)), current, said.append)  # steps may change
    recorded_before_a_field = dict(current, train={k: v for k, v in full.items() if k != "trainable_blocks"})
    check_resume(tmp_path, recorded_before_a_field, current, said.append)  # a newer field takes its default
    assert any("train.steps changed from 30 to 60" in line for line in said)


def test_profile_traces_three_steps_after_the_compile(setup, tmp_path):
    root, config = setup
    run = subprocess.run(train_cmd(config, root / "data", tmp_path / "run", "--profile", str(tmp_path / "trace"),
                                   "--set", "train.steps=7", "--set", "train.eval_every=0"),
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"profile: steps 3-5 traced into {tmp_path / 'trace'}" in run.stderr
    assert list((tmp_path / "trace").glob("plugins/profile/*/*.xplane.pb"))
    assert [r["step"] for r in metrics(tmp_path / "run")] == list(range(1, 8))
