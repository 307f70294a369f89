"""Training: the loss, the optimizer, one pure jitted step, sharding, checkpoints, the CLI.

    python -m jaxmodel.train --config configs/demo.yaml --data shards/ [--run-dir runs/demo]
                             [--set train.steps=200 ...]

The story of `main`: read the config, open the data, build the mesh, initialise
or resume the state, then loop (batch -> train_step -> metrics -> sometimes
validation and a checkpoint), and draw the loss curve at the end.

`train_step(state, batch) -> (state, metrics)` is one pure function, compiled once
with explicit shardings: parameters and optimizer state are sharded by the rules
in `PARAM_RULES` (the one place sharding is declared) over the "fsdp" mesh axis,
the batch over both "data" and "fsdp". A batch is a pure function of (seed, step)
(jaxmodel/shards.py), so the checkpointed step is the whole data position and a
resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmodel.config import ConfigError, ModelConfig, TrainConfig, load_train_config, param_count
from jaxmodel.model import Transformer

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
}
BATCH_SPEC = P(MESH_AXES, None)  # sequences split over every device


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
    return optax.chain(
        optax.clip_by_global_norm(tc.grad_clip),
        optax.adamw(learning_rate_schedule(tc), b1=tc.beta1, b2=tc.beta2, weight_decay=tc.weight_decay, mask=decay_mask(params)),
    )


def cross_entropy_sum(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sum of next-token cross-entropy over positions where mask is 1, and their count.

    logits: (B, T, V) float32; targets, mask: (B, T). Positions with mask 0 (padding,
    or a prompt in fine-tuning) contribute nothing.
    """
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    target_log_probs = jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    mask = mask.astype(jnp.float32)
    return -jnp.sum(target_log_probs * mask), jnp.sum(mask)


def _compute_dtype(tc: TrainConfig):
    """float32 on CPU (bfloat16 has no fast path there); bfloat16 on accelerators, unless set."""
    if tc.compute_dtype == "auto":
        return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
    return jnp.bfloat16 if tc.compute_dtype == "bfloat16" else jnp.float32


def _abstract_model(mc: ModelConfig, tc: TrainConfig) -> tuple[nnx.GraphDef, nnx.State]:
    """The model's structure and parameter shapes, without allocating them."""
    return nnx.split(nnx.eval_shape(lambda: Transformer(mc, nnx.Rngs(0), _compute_dtype(tc))), nnx.Param)


def state_shardings(mc: ModelConfig, tc: TrainConfig, mesh: Mesh) -> TrainState:
    """Where every array of the training state lives: params by PARAM_RULES, the
    optimizer's moments like their params (as the compiler places them), the step replicated."""
    _, abstract_params = _abstract_model(mc, tc)
    params = param_specs(abstract_params, mesh)
    tx = make_optimizer(tc, abstract_params)
    placed = jax.tree.map(lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding), abstract_params, params)
    replicated = NamedSharding(mesh, P())
    compiled = jax.jit(tx.init).lower(placed).compile().output_shardings
    # Scalars such as Adam's step count come out on one device: replicate them instead.
    opt_state = jax.tree.map(lambda s: s if isinstance(s, NamedSharding) else replicated, compiled)
    return TrainState(replicated, params, opt_state)


def init_state(mc: ModelConfig, tc: TrainConfig, mesh: Mesh) -> TrainState:
    """A freshly initialised model and optimizer, sharded over `mesh`."""
    _, params = nnx.split(Transformer(mc, nnx.Rngs(tc.seed), _compute_dtype(tc)), nnx.Param)
    shardings = state_shardings(mc, tc, mesh)
    params = jax.device_put(params, shardings.params)
    opt_state = jax.jit(make_optimizer(tc, params).init, out_shardings=shardings.opt_state)(params)
    return TrainState(jax.device_put(jnp.zeros((), jnp.int32), shardings.step), params, opt_state)


def make_train_step(mc: ModelConfig, tc: TrainConfig, mesh: Mesh):
    """Returns the jitted `train_step(state, batch) -> (state, metrics)` for this mesh.

    batch["tokens"]: (batch_size, T + 1) int32 — inputs are tokens[:, :-1], targets
    tokens[:, 1:]; batch["mask"]: (batch_size, T), 1 where the target counts.
    """
    graphdef, abstract_params = _abstract_model(mc, tc)
    tx = make_optimizer(tc, abstract_params)
    schedule = learning_rate_schedule(tc)

    def loss_sum(params, tokens, mask):
        logits = nnx.merge(graphdef, params)(tokens[:, :-1])
        return cross_entropy_sum(logits, tokens[:, 1:], mask)

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        # Micro-batches run one after another; gradients of the summed loss add up, and
        # dividing by the total count at the end makes the step exactly a full-batch step.
        tokens = batch["tokens"].reshape(tc.grad_accum, -1, batch["tokens"].shape[-1])
        mask = batch["mask"].reshape(tc.grad_accum, -1, batch["mask"].shape[-1])
        grad_fn = jax.value_and_grad(loss_sum, has_aux=True)

        def accumulate(carry, micro):
            grads, total, count = carry
            (loss, n), g = grad_fn(state.params, *micro)
            return (jax.tree.map(jnp.add, grads, g), total + loss, count + n), None

        zeros = jax.tree.map(jnp.zeros_like, state.params)
        (grads, total, count), _ = jax.lax.scan(accumulate, (zeros, 0.0, 0.0), (tokens, mask))
        count = jnp.maximum(count, 1.0)  # a batch with nothing to learn from is a no-op, not NaN
        grads = jax.tree.map(lambda g: g / count, grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": total / count, "grad_norm": optax.tree.norm(grads), "learning_rate": schedule(state.step)}
        return TrainState(state.step + 1, params, opt_state), metrics

    shardings = state_shardings(mc, tc, mesh)
    batch = {"tokens": NamedSharding(mesh, BATCH_SPEC), "mask": NamedSharding(mesh, BATCH_SPEC)}
    replicated = NamedSharding(mesh, P())
    return jax.jit(
        train_step,
        in_shardings=(shardings, batch),
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


def evaluate(eval_step, state: TrainState, shards, mc: ModelConfig, tc: TrainConfig) -> float:
    """Mean validation loss over eval_batches fixed batches of the val split."""
    total = count = 0.0
    for i in range(tc.eval_batches):
        tokens = shards.batch(i, tc.batch_size, mc.context_length, tc.seed, split="val")
        loss_sum, n = eval_step(state.params, tokens)
        total, count = total + float(loss_sum), count + float(n)
    return total / max(count, 1.0)


def make_eval_step(mc: ModelConfig, tc: TrainConfig):
    graphdef, _ = _abstract_model(mc, tc)

    @jax.jit
    def eval_step(params, tokens):
        logits = nnx.merge(graphdef, params)(tokens[:, :-1])
        return cross_entropy_sum(logits, tokens[:, 1:], jnp.ones(tokens[:, 1:].shape))

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

    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train), label="train", linewidth=1)
    if val:
        ax.plot(*zip(*val), "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
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


def _initialize_hosts() -> None:
    """Multi-host runs: join the other processes when JAX_COORDINATOR_ADDRESS (host:port),
    JAX_NUM_PROCESSES and JAX_PROCESS_ID are set; each process then reads only its own rows."""
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if not address:
        return
    try:
        count, index = int(os.environ["JAX_NUM_PROCESSES"]), int(os.environ["JAX_PROCESS_ID"])
    except (KeyError, ValueError):
        raise ConfigError("JAX_COORDINATOR_ADDRESS is set: JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers too") from None
    jax.distributed.initialize(address, num_processes=count, process_id=index)


def train(config_path: Path, data: Path, run_dir: Path, overrides: list[str], progress: bool = True) -> list[dict]:
    """Trains (or resumes) a run; returns the metrics of every step."""
    from tqdm import tqdm

    from jaxmodel.shards import TokenShards

    mc, tc = load_train_config(config_path, overrides)
    _initialize_hosts()
    shards = TokenShards.open(data, vocab_size=mc.vocab_size)
    n_devices = jax.device_count()
    if n_devices % tc.fsdp:
        raise ConfigError(f"{config_path}: train.fsdp ({tc.fsdp}) must divide the number of devices ({n_devices})")
    if (tc.batch_size // tc.grad_accum) % n_devices:
        raise ConfigError(
            f"{config_path}: a micro-batch (train.batch_size / train.grad_accum = {tc.batch_size // tc.grad_accum}) "
            f"must split evenly over the {n_devices} devices"
        )
    mesh = make_mesh(n_devices // tc.fsdp, tc.fsdp)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = {"model": dataclasses.asdict(mc), "train": dataclasses.asdict(tc), "data": str(data.absolute()),
             "tokenizer_sha256": shards.tokenizer_sha256, "versions": _versions()}
    (run_dir / "config.json").write_text(json.dumps(saved, indent=2) + "\n")

    state = init_state(mc, tc, mesh)
    manager = checkpoint_manager(run_dir, tc)
    if manager.latest_step() is not None:
        state = restore_checkpoint(manager, state)
    start = int(state.step)
    metrics_path = run_dir / "metrics.jsonl"
    rows = _read_metrics(metrics_path, start)
    metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    step_fn, eval_step = make_train_step(mc, tc, mesh), make_eval_step(mc, tc)
    batch_sharding = NamedSharding(mesh, BATCH_SPEC)
    tokens_per_step = tc.batch_size * mc.context_length
    bar = tqdm(total=tc.steps, initial=start, disable=not progress, unit="step", dynamic_ncols=True, file=sys.stderr)
    with open(metrics_path, "a") as log:
        for step in range(start, tc.steps):
            began = time.perf_counter()
            local = shards.batch(step, tc.batch_size, mc.context_length, tc.seed,
                                 process_index=jax.process_index(), process_count=jax.process_count())
            tokens = jax.make_array_from_process_local_data(batch_sharding, local)
            mask = jax.make_array_from_process_local_data(batch_sharding, np.ones((local.shape[0], local.shape[1] - 1), np.int32))
            state, metrics = step_fn(state, {"tokens": tokens, "mask": mask})
            row = {"step": step + 1, **{k: float(v) for k, v in metrics.items()}}
            row["tokens_per_s"] = tokens_per_step / (time.perf_counter() - began)
            if (step + 1) % tc.eval_every == 0 or step + 1 == tc.steps:
                row["val_loss"] = evaluate(eval_step, state, shards, mc, tc)
            log.write(json.dumps(row) + "\n")
            log.flush()
            rows.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['learning_rate']:.2e}", tok_s=f"{row['tokens_per_s']:,.0f}", refresh=False)
            bar.update(1)
            if (step + 1) % tc.checkpoint_every == 0 or step + 1 == tc.steps:
                save_checkpoint(manager, state)
    bar.close()
    manager.close()
    plot_loss(rows, run_dir / "loss.png")
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.train", description="Train a gollm model.")
    parser.add_argument("--config", type=Path, required=True, help="model and training config (YAML)")
    parser.add_argument("--data", type=Path, required=True, help="directory of token shards (spec/data.md)")
    parser.add_argument("--run-dir", type=Path, help="checkpoints, metrics.jsonl, loss.png (default: runs/<config name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set train.steps=50 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    from jaxmodel.shards import ShardError

    run_dir = args.run_dir or Path("runs") / args.config.stem
    try:
        rows = train(args.config, args.data, run_dir, args.overrides, progress=not args.no_progress)
    except (ConfigError, ShardError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    last = rows[-1] if rows else {}
    print(f"{run_dir}: step {last.get('step', 0)}, loss {last.get('loss', float('nan')):.4f}, "
          f"{param_count(load_train_config(args.config, args.overrides)[0]):,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
