"""Training: the loss, the optimizer, one pure jitted step, sharding, checkpoints, the CLI.

    python -m jaxmodel.train --config configs/demo.yaml --data shards/ [--run-dir runs/demo]
                             [--set train.steps=200 ...]
    python -m jaxmodel.train --config configs/demo.yaml --data stories.txt   # raw text: .txt, .jsonl, .parquet or a directory

The story of `train`: read the config, open the data (raw text first becomes a
tokenizer and shards in the run directory), check everything that can be checked
before a byte is written (validation split, memory, a resumed run's record),
build the mesh, initialise or resume the state, then loop (batch -> train_step ->
metrics -> sometimes validation and a checkpoint), and draw the loss curve at the
end. SIGINT and SIGTERM stop after the current step with a checkpoint.

`train_step(state, batch) -> (state, metrics)` is one pure function, compiled once
with explicit shardings: parameters and optimizer state are sharded by the rules
in `PARAM_RULES` (the one place sharding is declared) over the "fsdp" mesh axis,
the batch over both "data" and "fsdp". A batch is a pure function of (seed, step)
(jaxmodel/shards.py), so the checkpointed step is the whole data position and a
resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmodel import cli
from jaxmodel.config import ConfigError, ModelConfig, TrainConfig, load_train_config, param_count
from jaxmodel.model import Transformer, load_tensors

MESH_AXES = ("data", "fsdp")  # data parallel, and fully sharded data parallel (params split too)

# Parameter name (the spec's tensor name without "blk.N.") -> how its axes are sharded.
# Matrices are stored (out, in); their first axis is split over "fsdp". Norms are tiny: replicated.
PARAM_RULES = {
    "token_embd": P("fsdp", None),  # (vocab_size, dim)
    "output": P("fsdp", None),  # (vocab_size, dim)
    "attn_q": P("fsdp", None),
    "attn_k": P("fsdp", None),
    "attn_v": P("fsdp", None),
    "attn_output": P("fsdp", None),
    "ffn_gate": P("fsdp", None),
    "ffn_up": P("fsdp", None),
    "ffn_down": P("fsdp", None),
    "attn_norm": P(),
    "ffn_norm": P(),
    "output_norm": P(),
    "cls_output": P(),  # (n_classes, dim): a classifier's head, a few rows
}
BATCH_SPEC = P(MESH_AXES, None)  # sequences split over every device
# What a batch holds: a language model's tokens (b, T+1) and target mask (b, T); a classifier's
# tokens (b, T), the position of each row's last real token, its label and its weight (0: padding).
BATCH_KEYS = {"lm": ("tokens", "mask"), "classifier": ("tokens", "last", "label", "weight")}
# Every batch also carries "stop", each row its process's StopRequest.vote: the step returns the
# largest, so every process learns from the step itself whether any was signalled.


class TrainState(NamedTuple):
    step: jax.Array  # int32 scalar
    params: nnx.State
    opt_state: optax.OptState


def make_mesh(data: int, fsdp: int, devices=None) -> Mesh:
    """A (data, fsdp) mesh over the first data * fsdp devices."""
    devices = jax.devices() if devices is None else devices
    if data * fsdp > len(devices):
        raise ValueError(f"a ({data}, {fsdp}) mesh needs {data * fsdp} devices, found {len(devices)}")
    return Mesh(np.array(devices[: data * fsdp]).reshape(data, fsdp), MESH_AXES)


def _param_name(path) -> str:
    """The rule key of a parameter path such as ['blocks'][0]['attn_q'].value."""
    keys = [p.key for p in path if isinstance(p, jax.tree_util.DictKey) and isinstance(p.key, str)]
    return keys[-1]


def param_specs(params: nnx.State, mesh: Mesh) -> Any:
    """A tree of NamedShardings for `params` (or anything shaped like it) from PARAM_RULES."""
    fsdp = mesh.shape["fsdp"]

    def spec(path, leaf):
        rule = PARAM_RULES[_param_name(path)]
        if rule != P() and leaf.shape[0] % fsdp:  # an axis that does not split evenly stays whole
            rule = P()
        return NamedSharding(mesh, rule)

    return jax.tree_util.tree_map_with_path(spec, params)


def decay_mask(params: nnx.State) -> Any:
    """Weight decay applies to matrices only: not to norms and not to the token embedding."""
    return jax.tree_util.tree_map_with_path(lambda path, leaf: leaf.ndim == 2 and _param_name(path) != "token_embd", params)


def _block_index(path) -> int | None:
    """N for a parameter of blocks[N], None for the embedding, the final norm and the head."""
    keys = [p.key for p in path if isinstance(p, jax.tree_util.DictKey)]
    return keys[keys.index("blocks") + 1] if "blocks" in keys else None


def trainable_labels(params: nnx.State, tc: TrainConfig, n_layers: int) -> Any:
    """"train" or "frozen" for every parameter. train.trainable_blocks = -1 trains all;
    N trains the last N blocks and the final norm (the book's fine-tuning choice) and
    freezes the rest: the embedding (and so a tied head), and the earlier blocks. A
    classifier's head always trains."""
    def label(path, leaf) -> str:
        if tc.trainable_blocks < 0:
            return "train"
        block = _block_index(path)
        if block is None:
            return "train" if _param_name(path) in ("output_norm", "cls_output") else "frozen"
        return "train" if block >= n_layers - tc.trainable_blocks else "frozen"

    return jax.tree_util.tree_map_with_path(label, params)


def learning_rate_schedule(tc: TrainConfig) -> optax.Schedule:
    """Linear warmup from 0 to learning_rate, then cosine decay to learning_rate * min_lr_ratio."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=tc.learning_rate,
        warmup_steps=tc.warmup_steps,
        decay_steps=max(tc.steps, tc.warmup_steps + 1),
        end_value=tc.learning_rate * tc.min_lr_ratio,
    )


def make_optimizer(tc: TrainConfig, params: nnx.State) -> optax.GradientTransformation:
    """Clipped AdamW; with frozen parameters (train.trainable_blocks), AdamW and its
    clipping see only the trainable ones, and the frozen get zero updates and no state."""
    adamw = optax.chain(
        optax.clip_by_global_norm(tc.grad_clip),
        optax.adamw(learning_rate_schedule(tc), b1=tc.beta1, b2=tc.beta2, weight_decay=tc.weight_decay, mask=decay_mask),
    )
    if tc.trainable_blocks < 0:
        return adamw
    n_layers = len(params["blocks"])
    return optax.multi_transform({"train": adamw, "frozen": optax.set_to_zero()}, trainable_labels(params, tc, n_layers))


def cross_entropy_sum(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sum of next-token cross-entropy over positions where mask is 1, and their count.

    logits: (B, T, V) float32; targets, mask: (B, T). Positions with mask 0 (padding,
    or a prompt in fine-tuning) contribute nothing.
    """
    # -log softmax(z)[y] = logsumexp(z) - z[y]: the (B, T, V) log-probabilities are never stored.
    # z[y] as a masked sum, not a gather: a gather's gradient is a scatter, slow in XLA on a CPU,
    # and the compare fuses into the reduction (and its gradient into the softmax's).
    logits = logits.astype(jnp.float32)
    target_logits = jnp.sum(jnp.where(jnp.arange(logits.shape[-1]) == targets[..., None], logits, 0.0), axis=-1)
    losses = jax.nn.logsumexp(logits, axis=-1) - target_logits
    mask = mask.astype(jnp.float32)
    return jnp.sum(losses * mask), jnp.sum(mask)


def lm_loss_sum(model: Transformer, batch: dict) -> tuple[jax.Array, jax.Array]:
    """Next-token prediction: inputs tokens[:, :-1], targets tokens[:, 1:] where mask is 1."""
    return cross_entropy_sum(model(batch["tokens"][:, :-1]), batch["tokens"][:, 1:], batch["mask"])


def classifier_loss_sum(model: Transformer, batch: dict) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy of each row's label under the class logits of its last real token."""
    logits = model.classify(batch["tokens"], batch["last"])  # (b, n_classes)
    return cross_entropy_sum(logits[:, None], batch["label"][:, None], batch["weight"][:, None])


def loss_sum(model: Transformer, batch: dict, n_classes: int) -> tuple[jax.Array, jax.Array]:
    """The run's loss summed over what counts, and how much counts: n_classes 0 is a language model."""
    return classifier_loss_sum(model, batch) if n_classes else lm_loss_sum(model, batch)


def batch_shardings(mesh: Mesh, n_classes: int) -> dict[str, NamedSharding]:
    """Every array of a batch split by rows over all devices."""
    keys = BATCH_KEYS["classifier" if n_classes else "lm"] + ("stop",)
    two_d = {"tokens", "mask"}
    return {key: NamedSharding(mesh, BATCH_SPEC if key in two_d else P(MESH_AXES)) for key in keys}


def _compute_dtype(tc: TrainConfig):
    """float32 on CPU (bfloat16 has no fast path there); bfloat16 on accelerators, unless set."""
    if tc.compute_dtype == "auto":
        return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
    return jnp.bfloat16 if tc.compute_dtype == "bfloat16" else jnp.float32


def _abstract_model(mc: ModelConfig, tc: TrainConfig, n_classes: int = 0) -> tuple[nnx.GraphDef, nnx.State]:
    """The model's structure and parameter shapes, without allocating them."""
    return nnx.split(nnx.eval_shape(lambda: Transformer(mc, nnx.Rngs(0), _compute_dtype(tc), n_classes)), nnx.Param)


def state_shardings(mc: ModelConfig, tc: TrainConfig, mesh: Mesh, n_classes: int = 0) -> TrainState:
    """Where every array of the training state lives: params by PARAM_RULES, the
    optimizer's moments like their params (as the compiler places them), the step replicated."""
    _, abstract_params = _abstract_model(mc, tc, n_classes)
    params = param_specs(abstract_params, mesh)
    tx = make_optimizer(tc, abstract_params)
    placed = jax.tree.map(lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding), abstract_params, params)
    replicated = NamedSharding(mesh, P())
    compiled = jax.jit(tx.init).lower(placed).compile().output_shardings
    # Scalars such as Adam's step count come out on one device: replicate them instead.
    opt_state = jax.tree.map(lambda s: s if isinstance(s, NamedSharding) else replicated, compiled)
    return TrainState(replicated, params, opt_state)


def init_state(mc: ModelConfig, tc: TrainConfig, mesh: Mesh, tensors: dict[str, np.ndarray] | None = None,
               n_classes: int = 0) -> TrainState:
    """A freshly initialised model and optimizer, sharded over `mesh`; the weights are
    `tensors` (the spec's named arrays, e.g. a model file's) when given. n_classes > 0
    adds a classifier head (freshly initialised unless `tensors` holds one)."""
    model = Transformer(mc, nnx.Rngs(tc.seed), _compute_dtype(tc), n_classes)
    if tensors is not None:
        load_tensors(model, tensors)
    _, params = nnx.split(model, nnx.Param)
    shardings = state_shardings(mc, tc, mesh, n_classes)
    params = jax.device_put(params, shardings.params)
    opt_state = jax.jit(make_optimizer(tc, params).init, out_shardings=shardings.opt_state)(params)
    return TrainState(jax.device_put(jnp.zeros((), jnp.int32), shardings.step), params, opt_state)


def make_train_step(mc: ModelConfig, tc: TrainConfig, mesh: Mesh, n_classes: int = 0):
    """Returns the jitted `train_step(state, batch) -> (state, metrics)` for this mesh.

    A language model's batch (n_classes 0): "tokens" (batch_size, T + 1) int32 — inputs
    are tokens[:, :-1], targets tokens[:, 1:]; "mask" (batch_size, T), 1 where the target
    counts. A classifier's: BATCH_KEYS["classifier"] (`classifier_loss_sum`).
    """
    graphdef, abstract_params = _abstract_model(mc, tc, n_classes)
    tx = make_optimizer(tc, abstract_params)
    schedule = learning_rate_schedule(tc)

    labels = trainable_labels(abstract_params, tc, mc.n_layers)

    def micro_loss(params, micro):
        # Frozen parameters are constants to the gradient, so XLA drops their backward pass.
        params = jax.tree.map(lambda p, label: p if label == "train" else jax.lax.stop_gradient(p), params, labels)
        return loss_sum(nnx.merge(graphdef, params), micro, n_classes)

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        # Micro-batches run one after another; gradients of the summed loss add up, and
        # dividing by the total count at the end makes the step exactly a full-batch step.
        micros = {key: a.reshape(tc.grad_accum, -1, *a.shape[1:]) for key, a in batch.items()}
        grad_fn = jax.value_and_grad(micro_loss, has_aux=True)

        def accumulate(carry, micro):
            grads, total, count = carry
            (loss, n), g = grad_fn(state.params, micro)
            return (jax.tree.map(jnp.add, grads, g), total + loss, count + n), None

        if tc.grad_accum == 1:  # one micro-batch: no loop, and no zero-filled gradients to add it to
            (total, count), grads = grad_fn(state.params, batch)
        else:
            zeros = jax.tree.map(jnp.zeros_like, state.params)
            (grads, total, count), _ = jax.lax.scan(accumulate, (zeros, 0.0, 0.0), micros)
        count = jnp.maximum(count, 1.0)  # a batch with nothing to learn from is a no-op, not NaN
        grads = jax.tree.map(lambda g: g / count, grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": total / count, "grad_norm": optax.tree.norm(grads), "learning_rate": schedule(state.step),
                   "stop": jnp.max(batch["stop"])}
        return TrainState(state.step + 1, params, opt_state), metrics

    shardings = state_shardings(mc, tc, mesh, n_classes)
    replicated = NamedSharding(mesh, P())
    return jax.jit(
        train_step,
        in_shardings=(shardings, batch_shardings(mesh, n_classes)),
        out_shardings=(shardings, replicated),
        donate_argnums=0,  # the old state's buffers become the new state's
    )


# --- checkpoints -------------------------------------------------------------------------


def checkpoint_manager(run_dir: Path, tc: TrainConfig):
    """Orbax manager of run_dir/checkpoints: keeps the newest `keep_checkpoints`; each
    save is written to a temporary directory and renamed when complete (atomic)."""
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=tc.keep_checkpoints, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager((run_dir / "checkpoints").absolute(), options=options)


def save_checkpoint(manager, state: TrainState) -> None:
    import orbax.checkpoint as ocp

    manager.save(int(state.step), args=ocp.args.StandardSave(state._asdict()), force=True)
    manager.wait_until_finished()


def restore_checkpoint(manager, target: TrainState, step: int | None = None) -> TrainState:
    """The checkpoint of `step` (default: the newest), placed like `target` (same shapes and shardings)."""
    import orbax.checkpoint as ocp

    step = manager.latest_step() if step is None else step
    restored = manager.restore(step, args=ocp.args.StandardRestore(target._asdict()))
    return TrainState(**restored)


# --- the command line ----------------------------------------------------------------------


def evaluate(eval_step, params, shards, mc: ModelConfig, tc: TrainConfig, mesh: Mesh) -> float:
    """Mean validation loss over eval_batches fixed batches of the val split. Each process
    reads its rows of a batch, as in training; the sums are over the whole batch."""
    total = count = 0.0
    shardings = batch_shardings(mesh, 0)
    for i in range(tc.eval_batches):
        tokens = shards.batch(i, tc.batch_size, mc.context_length, tc.seed, split="val",
                              process_index=jax.process_index(), process_count=jax.process_count())
        local = {"tokens": tokens, "mask": np.ones((tokens.shape[0], tokens.shape[1] - 1), np.int32)}
        total_i, n = eval_step(params, {k: jax.make_array_from_process_local_data(shardings[k], a) for k, a in local.items()})
        total, count = total + float(total_i), count + float(n)
    return total / max(count, 1.0)


def make_eval_step(mc: ModelConfig, tc: TrainConfig, n_classes: int = 0):
    """`eval_step(params, batch) -> (loss sum, count)`: the loss of `train_step`, no update."""
    graphdef, _ = _abstract_model(mc, tc, n_classes)

    @jax.jit
    def eval_step(params, batch):
        return loss_sum(nnx.merge(graphdef, params), batch, n_classes)

    return eval_step


def _read_metrics(path: Path, up_to_step: int) -> list[dict]:
    """Metrics lines of earlier runs up to `up_to_step`: a resumed run rewrites the rest."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["step"] <= up_to_step]


def plot_loss(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train), label="train", linewidth=1)
    if val:
        ax.plot(*zip(*val), "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_yscale("log")  # the early drop is large; a log axis keeps the late steps visible
    # Ticks read 0.3, not 3 x 10^-1; between powers of ten only 2, 3 and 5 are labelled.
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
        lambda value, _: f"{value:g}" if value > 0 and f"{value:e}"[0] in "235" else ""))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _versions() -> dict:
    import importlib.metadata as md

    names = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy", "gollm")
    return {name: md.version(name) for name in names if _installed(name)} | {"python": sys.version.split()[0]}


def _installed(name: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(name)
        return True
    except md.PackageNotFoundError:
        return False


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8


def has_glibc_malloc() -> bool:
    """Linux with glibc: where keep_freed_host_memory can tell malloc what to do."""
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def keep_freed_host_memory() -> bool:
    """Has glibc's malloc keep freed memory for the next allocation, instead of handing it
    back to the kernel; True where it could (Linux with glibc).

    XLA on a CPU allocates each step's temporary buffers afresh and frees them when the
    step ends: for the demo step of 8 rows one block of 164 MiB. glibc serves a block that
    large from mmap (in XLA's threads, from a new arena, which also falls back to mmap) and
    unmaps it on free, so every step faults in and zeroes its pages again: 42,000 page
    faults a step, and on 2 cores the demo step took 0.160 s against 0.138 s without them
    (16 rows: 0.36 against 0.29 s). One arena, no mmap and no trimming keep the pages: the
    faults stop once the heap has grown to its high-water mark, within the first ~20 steps,
    and it stays there, higher than glibc's default peak (resident 1.04 GB against 0.71 at 8
    rows, 1.58 against 0.92 at 16). (PyTorch's CPU guides get the same from jemalloc or tcmalloc.)
    Large steps lose instead: the seed config at context 512 and 4 rows ran at 200 to 245
    tokens/s against 246 to 263 with glibc's defaults (faults a quarter fewer, the one arena
    contended), and a higher trim threshold (GLIBC_TUNABLES) did not change that.
    Call it before JAX starts its threads: a thread keeps the arena it first allocated from.
    """
    if not has_glibc_malloc():
        return False
    mallopt = ctypes.CDLL("libc.so.6").mallopt
    return all(mallopt(param, value) == 1 for param, value in
               ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1)))


HOST_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def _initialize_hosts() -> int | None:
    """Multi-host runs: join the other processes when JAX_COORDINATOR_ADDRESS (host:port),
    JAX_NUM_PROCESSES and JAX_PROCESS_ID are set; each process then reads only its own rows.

    GOLLM_INIT_TIMEOUT (seconds, default 300) bounds the wait for every process to join;
    GOLLM_HEARTBEAT_TIMEOUT (default 100) how long a silent process is taken for alive.
    """
    found = {name: os.environ.get(name) for name in HOST_VARIABLES}
    if not any(found.values()):
        if _cluster_detected():  # JAX reads SLURM's or the TPU pod's own variables (untested here)
            jax.distributed.initialize()
        return
    missing = [name for name, value in found.items() if not value]
    if missing:
        raise ConfigError(f"{', '.join(n for n in HOST_VARIABLES if n not in missing)} set but not {', '.join(missing)}: "
                          "a multi-host run needs all three (the coordinator's host:port, the process count, this process's id)")
    address = found["JAX_COORDINATOR_ADDRESS"]
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"JAX_COORDINATOR_ADDRESS={address}: expected HOST:PORT, e.g. 10.0.0.1:1234")
    try:
        count, index = int(found["JAX_NUM_PROCESSES"]), int(found["JAX_PROCESS_ID"])
        init_timeout, heartbeat = (int(os.environ.get(name, default)) for name, default in
                                   (("GOLLM_INIT_TIMEOUT", 300), ("GOLLM_HEARTBEAT_TIMEOUT", 100)))
    except ValueError:
        raise ConfigError("JAX_NUM_PROCESSES, JAX_PROCESS_ID, GOLLM_INIT_TIMEOUT and GOLLM_HEARTBEAT_TIMEOUT must be integers") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"JAX_PROCESS_ID={index} with JAX_NUM_PROCESSES={count}: the id must be in 0..{count - 1}")
    try:
        jax.distributed.initialize(address, num_processes=count, process_id=index,
                                   initialization_timeout=init_timeout, heartbeat_timeout_seconds=heartbeat)
        return heartbeat
    except Exception as err:  # XLA's coordination errors come as assorted runtime errors
        raise ConfigError(f"process {index} of {count} could not join the others at {address} within {init_timeout} s "
                          f"({str(err).splitlines()[0] if str(err) else type(err).__name__}): start every process with "
                          "the same JAX_COORDINATOR_ADDRESS and JAX_NUM_PROCESSES and a distinct JAX_PROCESS_ID") from None


class PeerWatch:
    """On several hosts, finds a dead or frozen peer and ends this process with peers_lost's
    one line. XLA alone does not do it well: a step's collectives wait on a dead peer without
    end, and when the coordinator's heartbeat timeout finds it, XLA aborts the process from a
    background thread with pages of C++ log. So each process bumps a counter of its own in the
    coordinator's key-value store every second, and this thread gives up on a peer whose
    counter has not moved for `stale` seconds (under the heartbeat timeout), or when the
    coordinator itself (process 0) is gone."""

    def __init__(self, run_dir: Path, stale: float):
        from jax._src import distributed  # the coordinator's client: JAX has no public handle on it

        self.client, self.run_dir, self.stale = distributed.global_state.client, run_dir, stale
        self.me, self.count = jax.process_index(), jax.process_count()
        # Set when this process's training is over: it goes on showing it is alive (a slower
        # peer may still be finishing) but judges no more, as JAX shuts the coordinator down.
        self.done = threading.Event()
        threading.Thread(target=self._run, name="peer-watch", daemon=True).start()

    def __enter__(self) -> PeerWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()

    def _lost(self, why) -> None:
        if not self.done.is_set():
            peers_lost(why, self.run_dir)

    def _run(self) -> None:
        seen: dict[int, tuple[str, float]] = {}  # peer -> (its counter, when it last moved here)
        while True:
            time.sleep(1.0)
            try:
                self.client.key_value_increment(f"gollm/alive/{self.me}", 1)
                judged = [] if self.done.is_set() else [p for p in range(self.count) if p != self.me]
                for peer in judged:
                    try:
                        value = self.client.key_value_try_get(f"gollm/alive/{peer}")
                    except Exception:  # not there yet: the peer is still starting
                        value = ""
                    if peer not in seen or seen[peer][0] != value:
                        seen[peer] = (value, time.monotonic())
                    elif time.monotonic() - seen[peer][1] > self.stale:
                        self._lost(f"process {peer} gave no sign of life for {self.stale:.0f} s")
            except Exception as err:  # the coordinator is unreachable: process 0 is gone
                self._lost(err)


def _cluster_detected() -> bool:
    """Whether this process is one of several that a SLURM job step or a TPU pod slice
    started, whose variables jax.distributed.initialize() reads by itself."""
    slurm = int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_PROCID" in os.environ
    tpu_pod = "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")
    return slurm or tpu_pod


def is_writer() -> bool:
    """Whether this process writes the run's files and talks to the user: process 0 of a
    multi-host run, the only one otherwise. Every process saves and restores checkpoints."""
    return jax.process_index() == 0


# --- checks before anything is allocated or written ----------------------------------------


def say(message: str) -> None:
    """A line for the user on stderr, printed above the progress bar if one is showing;
    on several hosts, by process 0 alone (errors are each process's own)."""
    from tqdm import tqdm

    if is_writer():
        tqdm.write(message, file=sys.stderr)


def warn_schedule(tc: TrainConfig) -> None:
    if tc.warmup_steps >= tc.steps:
        say(f"warning: train.warmup_steps ({tc.warmup_steps}) >= train.steps ({tc.steps}): "
            "the learning rate never reaches train.learning_rate")


def check_validation(shards, mc: ModelConfig, tc: TrainConfig) -> None:
    """Validation must be able to run before step 1, not fail at the first eval (and lose
    the checkpoint of that step): the val split needs one batch of distinct windows."""
    if tc.eval_every == 0:
        return
    seq = mc.context_length
    windows = shards.n_windows("val", seq)
    if windows >= tc.batch_size:
        return
    have = "has no validation split" if not any(s.split == "val" for s in shards.shards) else (
        f"has a validation split of {windows} window{'s' if windows != 1 else ''} of {seq + 1} tokens, "
        f"and one eval batch needs {tc.batch_size} (train.batch_size)")
    raise ConfigError(
        f"{shards.directory} {have}: prepare the data with a larger validation split "
        "(`data prepare` holds out 1% by default; --val-tokens N sets it), "
        "or pass --set train.eval_every=0 to train without validation"
    )


RUNTIME_BYTES = 2**29  # Python, JAX and XLA themselves: ~0.5 GiB of resident memory on a CPU


def memory_estimate(mc: ModelConfig, tc: TrainConfig, n_devices: int) -> dict[str, float]:
    """Bytes one host needs for training, estimated from the config before anything is
    allocated: float32 weights, AdamW's two moments, the gradients and their accumulator
    (5 copies, split over fsdp); the activations a micro-batch keeps for the backward
    pass (per token and layer ~14 vectors of dim, 5 of ffn_dim and 3 rows of attention
    scores, in the compute dtype; then the float32 logits, their softmax and gradients);
    and the runtime. The
    coefficients are fitted to the peak RSS of the demo config at batch sizes 16 and
    64 on a CPU (0.94 and 2.2 GB): the estimate is within ~15 % and errs high. Since the
    CLIs keep freed host memory (keep_freed_host_memory) a CPU run's heap stays at its
    high-water mark, which is higher at small batches: 1.58 GB at 16 rows, 2.08 at 64."""
    state = 5 * 4 * param_count(mc) * n_devices / tc.fsdp  # every local device holds its shard
    tokens = (tc.batch_size // tc.grad_accum) * mc.context_length  # across all devices
    per_token_layer = 14 * mc.dim + 5 * mc.ffn_dim + 3 * mc.n_heads * mc.context_length
    width = jnp.dtype(_compute_dtype(tc)).itemsize  # bfloat16 on accelerators halves the blocks' share
    activations = tokens * (width * mc.n_layers * per_token_layer + 4 * 4 * mc.vocab_size)
    return {"state": state, "activations": activations, "total": state + activations + RUNTIME_BYTES}


def available_memory() -> float | None:
    """Bytes this process can still use: the accelerator's limit, or the host's available RAM."""
    device = jax.local_devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        limit = stats.get("bytes_limit")
        return None if limit is None else float(limit) * jax.local_device_count()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _size(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def check_memory(mc: ModelConfig, tc: TrainConfig, say) -> None:
    """Prints the estimate; refuses, before allocating, a config that cannot fit."""
    need, have = memory_estimate(mc, tc, jax.local_device_count()), available_memory()
    line = (f"memory: ~{_size(need['total'])} estimated (weights, AdamW and gradients {_size(need['state'])}, "
            f"activations {_size(need['activations'])}, runtime {_size(RUNTIME_BYTES)})")
    say(line + (f", {_size(have)} available" if have is not None else ""))
    if have is not None and need["total"] > have:
        raise ConfigError(
            f"the config needs about {_size(need['total'])} to train and {_size(have)} is available: "
            "raise train.grad_accum or lower train.batch_size (activations), "
            "raise train.fsdp over more devices (weights), or train a smaller model"
        )


# Config fields a resumed run may change: they decide when things happen, not what is computed
# (train.steps changes the learning-rate schedule from here on, and says so).
RESUMABLE_FIELDS = {"train.steps", "train.checkpoint_every", "train.keep_checkpoints", "train.eval_every",
                    "train.eval_batches", "train.fsdp", "train.grad_accum"}


def run_record(mc: ModelConfig, tc: TrainConfig, data: Path, shards, tokenizer_dir: Path | None = None) -> dict:
    """What config.json records: enough to refuse a resume that would damage the run, and
    the tokenizer's directory when it is known (export then needs no --tokenizer)."""
    return {"model": dataclasses.asdict(mc), "train": dataclasses.asdict(tc), "data": str(data.absolute()),
            "tokenizer": None if tokenizer_dir is None else str(tokenizer_dir.absolute()),
            "tokenizer_sha256": shards.tokenizer_sha256,
            "shards": [dataclasses.asdict(s) for s in shards.shards], "versions": _versions()}


def check_resume(run_dir: Path, recorded: dict, current: dict, say) -> None:
    """Raises one ConfigError naming every difference between the run and this command
    that a resume cannot absorb; says what it does absorb."""
    where = run_dir / "config.json"
    diffs = []
    defaults = {"model": {}, "train": dataclasses.asdict(TrainConfig())}  # a field newer than the run had its default
    for section in ("model", "train"):
        old, new = defaults[section] | (recorded.get(section) or {}), current[section]
        for key in sorted(set(old) | set(new)):
            name = f"{section}.{key}"
            if old.get(key) != new.get(key) and name not in RESUMABLE_FIELDS:
                diffs.append(f"{name}: run has {old.get(key, '(none)')}, command has {new.get(key, '(none)')}")
    if recorded.get("tokenizer_sha256") != current["tokenizer_sha256"]:
        diffs.append("tokenizer: the data was made with another tokenizer (sha256 differs)")
    # What else decides the run, for kinds of runs that record it (fine-tuning): files by sha256, and settings.
    for field, describe in (("input_files", lambda old, new: "the file changed since the run started"),
                            ("inputs", lambda old, new: f"run has {old}, command has {new}")):
        old, new = recorded.get(field) or {}, current.get(field) or {}
        diffs += [f"{key}: {describe(old.get(key), new.get(key))}" for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    # A run recorded before shard hashes were kept has nothing to compare them with.
    old_shards = {s["file"]: s for s in recorded.get("shards") or []}
    new_shards = {s["file"]: s for s in current["shards"]} if "shards" in recorded else {}
    for name in sorted(set(old_shards) | set(new_shards)):
        if old_shards.get(name) != new_shards.get(name):
            change = "missing" if name not in new_shards else "new" if name not in old_shards else "changed"
            diffs.append(f"shard {name}: {change} since the run started")
    if diffs:
        raise ConfigError(f"{where}: this run was started differently, so it cannot resume: " + "; ".join(diffs)
                          + f" (restore them, or pass another --run-dir to start a new run)")
    old_train = recorded.get("train") or {}
    for key in ("steps", "grad_accum", "fsdp"):
        if old_train.get(key) != current["train"][key]:
            note = " (the learning-rate schedule changes from here on)" if key == "steps" else ""
            say(f"note: train.{key} changed from {old_train.get(key)} to {current['train'][key]}{note}")
    old_versions = recorded.get("versions") or {}
    changed = [f"{k} {old_versions[k]} -> {v}" for k, v in current["versions"].items() if k in old_versions and old_versions[k] != v]
    if changed:
        say("warning: package versions changed since the run started (" + ", ".join(changed)
            + "); the data order and losses may differ from an uninterrupted run")


def _write_json_atomically(path: Path, value: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def _open_run(run_dir: Path):
    """(recorded config or None, newest checkpoint step or None) of a run directory, read-only."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: is a file; --run-dir takes a directory (it is created if missing)")
    record_path = run_dir / "config.json"
    checkpoints = run_dir / "checkpoints"
    steps = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()) if checkpoints.is_dir() else []
    if not steps:
        return None, None
    try:
        recorded = json.loads(record_path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{run_dir}: has checkpoints but no config.json, so a resume cannot be checked; "
                          "pass another --run-dir to start a new run") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{record_path}: not valid JSON; pass another --run-dir to start a new run") from None
    return recorded, steps[-1]


# --- stopping cleanly ----------------------------------------------------------------------


class StopRequest:
    """SIGINT and SIGTERM during the loop ask it to stop after the current step, save a
    checkpoint and exit (130 or 143): a step is never cut in half, and nothing is lost.
    A second signal stops at once; the last completed checkpoint stays intact (orbax
    writes each save to a temporary directory and renames it when complete)."""

    def __init__(self):
        self.signum: int | None = None
        self.agreed = False  # a step reported a vote to stop (several hosts: see heard)
        self._previous = {}

    def __enter__(self) -> StopRequest:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            print(f"\nsecond {signal.Signals(signum).name}: stopping now, without a checkpoint of this step",
                  file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)

    @property
    def vote(self) -> int:
        """What this process puts into every step (BATCH_KEYS' "stop"): its signal, or 0."""
        return self.signum or 0

    def heard(self, votes: float) -> None:
        """A step's largest vote over every process (its "stop" metric). On several hosts the
        loop stops on what the steps report, never on a process's own signal, so that all of
        them stop after the same step (one that went on would wait for the others forever);
        the votes travel inside the step, so asking costs no extra message or wait."""
        if votes and self.signum is None:
            self.signum = int(votes)  # another process was signalled: stop as it does
        self.agreed = self.agreed or bool(votes)


class Prefetcher:
    """batch(step) for step = first, first + 1, ... < end, each made on a thread while the
    step before it runs; `get` returns them in order (and raises what making one raised)."""

    def __init__(self, batch: Callable[[int], dict], first: int, end: int):
        from concurrent.futures import ThreadPoolExecutor

        self.batch, self.end = batch, end
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches")
        self.next = self.pool.submit(batch, first) if first < end else None

    def get(self, step: int) -> dict:
        arrays = self.next.result()
        self.next = self.pool.submit(self.batch, step + 1) if step + 1 < self.end else None
        return arrays

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class StepProfiler:
    """With a directory: a jax.profiler trace of STEPS steps, from this run's third on (its
    first compiles). View it with TensorBoard's profile plugin or Perfetto."""

    FIRST, STEPS = 2, 3

    def __init__(self, directory: Path | None, start: int, end: int):
        self.directory, self.first = directory, start + self.FIRST
        self.last = min(self.first + self.STEPS, end) - 1
        self.tracing = False
        if directory is not None and self.first >= end:
            say(f"profile: nothing traced: the trace starts at step {self.first + 1} and the run ends at step {end}")

    def before(self, step: int) -> None:
        if self.directory is not None and step == self.first:
            jax.profiler.start_trace(str(self.directory))
            self.tracing = True

    def ends_at(self, step: int) -> bool:
        return self.tracing and step == self.last

    def after(self, step: int) -> None:
        """Called with the step's results fetched: the trace holds every traced step whole."""
        if self.ends_at(step):
            self._stop()
            say(f"profile: steps {self.first + 1}-{self.last + 1} traced into {self.directory}")

    def _stop(self) -> None:
        jax.profiler.stop_trace()
        self.tracing = False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.tracing:  # the run ended (or failed) before the last traced step
            self._stop()


class Stopped(Exception):
    """Training stopped on a signal after saving a checkpoint of `step`."""

    def __init__(self, step: int, exit_code: int):
        super().__init__(f"stopped at step {step}; run the same command to resume")
        self.step, self.exit_code = step, exit_code


# --- the training run -----------------------------------------------------------------------


SOURCE_FILE = "source.json"  # what a run's own tokenizer and shards were made from


def open_data(data: Path, vocab_size: int):
    """The token shards a --data path names, with errors that say what was passed instead."""
    from jaxmodel.shards import INDEX_FILE, TokenShards

    if data.is_file() and data.name == INDEX_FILE:
        raise ConfigError(f"{data}: is the shard index file; pass the directory that holds it: --data {data.parent}")
    if data.is_file() and (data.parent / INDEX_FILE).is_file():
        raise ConfigError(f"{data}: is one file of a shard directory; pass the directory: --data {data.parent}")
    if not data.exists():
        raise ConfigError(f"{data}: no such file or directory")
    return TokenShards.open(data, vocab_size=vocab_size)


def is_shard_directory(data: Path) -> bool:
    from jaxmodel.shards import INDEX_FILE

    # A file inside a shard directory is a mistake for open_data to name, not raw text.
    return data.is_dir() and (data / INDEX_FILE).is_file() or data.is_file() and (data.parent / INDEX_FILE).is_file()


def check_tokenizer_dir(path: Path) -> None:
    from jaxmodel import tokenizer as tk

    if path.is_file():
        raise ConfigError(f"{path}: is a file; --tokenizer takes the directory that holds {tk.RANKS_FILE} "
                          f"and {tk.CONFIG_FILE}: --tokenizer {path.parent}")
    if not path.is_dir():
        raise ConfigError(f"{path}: no such directory (--tokenizer takes a directory made by `python -m jaxmodel.tokenizer train`)")


def prepare_raw_data(inputs: Path, run_dir: Path, mc: ModelConfig, tc: TrainConfig, tokenizer_dir: Path | None,
                     progress: bool, say) -> tuple[Path, Path]:
    """Raw text (a .txt, .jsonl or .parquet file, or a directory of them) -> a tokenizer and
    shards inside the run directory: (shard directory, tokenizer directory).

    Both are reused while the input's content (a sha256 over every file), the vocabulary
    size and the tokenizer choice stay the same, and made again when they change, unless
    the run already has checkpoints: a model is tied to its data, so a changed input is
    refused rather than rebuilt under it.
    """
    import shutil

    from jaxmodel import data as prep, documents, tokenizer as tk

    files = documents.expand_inputs([inputs])
    if tokenizer_dir is not None and (size := tk.load(tokenizer_dir).size) != mc.vocab_size:
        raise ConfigError(f"{tokenizer_dir}: a tokenizer of {size:,} tokens, but model.vocab_size is {mc.vocab_size:,}")
    source = {"inputs": [str(f.absolute()) for f in files], "sha256": documents.inputs_sha256([inputs]),
              "vocab_size": mc.vocab_size,
              "tokenizer": None if tokenizer_dir is None else {"from": str(tokenizer_dir.absolute()), "sha256": tk.fingerprint(tokenizer_dir)}}
    shard_dir, own_tokenizer, source_path = run_dir / "data", run_dir / "tokenizer", run_dir / SOURCE_FILE
    try:
        recorded = json.loads(source_path.read_text())
    except (OSError, ValueError):
        recorded = None
    same = recorded is not None and all(recorded.get(k) == source[k] for k in ("sha256", "vocab_size", "tokenizer"))
    if same and (shard_dir / "index.json").is_file() and (own_tokenizer / tk.RANKS_FILE).is_file():
        say(f"data: reusing {own_tokenizer} and {shard_dir} (the input is unchanged, sha256 {source['sha256'][:12]})")
        return shard_dir, own_tokenizer
    if _open_run(run_dir)[1] is not None:
        if recorded is None:
            what = f"has no {SOURCE_FILE}, so its data cannot be checked against {inputs}"
        elif recorded.get("sha256") != source["sha256"]:
            what = f"was trained on other text: {inputs} has changed (sha256 {recorded.get('sha256', '?')[:12]}, now {source['sha256'][:12]})"
        else:
            what = f"made its tokenizer another way ({SOURCE_FILE} differs: vocab_size or --tokenizer)"
        raise ConfigError(f"{run_dir}: this run {what}; restore it, or pass another --run-dir to train on the new data")
    if jax.process_count() > 1:
        raise ConfigError("several processes cannot prepare raw text together: make the shards first "
                          "(python -m jaxmodel.data prepare) and pass their directory as --data")

    run_dir.mkdir(parents=True, exist_ok=True)
    source_path.unlink(missing_ok=True)  # written last: a preparation cut short is done again
    total = sum(f.stat().st_size for f in files)
    if tokenizer_dir is None:
        say(f"data: training a {mc.vocab_size:,}-token tokenizer on {len(files)} file{'s' if len(files) != 1 else ''} "
            f"({_size(total)}) -> {own_tokenizer}")
        vocab = tk.train(files, mc.vocab_size, progress=progress)
        tk.save(vocab, own_tokenizer)
    else:
        say(f"data: using the tokenizer {tokenizer_dir} (copied to {own_tokenizer})")
        own_tokenizer.mkdir(parents=True, exist_ok=True)
        for name in (tk.RANKS_FILE, tk.CONFIG_FILE):
            shutil.copyfile(tokenizer_dir / name, own_tokenizer / name)
    shards = prep.prepare(files, own_tokenizer, shard_dir, progress=progress, overwrite=True)
    if tc.eval_every and shards.n_windows("val", mc.context_length) < tc.batch_size:
        # A small corpus: 1% of its documents cannot fill one eval batch, so hold out that much instead.
        need = tc.batch_size * mc.context_length + 1
        say(f"data: 1% of the documents is too little for one eval batch; holding out the first {need:,} tokens instead")
        shards = prep.prepare(files, own_tokenizer, shard_dir, val_tokens=need, progress=progress, overwrite=True)
    say(f"data: {shards.n_tokens('train'):,} train tokens"
        + (f" and {shards.n_tokens('val'):,} validation tokens" if any(s.split == "val" for s in shards.shards) else "")
        + f" -> {shard_dir}")
    _write_json_atomically(source_path, source)
    return shard_dir, own_tokenizer


def train(config_path: Path, data: Path, run_dir: Path, overrides: list[str], progress: bool = True,
          tokenizer_dir: Path | None = None, profile: Path | None = None) -> list[dict]:
    """Trains (or resumes) a pretraining run; returns the metrics of every step.

    `data` is a shard directory, or raw text that becomes a tokenizer and shards inside
    the run directory first (`prepare_raw_data`). `tokenizer_dir` reuses a tokenizer.

    Everything that can be wrong is checked before the run directory is touched: the
    config, the data, the validation split, the memory, and that a resumed run is the
    same run. config.json is written only then.
    """
    mc, tc = load_train_config(config_path, overrides)
    warn_schedule(tc)
    heartbeat = _initialize_hosts()
    with PeerWatch(run_dir, stale=max(3.0, heartbeat / 3)) if heartbeat is not None else contextlib.nullcontext():
        return _train(mc, tc, data, run_dir, progress, tokenizer_dir, profile)


def _train(mc: ModelConfig, tc: TrainConfig, data: Path, run_dir: Path, progress: bool, tokenizer_dir: Path | None,
           profile: Path | None) -> list[dict]:
    """train() once the hosts are joined."""
    if tokenizer_dir is not None:
        check_tokenizer_dir(tokenizer_dir)
    if is_shard_directory(data) or not data.exists():
        shards = open_data(data, mc.vocab_size)
        if tokenizer_dir is not None:
            _check_shards_tokenizer(shards, tokenizer_dir)
    else:
        data, tokenizer_dir = prepare_raw_data(data, run_dir, mc, tc, tokenizer_dir, progress, say)
        shards = open_data(data, mc.vocab_size)
    check_validation(shards, mc, tc)
    record = run_record(mc, tc, data, shards, tokenizer_dir)
    recorded, latest = _open_run(run_dir)
    if recorded is not None:
        check_resume(run_dir, recorded, record, say)
        shards.verify()  # a resumed run must read exactly the tokens it started with

    def batch(step: int) -> dict[str, np.ndarray]:
        tokens = shards.batch(step, tc.batch_size, mc.context_length, tc.seed,
                              process_index=jax.process_index(), process_count=jax.process_count())
        return {"tokens": tokens, "mask": np.ones((tokens.shape[0], tokens.shape[1] - 1), np.int32)}  # every target counts

    def validate(eval_step, params) -> float:
        return evaluate(eval_step, params, shards, mc, tc, make_mesh(jax.device_count() // tc.fsdp, tc.fsdp))

    return fit(mc, tc, run_dir, record, latest, batch, validate if tc.eval_every else None, say, progress, profile=profile)


def fit(mc: ModelConfig, tc: TrainConfig, run_dir: Path, record: dict, latest: int | None,
        batch: Callable[[int], dict[str, np.ndarray]], validate: Callable | None, say, progress: bool,
        tensors: dict[str, np.ndarray] | None = None, n_classes: int = 0, profile: Path | None = None) -> list[dict]:
    """The training loop every kind of run shares (pretraining, fine-tuning); returns every step's metrics.

    `batch(step)` is this process's rows of the step's batch (BATCH_KEYS: a language
    model's tokens and mask, or, with n_classes > 0, a classifier's), a pure function of
    the step so that a resumed run repeats an uninterrupted one. `validate(eval_step,
    params)` is the validation loss, or a dict of validation metrics ("val_loss" first),
    or None for none. `record` is written to config.json once the start is good; `latest`
    is the checkpoint to resume from (None: a new run, from `tensors` by spec name if
    given, else from a fresh init). `profile`, a directory, gets a trace of a few steps
    (StepProfiler). The caller has checked everything about its data and a resumed run's record.
    """
    from tqdm import tqdm

    n_devices = jax.device_count()
    if n_devices % tc.fsdp:
        raise ConfigError(f"train.fsdp ({tc.fsdp}) must divide the number of devices ({n_devices})")
    if (tc.batch_size // tc.grad_accum) % n_devices:
        raise ConfigError(
            f"a micro-batch (train.batch_size / train.grad_accum = {tc.batch_size // tc.grad_accum}) "
            f"must split evenly over the {n_devices} devices"
        )
    check_memory(mc, tc, say)
    mesh = make_mesh(n_devices // tc.fsdp, tc.fsdp)
    state = init_state(mc, tc, mesh, tensors if latest is None else None, n_classes)
    run_dir.mkdir(parents=True, exist_ok=True)
    manager = checkpoint_manager(run_dir, tc)
    if latest is not None:
        try:
            state = restore_checkpoint(manager, state, latest)
        except Exception as err:  # orbax raises many types; the run's files are left as they are
            raise ConfigError(f"{run_dir / 'checkpoints' / str(latest)}: cannot be restored "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                              "move it away to resume from the one before, or pass another --run-dir") from None
        say(f"resumed from step {latest} (checkpoint {run_dir / 'checkpoints' / str(latest)})")
    writer = is_writer()  # on several hosts, process 0 alone writes config.json, metrics.jsonl and loss.png
    if writer:
        _write_json_atomically(run_dir / "config.json", record)
    start = int(state.step)
    metrics_path = run_dir / "metrics.jsonl"
    rows = _read_metrics(metrics_path, start)
    if writer:
        metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if start >= tc.steps:
        say(f"the run is complete: step {start} of train.steps {tc.steps} (--set train.steps=N trains further)")

    step_fn = make_train_step(mc, tc, mesh, n_classes)
    eval_step = make_eval_step(mc, tc, n_classes) if validate is not None else None
    shardings = batch_shardings(mesh, n_classes)
    tokens_per_step = [0]  # predicted positions a step, from the first batch: fine-tuning rows may be shorter than the context
    bar = tqdm(total=tc.steps, initial=start, disable=not (progress and writer), unit="step", dynamic_ncols=True, file=sys.stderr)
    clock = [time.perf_counter()]

    def row_of(step: int, metrics: dict) -> dict:
        """The step's metrics as numbers: this waits for the step to finish."""
        row = {"step": step + 1, **{k: float(v) for k, v in metrics.items()}}
        stop.heard(row.pop("stop"))
        now = time.perf_counter()
        row["tokens_per_s"], clock[0] = tokens_per_step[0] / (now - clock[0]), now
        return row

    def emit(row: dict) -> None:
        log.write(json.dumps(row) + "\n")
        log.flush()
        rows.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['learning_rate']:.2e}", tok_s=f"{row['tokens_per_s']:,.0f}", refresh=False)
        bar.update(1)

    # The loop keeps the device busy: the next batch is made on a thread while a step runs, and
    # a step's metrics are read only once the next step is queued behind it (JAX dispatches
    # asynchronously), except where the host needs the state: validation, checkpoints, the end.
    pending = None  # (step, metrics) of a step queued and not yet written
    with open(metrics_path if writer else os.devnull, "a") as log, StopRequest() as stop, Prefetcher(batch, start, tc.steps) as batches, \
            StepProfiler(profile, start, tc.steps) as profiler:
        for step in range(start, tc.steps):
            local = batches.get(step)
            if not tokens_per_step[0]:  # a language model's row of T + 1 ids predicts T of them
                tokens_per_step[0] = tc.batch_size * (local["tokens"].shape[1] - (0 if n_classes else 1))
            local["stop"] = np.full(len(local["tokens"]), stop.vote, np.int32)
            arrays = {key: jax.make_array_from_process_local_data(shardings[key], a) for key, a in local.items()}
            profiler.before(step)
            state, metrics = step_fn(state, arrays)
            if pending is not None:
                emit(row_of(*pending))
            pending = (step, metrics)
            # One process alone stops on its own signal; several stop on what the steps reported.
            stopping = stop.agreed or (jax.process_count() == 1 and stop.signum is not None)
            evaluate_now = eval_step is not None and ((step + 1) % tc.eval_every == 0 or step + 1 == tc.steps)
            save_now = (step + 1) % tc.checkpoint_every == 0 or step + 1 == tc.steps or stopping
            if not (evaluate_now or save_now or profiler.ends_at(step)):
                continue
            row, pending = row_of(*pending), None
            profiler.after(step)
            if evaluate_now:
                found = validate(eval_step, state.params)
                row |= found if isinstance(found, dict) else {"val_loss": found}
                extra = "".join(f", {k.removeprefix('val_').replace('_', ' ')} {v:.4g}" for k, v in row.items()
                                if k.startswith("val_") and k != "val_loss")
                say(f"step {step + 1}: validation loss {row['val_loss']:.4f}{extra} (train {row['loss']:.4f})")
            emit(row)
            if save_now:
                save_checkpoint(manager, state)
                say(f"step {step + 1}: saved checkpoint {run_dir / 'checkpoints' / str(step + 1)}")
                clock[0] = time.perf_counter()  # the save is not the next step's time
            if stopping:
                break
    bar.close()
    manager.close()
    if writer:
        plot_loss(rows, run_dir / "loss.png")
    if stop.signum is not None and rows and rows[-1]["step"] < tc.steps:
        raise Stopped(rows[-1]["step"], stop.exit_code)
    return rows


def _check_shards_tokenizer(shards, tokenizer_dir: Path) -> None:
    from jaxmodel import tokenizer as tk

    if shards.tokenizer_sha256 and shards.tokenizer_sha256 != tk.fingerprint(tokenizer_dir):
        raise ConfigError(f"{tokenizer_dir}: not the tokenizer {shards.directory} was made with (sha256 differs)")


class _OrbaxThreadFailures(logging.Filter):
    """Drops, on a multi-host run, orbax's log of a failed background operation (a dead
    peer's closed socket): the main thread gets the same error and peers_lost says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and record.pathname.endswith("futures/future.py")
                    and jax.process_count() > 1)


def peers_lost(err: Exception, run_dir: Path) -> None:
    """A collective or the coordinator failed on a multi-host run: another process died (or
    this one lost it). One line, then exit at once: JAX's own shutdown would wait for the
    dead process at a barrier and abort with pages of C++ log."""
    import orbax.checkpoint as ocp

    first = (str(err).splitlines() or [type(err).__name__])[0][:240]
    steps = ocp.utils.checkpoint_steps(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else []
    resume = f"step {max(steps)}" if steps else "the start (no checkpoint yet)"
    print(f"error: process {jax.process_index()} of {jax.process_count()} lost the others ({first}); "
          f"restart every process with the same command to resume from {resume}", file=sys.stderr, flush=True)
    os._exit(1)


def leave_together(exit_code: int, run_dir: Path) -> None:
    """A stopped multi-host run exits: every process stopped at the same step and closed its
    checkpoints, so after one last barrier there is nothing left to do. It exits at once, as
    peers_lost does: JAX's teardown at interpreter exit sometimes aborted a process here
    (SIGABRT, "FATAL: exception not rethrown"), turning exit code 143 into -6 after the
    work was done."""
    from jax.experimental import multihost_utils

    try:
        multihost_utils.sync_global_devices("gollm: stopped")
    except jax.errors.JaxRuntimeError as err:
        peers_lost(err, run_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.train", description="Train a gollm model.")
    parser.add_argument("--config", type=Path, required=True, help="model and training config (YAML)")
    parser.add_argument("--data", type=Path, required=True,
                        help="a directory of token shards (spec/data.md), or raw text: a .txt, .jsonl or .parquet file "
                             "or a directory of them, made into a tokenizer and shards inside the run directory")
    parser.add_argument("--tokenizer", type=Path, help="reuse this tokenizer directory instead of training one on raw --data")
    parser.add_argument("--run-dir", type=Path, help="checkpoints, metrics.jsonl, loss.png (default: runs/<config name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set train.steps=50 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help=f"write a jax.profiler trace of {StepProfiler.STEPS} steps (from the run's third) into DIR")
    args = parser.parse_args(argv)
    keep_freed_host_memory()
    from jaxmodel.documents import DocumentError
    from jaxmodel.shards import ShardError
    from jaxmodel.tokenizer import TokenizerError

    run_dir = args.run_dir or Path("runs") / args.config.stem
    # A multi-host run's background threads (orbax's checkpoint commit) meet a dead peer as
    # the main thread does, and often first: the same one line, not a thread's traceback.
    default_hook = threading.excepthook
    threading.excepthook = lambda hook: (peers_lost(hook.exc_value, run_dir) if jax.process_count() > 1
                                         and isinstance(hook.exc_value, Exception) else default_hook(hook))
    # Orbax's commit thread logs its own failure with a traceback (absl logging.exception)
    # and hands the error to the main thread, which reports it in that one line.
    logging.getLogger("absl").addFilter(_OrbaxThreadFailures())
    try:
        rows = train(args.config, args.data, run_dir, args.overrides, progress=not args.no_progress, tokenizer_dir=args.tokenizer,
                     profile=args.profile)
    except (ConfigError, ShardError, DocumentError, TokenizerError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Stopped as stopped:
        print(stopped, file=sys.stderr)
        if jax.process_count() > 1:
            leave_together(stopped.exit_code, run_dir)
        return stopped.exit_code
    except jax.errors.JaxRuntimeError as err:
        if jax.process_count() == 1:
            raise
        peers_lost(err, run_dir)
    last = rows[-1] if rows else {}
    print(f"{run_dir}: step {last.get('step', 0)}, loss {last.get('loss', float('nan')):.4f}, "
          f"{param_count(load_train_config(args.config, args.overrides)[0]):,} parameters")
    return 0


# Outside the loop (StopRequest) no step is under way: the run holds what its checkpoints hold.
INTERRUPTED = "no checkpoint was lost; run the same command to go on"

if __name__ == "__main__":
    sys.exit(cli.run(main, interrupted=INTERRUPTED))
