"""Model configuration: the fields of spec/model.md, loaded from YAML and checked.

A config file is a mapping with one section, `model:`, whose keys are exactly the
fields of `ModelConfig`. Every mistake — an unknown key, a missing key, a wrong
type, an impossible combination — is one `ConfigError` naming the file and key.

    python -m jaxmodel.config configs/gollm-85m.yaml          # prints the config and its parameter count
    python -m jaxmodel.config --json configs/gollm-85m.yaml   # the model: section as checked, as JSON (goengine bench --config)
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or mapping that does not describe a valid model."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The shape of a LLaMA-style model (spec/model.md, "Config")."""

    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    context_length: int
    rope_theta: float
    norm_eps: float
    tie_embeddings: bool

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def n_rep(self) -> int:
        """Query heads that share one KV head."""
        return self.n_heads // self.n_kv_heads

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "<config>") -> ModelConfig:
        """Builds a config from a plain mapping, checking every key and constraint."""
        config = cls(**_checked_fields(cls, values, source, "model", required=True))
        config.validate(source)
        return config

    def validate(self, source: str = "<config>") -> None:
        """Raises ConfigError for values no model can have (spec/model.md, "Constraints")."""
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "ffn_dim", "context_length"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{source}: model.{name} must be positive, found {getattr(self, name)}")
        for name in ("rope_theta", "norm_eps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{source}: model.{name} must be a positive finite number, found {value}")
        if self.dim % self.n_heads:
            raise ConfigError(
                f"{source}: model.dim ({self.dim}) must be divisible by model.n_heads ({self.n_heads})"
            )
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(
                f"{source}: model.n_heads ({self.n_heads}) must be divisible by "
                f"model.n_kv_heads ({self.n_kv_heads})"
            )
        if self.head_dim % 2:
            raise ConfigError(
                f"{source}: head_dim = model.dim / model.n_heads = {self.head_dim} must be even "
                "(RoPE rotates pairs of values)"
            )


def _checked_fields(cls, values: Any, source: str, section: str, required: bool) -> dict[str, Any]:
    """The fields of dataclass `cls` from a config section, each checked against its type:
    no unknown keys, and (if `required`) no missing ones."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: {section}: expected a mapping of fields, found {_kind(values)}")
    fields = {f.name: f.type for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key {section}.{unknown[0]} (known keys: {', '.join(fields)})")
    missing = [name for name in fields if name not in values]
    if required and missing:
        raise ConfigError(f"{source}: missing key {section}.{missing[0]}")
    return {name: _check_type(source, name, fields[name], value, section) for name, value in values.items()}


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _check_type(source: str, name: str, kind: str, value: Any, section: str = "model") -> Any:
    """Returns `value` as the field's type, or raises naming the key and what was found."""
    where = f"{source}: {section}.{name}"
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, found {_kind(value)}")
        return value
    if kind == "int":
        # bool is a subclass of int in Python; `n_layers: true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, found {_kind(value)}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, found {_kind(value)}")
        return value
    if kind == "float":
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, found {_kind(value)}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads `1e-5` (no dot) as a string; accept it as the number it clearly is.
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, found {_kind(value)}")
    raise AssertionError(f"unhandled field type {kind} for {name}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train (the optional `train:` section of a config file); every field has a default."""

    steps: int = 1000  # optimizer steps
    batch_size: int = 16  # sequences per optimizer step, across all devices
    grad_accum: int = 1  # micro-batches per step (batch_size must divide evenly)
    learning_rate: float = 3e-4  # peak, reached after warmup
    warmup_steps: int = 100  # linear warmup from 0
    min_lr_ratio: float = 0.1  # cosine decay ends at learning_rate * min_lr_ratio
    weight_decay: float = 0.1  # AdamW, on matrices only (not norms, not embeddings)
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # global gradient norm
    compute_dtype: str = "auto"  # matmuls: float32, bfloat16, or auto (float32 on CPU, bfloat16 on accelerators)
    seed: int = 0  # initial weights and the order of the data
    fsdp: int = 1  # devices that split the parameters; the rest of the mesh is data-parallel
    checkpoint_every: int = 100  # steps between checkpoints (and one at the end)
    keep_checkpoints: int = 3  # the newest K are kept
    eval_every: int = 100  # steps between validation losses; 0 trains without validation
    eval_batches: int = 4  # batches of the validation split per evaluation
    trainable_blocks: int = -1  # -1 trains every parameter; N only the last N blocks and the final norm

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "<config>") -> TrainConfig:
        """Builds a config from a plain mapping; absent keys keep their defaults."""
        config = cls(**_checked_fields(cls, values, source, "train", required=False))
        config.validate(source)
        return config

    def validate(self, source: str = "<config>") -> None:
        for name in ("steps", "batch_size", "grad_accum", "fsdp", "checkpoint_every", "keep_checkpoints", "eval_batches"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{source}: train.{name} must be positive, found {getattr(self, name)}")
        if self.trainable_blocks < -1:
            raise ConfigError(f"{source}: train.trainable_blocks must be -1 (all) or a number of blocks >= 0, found {self.trainable_blocks}")
        if self.eval_every < 0:
            raise ConfigError(f"{source}: train.eval_every must be >= 0 (0: no validation), found {self.eval_every}")
        if self.warmup_steps < 0:
            raise ConfigError(f"{source}: train.warmup_steps must be >= 0, found {self.warmup_steps}")
        if self.batch_size % self.grad_accum:
            raise ConfigError(
                f"{source}: train.batch_size ({self.batch_size}) must be divisible by train.grad_accum ({self.grad_accum})"
            )
        for name in ("learning_rate", "grad_clip"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"{source}: train.{name} must be a positive finite number, found {getattr(self, name)}")
        for name in ("min_lr_ratio", "beta1", "beta2"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{source}: train.{name} must be in [0, 1], found {getattr(self, name)}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"{source}: train.weight_decay must be a finite number >= 0, found {self.weight_decay}")
        if self.compute_dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError(f"{source}: train.compute_dtype must be auto, float32 or bfloat16, found {self.compute_dtype!r}")


def _read_document(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror or err}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'model:' section, found {_kind(document)}")
    unknown = sorted(set(document) - {"model", "train"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r} (expected: model, train)")
    return document


def apply_override(document: dict, override: str) -> dict:
    """A copy of a config document with one `section.key=value` override (value in YAML
    syntax) applied. Errors name the override, not the file: it is what the user typed."""
    document = {section: dict(values) if isinstance(values, dict) else values for section, values in document.items()}
    source = f"--set {override}"
    key, sep, text = override.partition("=")
    section, dot, name = key.partition(".")
    if not sep or not dot or section not in ("model", "train") or not name:
        raise ConfigError(f"{source}: expected model.KEY=VALUE or train.KEY=VALUE")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: the value is not valid YAML: {' '.join(str(err).split())}") from None
    if document.get(section) is None:
        document[section] = {}
    if isinstance(document[section], dict):  # otherwise from_dict reports the section
        document[section][name] = value
    return document


def _build(document: dict, source: str) -> tuple[ModelConfig, TrainConfig]:
    if "model" not in document:
        raise ConfigError(f"{source}: missing the 'model:' section")
    model = ModelConfig.from_dict(document["model"], source=source)
    return model, TrainConfig.from_dict(document.get("train") or {}, source=source)


def _first_error(stages: list[tuple[dict, str]], build):
    """build(document, source) of the last stage; if that fails, the error of the first
    stage that fails, so that it names what caused it: the file, or a `--set`. (An
    override may also repair the file, so the whole is checked first.)"""
    try:
        return build(*stages[-1])
    except ConfigError:
        if len(stages) == 1:
            raise
    for document, source in stages:
        build(document, source)  # raises at the first stage that is wrong
    raise AssertionError("unreachable: the last stage failed above")


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> tuple[ModelConfig, TrainConfig]:
    """Loads both sections of a config file, then `overrides` ("train.steps=50"), all
    checked alike; `train:` may be absent (all defaults). An error names the file, or
    the first `--set` after which the config no longer holds."""
    path = Path(path)
    stages = [(_read_document(path), str(path))]
    for override in overrides:
        stages.append((apply_override(stages[-1][0], override), f"--set {override}"))
    return _first_error(stages, _build)


# What a fine-tuning config may change of the model it starts from: the context it is
# fine-tuned, and then run, at. The weights fix every other key (dim, heads, vocabulary, ...).
FINETUNE_MODEL_KEYS = ("context_length",)


def load_finetune_config(path: str | Path | None, overrides: Sequence[str] = (),
                         defaults: dict | None = None) -> tuple[TrainConfig, dict[str, Any]]:
    """A fine-tuning config: a `train:` section and, optionally, a `model:` section holding
    only FINETUNE_MODEL_KEYS (the rest of the model comes from --from), then `overrides` of
    either. No file: all defaults, with `defaults` (a kind of run's own, e.g. a classifier's
    trainable_blocks) over TrainConfig's. Returns the TrainConfig and the model keys to change."""
    document = {} if path is None else _read_document(Path(path))
    if defaults and isinstance(document.get("train") or {}, dict):  # anything else is TrainConfig's error to name
        document = {**document, "train": {**defaults, **(document.get("train") or {})}}
    stages = [(document, str(path) if path is not None else "<defaults>")]
    for override in overrides:
        stages.append((apply_override(stages[-1][0], override), f"--set {override}"))
    return _first_error(stages, _build_finetune)


def _build_finetune(document: dict, source: str) -> tuple[TrainConfig, dict[str, Any]]:
    changes = document.get("model") or {}
    if isinstance(changes, dict):
        fixed = sorted(set(changes) - set(FINETUNE_MODEL_KEYS))
        if fixed:
            raise ConfigError(f"{source}: the model comes from --from, and model.{fixed[0]} cannot be changed "
                              f"(a fine-tuning config may set only {', '.join('model.' + k for k in FINETUNE_MODEL_KEYS)})")
    changes = _checked_fields(ModelConfig, changes, source, "model", required=False)
    for name, value in changes.items():
        if value <= 0:
            raise ConfigError(f"{source}: model.{name} must be positive, found {value}")
    return TrainConfig.from_dict(document.get("train") or {}, source=source), changes


def load_config(path: str | Path) -> ModelConfig:
    """Loads `path` (YAML with a `model:` section) into a checked ModelConfig.

    A `train:` section, if present, is checked too (load_train_config returns it).
    """
    return load_train_config(path)[0]


def param_count(config: ModelConfig) -> int:
    """Number of parameters, by the formula of spec/model.md ("Parameter count")."""
    d, hd = config.dim, config.head_dim
    per_layer = (
        2 * d  # attn_norm, ffn_norm
        + d * config.n_heads * hd  # attn_q
        + 2 * d * config.n_kv_heads * hd  # attn_k, attn_v
        + config.n_heads * hd * d  # attn_output
        + 3 * d * config.ffn_dim  # ffn_gate, ffn_up, ffn_down
    )
    embeddings = config.vocab_size * d
    head = 0 if config.tie_embeddings else config.vocab_size * d
    return embeddings + config.n_layers * per_layer + d + head


def main(argv: list[str]) -> int:
    as_json = argv[:1] == ["--json"]
    paths = argv[1:] if as_json else argv
    if len(paths) != 1 or paths[0].startswith("-"):
        print("usage: python -m jaxmodel.config [--json] CONFIG.yaml", file=sys.stderr)
        return 2
    try:
        config = load_config(paths[0])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if as_json:  # for goengine, which reads no YAML: this loader is the only one
        print(json.dumps(dataclasses.asdict(config)))
        return 0
    for field in dataclasses.fields(config):
        print(f"{field.name:15} {getattr(config, field.name)}")
    print(f"{'head_dim':15} {config.head_dim}")
    print(f"{'parameters':15} {param_count(config):,}")
    return 0


if __name__ == "__main__":
    from jaxmodel import cli

    sys.exit(cli.run(main))
