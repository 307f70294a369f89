"""The training step: loss and optimizer behaviour, and the same step on any mesh."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import CONFIGS, ROOT
from jaxmodel.config import TrainConfig, load_config
from jaxmodel.train import (cross_entropy_sum, decay_mask, has_glibc_malloc, init_state, learning_rate_schedule, make_mesh,
                            make_train_step)

MODEL = load_config(CONFIGS / "goldens-gqa.yaml")


def random_batch(seed, batch_size=8, length=32):
    rng = np.random.default_rng(seed)
    return {
        "tokens": rng.integers(0, MODEL.vocab_size, (batch_size, length + 1)).astype(np.int32),
        "mask": np.ones((batch_size, length), np.int32),
        "stop": np.zeros(batch_size, np.int32),  # no process asks to stop (StopRequest.vote)
    }


def test_cross_entropy_is_the_definition_and_respects_the_mask():
    logits = jnp.log(jnp.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]]))
    total, count = cross_entropy_sum(logits, jnp.array([[0, 1]]), jnp.array([[1, 1]]))
    np.testing.assert_allclose(total, -np.log(0.5) - np.log(0.8), rtol=1e-6)
    assert count == 2
    total, count = cross_entropy_sum(logits, jnp.array([[0, 1]]), jnp.array([[0, 1]]))
    np.testing.assert_allclose(total, -np.log(0.8), rtol=1e-6)
    assert count == 1


def test_schedule_warms_up_then_decays_to_the_floor():
    tc = TrainConfig(steps=100, warmup_steps=10, learning_rate=1e-3, min_lr_ratio=0.1)
    lr = learning_rate_schedule(tc)
    assert float(lr(0)) == 0 and abs(float(lr(5)) - 5e-4) < 1e-9 and abs(float(lr(10)) - 1e-3) < 1e-9
    assert float(lr(55)) < 1e-3 and abs(float(lr(100)) - 1e-4) < 1e-9


def test_weight_decay_skips_norms_and_embeddings():
    state = init_state(MODEL, TrainConfig(), make_mesh(1, 1))
    mask = decay_mask(state.params)
    assert not mask["token_embd"].get_value() and not mask["output_norm"].get_value()
    assert not mask["blocks"][0]["attn_norm"].get_value()
    assert mask["blocks"][0]["attn_q"].get_value() and mask["output"].get_value()


def test_loss_falls_on_a_repeated_batch():
    tc = TrainConfig(steps=30, batch_size=8, warmup_steps=2, learning_rate=3e-3)
    mesh = make_mesh(1, 1)
    state, step = init_state(MODEL, tc, mesh), make_train_step(MODEL, tc, mesh)
    batch = random_batch(0)
    losses = []
    for _ in range(30):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[0] == pytest.approx(np.log(MODEL.vocab_size), abs=0.5)  # uniform at the start
    assert losses[-1] < losses[0] - 1.0 and int(state.step) == 30


def test_gradient_accumulation_equals_the_full_batch():
    mesh = make_mesh(1, 1)
    results = []
    for accum in (1, 4):
        tc = TrainConfig(batch_size=8, grad_accum=accum, warmup_steps=0, learning_rate=1e-3)
        state, step = init_state(MODEL, tc, mesh), make_train_step(MODEL, tc, mesh)
        batch = random_batch(1)
        batch["mask"][:, :5] = 0  # uneven counts per micro-batch would break a naive mean of means
        batch["mask"][0] = 0
        state, metrics = step(state, batch)
        results.append((float(metrics["loss"]), float(metrics["grad_norm"]), jax.tree.leaves(state.params)))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    assert results[0][1] == pytest.approx(results[1][1], rel=1e-5)  # the gradients agree
    for a, b in zip(results[0][2], results[1][2]):
        # Adam's first update is about lr * g / |g|: where g is within rounding of zero its
        # sign is noise, so parameters agree to a fraction of lr, not to float32 rounding.
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


MESH_SCRIPT = """
import json, jax, numpy as np
from jaxmodel.config import TrainConfig, load_config
from jaxmodel.train import init_state, make_mesh, make_train_step
model = load_config("configs/goldens-gqa.yaml")
tc = TrainConfig(batch_size=8, grad_accum=2, warmup_steps=0, learning_rate=1e-3)
rng = np.random.default_rng(0)
batches = [{"tokens": rng.integers(0, model.vocab_size, (8, 33)).astype(np.int32), "mask": np.ones((8, 32), np.int32), "stop": np.zeros(8, np.int32)} for _ in range(3)]
out = {}
for data, fsdp in [(1, 1), (8, 1), (2, 4), (1, 8)]:
    mesh = make_mesh(data, fsdp)
    state, step = init_state(model, tc, mesh), make_train_step(model, tc, mesh)
    losses, grad_norms = [], []
    for batch in batches:
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
        grad_norms.append(float(metrics["grad_norm"]))
    q = state.params["blocks"][0]["attn_q"].value
    out[f"{data}x{fsdp}"] = {"losses": losses, "grad_norms": grad_norms, "params": [np.asarray(x).ravel()[:4096].tolist() for x in jax.tree.leaves(state.params)],
                             "q_devices": len(q.sharding.device_set), "q_shard_rows": q.addressable_shards[0].data.shape[0]}
print(json.dumps(out))
"""


def test_every_mesh_gives_the_single_device_step():
    # 8 CPU devices in a fresh process: XLA reads the flag when it starts.
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-c", MESH_SCRIPT], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    single = results.pop("1x1")
    assert results["1x8"]["q_shard_rows"] == 64 // 8 and results["2x4"]["q_shard_rows"] == 64 // 4  # really sharded
    for mesh, result in results.items():
        # Sharded reductions add in another order: float32 rounding, nothing more.
        np.testing.assert_allclose(result["losses"], single["losses"], rtol=1e-5, err_msg=mesh)
        np.testing.assert_allclose(result["grad_norms"], single["grad_norms"], rtol=1e-4, err_msg=mesh)
        for a, b in zip(result["params"], single["params"]):
            # lr 1e-3 and three Adam steps: tiny gradients' signs are rounding noise (see above)
            np.testing.assert_allclose(a, b, rtol=0, atol=3e-4, err_msg=mesh)


def test_flops_per_token_counts_matmul_weights_and_attention():
    from jaxmodel.bench_train import flops_per_token

    seed = load_config(CONFIGS / "gollm-85m.yaml")  # tied: the embedding is also the head matmul
    assert flops_per_token(seed) == 6 * 86_526_720 + 12 * 12 * 768 * 2048
    # untied: the lookup is free, the separate head is a matmul
    assert flops_per_token(MODEL) == 6 * (139_584 - 320 * 64) + 12 * 2 * 64 * 64


# Page faults per call of a jitted function whose 64 MiB result is a fresh allocation every
# call, in a process of its own (the allocator's settings must come before JAX's threads).
FAULTS_PER_CALL = """
import resource, sys
from jaxmodel.train import keep_freed_host_memory
assert sys.argv[1] == "default" or keep_freed_host_memory()
import jax, jax.numpy as jnp
double = jax.jit(lambda x: x * 2)
x = jnp.ones((4096, 4096), jnp.float32)
for _ in range(30):  # kept, the heap first grows to its high-water mark
    double(x).block_until_ready()
faults = []
for _ in range(11):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    double(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sorted(faults)[5])  # the median: a late free can still grow the heap once
"""


@pytest.mark.skipif(not has_glibc_malloc(), reason="glibc's malloc only")
def test_freed_host_memory_is_kept_so_a_steps_buffers_do_not_fault_in_again():
    def faults(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", FAULTS_PER_CALL, mode], capture_output=True, text=True, check=True)
        return float(out.stdout.split()[-1])

    assert faults("default") > 8_000  # glibc maps each 64 MiB block afresh: ~16,384 pages a call
    assert faults("keep") < 100  # kept: the same pages, already there (0 here)


def test_frozen_parameters_stay_put_and_have_no_optimizer_state():
    tc = TrainConfig(batch_size=8, warmup_steps=0, learning_rate=1e-2, trainable_blocks=1)
    mesh = make_mesh(1, 1)
    state, step = init_state(MODEL, tc, mesh), make_train_step(MODEL, tc, mesh)
    before = jax.tree.map(np.asarray, state.params)
    for seed in range(3):
        state, metrics = step(state, random_batch(seed))
    assert np.isfinite(float(metrics["loss"]))
    last = MODEL.n_layers - 1
    for name, param in before["blocks"][0].items():
        np.testing.assert_array_equal(state.params["blocks"][0][name].get_value(), param.get_value(), err_msg=name)
    np.testing.assert_array_equal(state.params["token_embd"].get_value(), before["token_embd"].get_value())
    for name in ("attn_q", "ffn_down", "attn_norm"):
        assert not np.array_equal(state.params["blocks"][last][name].get_value(), before["blocks"][last][name].get_value()), name
    assert not np.array_equal(state.params["output_norm"].get_value(), before["output_norm"].get_value())
    # AdamW's two moments exist for the trainable parameters only.
    trainable = sum(x.size for x in jax.tree.leaves(before["blocks"][last])) + MODEL.dim
    moments = sum(x.size for x in jax.tree.leaves(state.opt_state) if x.ndim > 0)
    assert moments == 2 * trainable, (moments, trainable)


def test_bench_train_knows_datasheet_peaks_and_none_for_a_cpu():
    from types import SimpleNamespace

    from jaxmodel.bench_train import datasheet_peak

    assert datasheet_peak(SimpleNamespace(device_kind="NVIDIA H100 80GB HBM3")) == 989e12
    assert datasheet_peak(SimpleNamespace(device_kind="TPU v5 lite")) == 197e12
    assert datasheet_peak(SimpleNamespace(device_kind="cpu")) is None


def test_bench_train_trace_summary_counts_ops_at_once_and_time_per_kind():
    from jaxmodel.bench_train import trace_summary

    def op(name, ts, dur, tid):
        return {"ph": "X", "name": name, "ts": ts, "dur": dur, "tid": tid, "args": {"hlo_op": name}}

    # Two steps of 100 us each: a dot alone for 60 us, then a fusion beside a second dot for 40 us.
    events = [op("dot.1", 0, 60, 1), op("add_fusion.3", 60, 40, 1), op("dot.2", 60, 40, 2),
              op("dot.1", 100, 60, 1), op("add_fusion.3", 160, 40, 1), op("dot.2", 160, 40, 2),
              {"ph": "X", "name": "ThunkExecutor::Execute", "ts": 0, "dur": 200, "tid": 3, "args": {}}]
    lines = trace_summary({"traceEvents": events}, steps=2)
    assert lines[0] == "trace: 0.1 ms per step from the first op to the last; ops running at once: 1 for 60%, 2 for 40%"
    rows = [line.split() for line in lines[2:]]
    assert rows == [["dot", "0.10", "71%", "2"], ["add_fusion", "0.04", "29%", "1"]]
    assert "no XLA op events" in trace_summary({"traceEvents": events[-1:]}, steps=2)[0]
