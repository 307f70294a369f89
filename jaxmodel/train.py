"""Training: the loss, the optimizer, one pure jitted step, and sharding over a mesh.

    state = init_state(model_config, train_config, mesh)
    step = make_train_step(model_config, train_config, mesh)
    state, metrics = step(state, batch)     # batch: {"tokens": (B, T+1) int32, "mask": (B, T)}

`train_step(state, batch) -> (state, metrics)` is one pure function, compiled once
with explicit shardings: parameters and optimizer state are sharded by the rules
in `PARAM_RULES` (the one place sharding is declared) over the "fsdp" mesh axis,
the batch over both "data" and "fsdp". The checkpoints and the command line come
in the next part of this module's issue.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxmodel.config import ModelConfig, TrainConfig
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
