"""Model configuration: the fields of spec/model.md, loaded from YAML and checked.

A config file is a mapping with one section, `model:`, whose keys are exactly the
fields of `ModelConfig`. Every mistake — an unknown key, a missing key, a wrong
type, an impossible combination — is one `ConfigError` naming the file and key.

    python -m jaxmodel.config configs/gollm-85m.yaml   # prints the config and its parameter count
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
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
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: model: expected a mapping of fields, found {_kind(values)}")
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ConfigError(
                f"{source}: unknown key model.{unknown[0]} (known keys: {', '.join(fields)})"
            )
        missing = [name for name in fields if name not in values]
        if missing:
            raise ConfigError(f"{source}: missing key model.{missing[0]}")
        checked = {name: _check_type(source, name, kind, values[name]) for name, kind in fields.items()}
        config = cls(**checked)
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


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _check_type(source: str, name: str, kind: str, value: Any) -> Any:
    """Returns `value` as the field's type, or raises naming the key and what was found."""
    where = f"{source}: model.{name}"
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, found {_kind(value)}")
        return value
    if kind == "int":
        # bool is a subclass of int in Python; `n_layers: true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, found {_kind(value)}")
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


def load_config(path: str | Path) -> ModelConfig:
    """Loads `path` (YAML with a `model:` section) into a checked ModelConfig."""
    path = Path(path)
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
    unknown = sorted(set(document) - {"model"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r} (expected: model)")
    if "model" not in document:
        raise ConfigError(f"{path}: missing the 'model:' section")
    return ModelConfig.from_dict(document["model"], source=str(path))


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
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m jaxmodel.config CONFIG.yaml", file=sys.stderr)
        return 2
    try:
        config = load_config(argv[0])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for field in dataclasses.fields(config):
        print(f"{field.name:15} {getattr(config, field.name)}")
    print(f"{'head_dim':15} {config.head_dim}")
    print(f"{'parameters':15} {param_count(config):,}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
