"""Multi-host training on one machine: two processes over jax.distributed (loopback, gloo
collectives, 2 fake CPU devices each) against one process with 4 devices; one writer; exact
resume after SIGKILL; a dead peer is a clear error, not a hang; a signal stops every process."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT, write_counting_shards

MODEL = {"vocab_size": 320, "dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "ffn_dim": 128,
         "context_length": 32, "rope_theta": 10000.0, "norm_eps": 1.0e-5, "tie_embeddings": True}
TRAIN = {"steps": 12, "batch_size": 8, "warmup_steps": 2, "learning_rate": 3.0e-3, "checkpoint_every": 4,
         "eval_every": 6, "eval_batches": 2}
# Float32 sums over 4 devices come in another order when two processes gather them: the
# losses of the two layouts agree to ~5e-7 here, and to the bit run by run.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("multihost")
    write_counting_shards(root / "data")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": MODEL, "train": TRAIN}))
    return root, config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(config, data, run_dir, *extra):
    return [sys.executable, "-m", "jaxmodel.train", "--config", str(config), "--data", str(data), "--run-dir", str(run_dir),
            "--no-progress", *extra]


def launch(setup, run_dir, *extra, heartbeat=100) -> list[subprocess.Popen]:
    """Both processes of a two-host run on loopback, started at once."""
    root, config = setup
    port = free_port()
    procs = []
    for index in range(2):
        env = os.environ | {"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(index),
                            "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
                            "GOLLM_HEARTBEAT_TIMEOUT": str(heartbeat), "GOLLM_INIT_TIMEOUT": "120"}
        procs.append(subprocess.Popen(command(config, root / "data", run_dir, *extra), env=env, cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs, timeout=300) -> list[tuple[int, str]]:
    """(exit code, stderr) of each; any still running when time is up is killed."""
    results = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        results.append((proc.returncode, err))
    return results


def end_all(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def rows(run_dir):
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for_rows(run_dir, n, procs, timeout=300) -> None:
    deadline = time.monotonic() + timeout
    while len(rows(run_dir)) < n:
        assert time.monotonic() < deadline, f"fewer than {n} rows after {timeout} s"
        assert all(p.poll() is None for p in procs), "a process ended early"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def single(setup):
    """The reference: one process with 4 devices."""
    root, config = setup
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    run = subprocess.run(command(config, root / "data", root / "single"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return rows(root / "single")


@pytest.fixture(scope="module")
def two(setup):
    root, _ = setup
    procs = launch(setup, root / "two")
    try:
        results = finish(procs)
    finally:
        end_all(procs)
    for code, err in results:
        assert code == 0, err[-3000:]
    return rows(root / "two"), results


def test_two_processes_train_as_one_with_four_devices_and_one_writes(setup, single, two):
    root, _ = setup
    got, results = two
    assert [r["step"] for r in got] == list(range(1, 13)), "one row per step, from process 0 alone"
    for a, b in zip(got, single):
        assert abs(a["loss"] - b["loss"]) <= TOLERANCE and abs(a["grad_norm"] - b["grad_norm"]) <= TOLERANCE * 10, (a, b)
    assert [r["step"] for r in got if "val_loss" in r] == [6, 12]
    for a, b in zip(got, single):
        if "val_loss" in a:  # the whole validation batch, each process's rows
            assert abs(a["val_loss"] - b["val_loss"]) <= TOLERANCE
    assert (root / "two" / "loss.png").exists() and json.loads((root / "two" / "config.json").read_text())["train"]["steps"] == 12
    (_, first), (_, second) = results
    assert "validation loss" in first and "validation loss" not in second, "process 0 talks to the user"


def test_sigkill_of_both_then_a_restart_of_both_resumes_exactly(setup, two):
    root, _ = setup
    run_dir = root / "killed"
    procs = launch(setup, run_dir)
    try:
        wait_for_rows(run_dir, 6, procs)  # past the checkpoint of step 4
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        finish(procs)
        procs = launch(setup, run_dir)
        results = finish(procs)
    finally:
        end_all(procs)
    for code, err in results:
        assert code == 0, err[-3000:]
    assert "resumed from step" in results[0][1]
    def numbers(found):  # everything but the speed
        return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in found]

    assert numbers(rows(run_dir)) == numbers(two[0]), "every loss as in the run never killed, to the bit"


def test_a_dead_peer_is_a_clear_error_within_seconds(setup):
    root, _ = setup
    run_dir = root / "dead"
    # A step's collectives wait on a dead peer without end: train.PeerWatch notices its silence
    # after heartbeat / 3 = 10 s, before XLA's own heartbeat timeout would abort the process.
    # (Any Traceback would mean an error that escaped the one line.)
    procs = launch(setup, run_dir, "--set", "train.steps=100000", "--set", "train.eval_every=0", heartbeat=30)
    try:
        wait_for_rows(run_dir, 3, procs)
        procs[1].send_signal(signal.SIGKILL)
        began = time.monotonic()
        code, err = finish(procs[:1], timeout=90)[0]
        waited = time.monotonic() - began
    finally:
        end_all(procs)
    # Either the watch finds the silence ("process 1 gave no sign of life for 10 s") or a
    # collective outside a step (orbax's, at a checkpoint) fails first on the closed socket.
    assert code == 1 and "error: process 0 of 2 lost the others (" in err, err[-2000:]
    assert "restart every process with the same command to resume from" in err
    assert "Traceback" not in err
    assert waited < 60, f"took {waited:.0f} s"


def test_a_signal_to_one_process_stops_both_at_the_same_step(setup):
    root, _ = setup
    run_dir = root / "signal"
    procs = launch(setup, run_dir, "--set", "train.steps=100000", "--set", "train.eval_every=0")
    try:
        wait_for_rows(run_dir, 3, procs)
        procs[0].send_signal(signal.SIGTERM)
        results = finish(procs, timeout=120)
    finally:
        end_all(procs)
    assert [code for code, _ in results] == [143, 143], [err[-1000:] for _, err in results]
    stopped = [line for _, err in results for line in err.splitlines() if line.startswith("stopped at step")]
    assert len(stopped) == 2 and stopped[0] == stopped[1], stopped
    step = int(stopped[0].split()[3].rstrip(";"))
    assert (run_dir / "checkpoints" / str(step)).is_dir() and rows(run_dir)[-1]["step"] == step


@pytest.mark.parametrize("env, message", [
    ({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2"}, "set but not JAX_PROCESS_ID"),
    ({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"},
     "JAX_PROCESS_ID=2 with JAX_NUM_PROCESSES=2: the id must be in 0..1"),
    ({"JAX_COORDINATOR_ADDRESS": "localhost", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}, "expected HOST:PORT"),
    ({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "must be integers"),
])
def test_inconsistent_host_variables_are_one_clear_error(setup, tmp_path, env, message):
    root, config = setup
    run = subprocess.run(command(config, root / "data", tmp_path / "run"), env=os.environ | env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and message in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "run").exists()
