"""Training throughput: tokens/s, achieved FLOP/s and MFU for model configs.

    python -m jaxmodel.bench_train [--config configs/demo.yaml ...] [--steps 5] [--set train.batch_size=8 ...]
                                   [--profile DIR]   # a jax.profiler trace of the timed steps

MFU (model FLOPs utilisation) is the model's FLOPs per second over the device's
peak. Two peaks are printed against: the measured one, the best FLOP/s of large
matmuls in the compute dtype here (on a CPU there is no honest datasheet number),
and on known accelerators the datasheet's dense bfloat16 peak (DATASHEET_PEAKS).
Model FLOPs per token are 6 per weight used in a matmul (forward 2, backward 4)
plus the attention scores, 12 * n_layers * dim * seq_len (PaLM's count).

With --profile, each config's trace is summarised too: the kinds of XLA op that took
the most time per step, and for how much of the time 0, 1, 2, ... ops ran at once. On a
CPU, a core with no op in the trace is waiting for one: XLA's threads spin while they
wait, so the process's CPU time would count it as busy, and only the trace tells.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmodel.config import ModelConfig, load_train_config, param_count
from jaxmodel.train import init_state, keep_freed_host_memory, make_mesh, make_train_step

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIGS = [
    (ROOT / "configs" / "demo.yaml", ["train.batch_size=16"]),
    (ROOT / "configs" / "gollm-85m.yaml", ["model.context_length=256", "train.batch_size=4"]),
]


# Dense bfloat16 peak FLOP/s per chip from the vendors' datasheets (no sparsity), by a
# substring of jax's device_kind. Untested here: the test machines have no accelerator.
DATASHEET_PEAKS = {
    "A100": 312e12,
    "H100": 989e12,  # SXM; the PCIe card is 756e12
    "H200": 989e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,  # v5e
    "TPU v5e": 197e12,
}


def datasheet_peak(device) -> float | None:
    return next((peak for name, peak in DATASHEET_PEAKS.items() if name in device.device_kind), None)


def matmul_peak(n: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
    """Best FLOP/s of an n x n matmul in `dtype`: the device's practical peak."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def flops_per_token(mc: ModelConfig) -> float:
    """Training FLOPs per token at full context (see the module docstring)."""
    matmul_weights = param_count(mc) - (0 if mc.tie_embeddings else mc.vocab_size * mc.dim)  # a lookup is free
    return 6.0 * matmul_weights + 12.0 * mc.n_layers * mc.dim * mc.context_length


def measure(config: Path, overrides: list[str], steps: int, profile: Path | None = None) -> dict:
    mc, tc = load_train_config(config, overrides)
    mesh = make_mesh(jax.device_count(), 1)
    state, step = init_state(mc, tc, mesh), make_train_step(mc, tc, mesh)
    rng = np.random.default_rng(0)
    batch = {
        "tokens": rng.integers(0, mc.vocab_size, (tc.batch_size, mc.context_length + 1)).astype(np.int32),
        "mask": np.ones((tc.batch_size, mc.context_length), np.int32),
        "stop": np.zeros(tc.batch_size, np.int32),  # train.StopRequest.vote: nobody stops
    }
    state, metrics = step(state, batch)  # compile
    jax.block_until_ready(metrics)
    if profile is not None:
        jax.profiler.start_trace(str(profile / config.stem))
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - start) / steps
    if profile is not None:
        jax.profiler.stop_trace()
    tokens = tc.batch_size * mc.context_length
    return {"config": config.stem, "params": param_count(mc), "tokens_per_step": tokens, "step_s": seconds,
            "tokens_per_s": tokens / seconds, "flops_per_s": flops_per_token(mc) * tokens / seconds}


def op_events(trace: dict) -> list[dict]:
    """The trace's XLA op executions (the thunks the CPU runtime ran), each a complete event."""
    return [e for e in trace["traceEvents"] if e.get("ph") == "X" and "hlo_op" in e.get("args", {})]


def trace_summary(trace: dict, steps: int, top: int = 8) -> list[str]:
    """Lines saying where a trace's time went: how long 0, 1, 2, ... ops ran at once, then
    the `top` kinds of op (an HLO name without its .N suffix) by time per step."""
    events = op_events(trace)
    if not events:
        return ["trace: no XLA op events (an accelerator's trace keeps them per device: use TensorBoard)"]
    edges = sorted([(e["ts"], 1) for e in events] + [(e["ts"] + e["dur"], -1) for e in events])
    at_once, running, last = collections.Counter(), 0, edges[0][0]
    for t, change in edges:
        if t > last:
            at_once[running] += t - last
        running, last = running + change, t
    span = sum(at_once.values())
    time_of, calls = collections.Counter(), collections.Counter()
    for e in events:
        kind = re.sub(r"\.\d+$", "", e["name"])
        time_of[kind] += e["dur"]
        calls[kind] += 1
    busy = sum(time_of.values())
    lines = [f"trace: {span / steps / 1e3:.1f} ms per step from the first op to the last; ops running at once: "
             + ", ".join(f"{n} for {at_once[n] / span:.0%}" for n in sorted(at_once))]
    lines.append(f"  {'op':<36}{'ms/step':>9}{'share':>7}{'calls/step':>12}")
    for kind, us in time_of.most_common(top):
        lines.append(f"  {kind:<36}{us / steps / 1e3:>9.2f}{us / busy:>7.0%}{calls[kind] / steps:>12.0f}")
    return lines


def load_trace(directory: Path) -> dict:
    """The newest trace.json.gz that jax.profiler wrote under `directory`."""
    files = sorted(directory.rglob("*.trace.json.gz"), key=lambda f: f.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"{directory}: no *.trace.json.gz written")
    with gzip.open(files[-1], "rt") as f:
        return json.load(f)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.bench_train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, action="append", help="config file(s) (default: demo and the seed)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override, e.g. train.batch_size=8")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--profile", type=Path, metavar="DIR", help="write a jax.profiler trace of the timed steps into DIR/CONFIG")
    args = parser.parse_args(argv)
    keep_freed_host_memory()  # as jaxmodel.train does: the step's buffers stay mapped
    configs = [(c, args.overrides) for c in args.config] if args.config else [(c, o + args.overrides) for c, o in DEFAULT_CONFIGS]
    device = jax.devices()[0]
    dtype = jnp.float32 if device.platform == "cpu" else jnp.bfloat16  # the training step's compute dtype (train.compute_dtype auto)
    # One matmul measures one chip; a CPU's (fake) devices share its cores, so its peak is the one.
    peak = matmul_peak(dtype=dtype) * (1 if device.platform == "cpu" else jax.device_count())
    sheet = datasheet_peak(device)
    sheet_total = None if sheet is None else sheet * jax.device_count()
    print(f"device: {jax.device_count()} x {device.device_kind} ({device.platform}); measured peak {peak / 1e9:,.1f} GFLOP/s "
          f"({jnp.dtype(dtype).name} matmul)" + (f", datasheet {sheet_total / 1e12:,.0f} TFLOP/s (bfloat16 dense)" if sheet else ""))
    print(f"{'config':<12}{'params':>13}{'tokens/step':>13}{'step (s)':>10}{'tokens/s':>11}{'GFLOP/s':>10}{'MFU':>7}"
          + (f"{'MFU sheet':>11}" if sheet else ""))
    summaries = []
    for config, overrides in configs:
        r = measure(config, overrides, args.steps, args.profile)
        print(f"{r['config']:<12}{r['params']:>13,}{r['tokens_per_step']:>13,}{r['step_s']:>10.3f}"
              f"{r['tokens_per_s']:>11,.0f}{r['flops_per_s'] / 1e9:>10.1f}{r['flops_per_s'] / peak:>7.1%}"
              + (f"{r['flops_per_s'] / sheet_total:>11.1%}" if sheet else ""))
        if args.profile is not None:
            summaries.append((r["config"], trace_summary(load_trace(args.profile / config.stem), args.steps)))
    for name, lines in summaries:
        print(f"--- {name}")
        print("\n".join(lines))
    if args.profile is not None:
        print(f"traces: {args.profile}/<config> (TensorBoard's profile plugin, or Perfetto)")
    return 0


if __name__ == "__main__":
    from jaxmodel import cli

    sys.exit(cli.run(main))
