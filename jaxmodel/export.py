"""Export a training run to one GGUF file in the profile of spec/format.md.

    python -m jaxmodel.export --run-dir runs/demo --out model.gguf [--tokenizer tok/] [--dtype f32|f16|q8_0] [--step N]

The newest checkpoint (or step N) plus the tokenizer become one self-contained
file: config, vocabulary and weights, written by jaxmodel.gguf_io — the module
that writes the goldens — so what llama.cpp, the NumPy reference and goengine
read is what the tests check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from jaxmodel import tokenizer as tk
from jaxmodel.config import ConfigError, ModelConfig, TrainConfig
from jaxmodel.gguf_io import DTYPES, LLAMA3_CHAT_TEMPLATE, GGUFError, write_model


class ExportError(ValueError):
    """A run directory or tokenizer that cannot be exported."""


def load_run(run_dir: Path, step: int | None = None) -> tuple[ModelConfig, dict[str, np.ndarray], dict]:
    """The run's model config, the weights of a checkpoint by spec tensor name, and its saved config."""
    from flax import nnx

    from jaxmodel.model import Transformer, named_tensors
    from jaxmodel.train import checkpoint_manager, init_state, make_mesh, restore_checkpoint

    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ExportError(f"{run_dir}: not a training run (no config.json)")
    saved = json.loads(config_path.read_text())
    mc = ModelConfig.from_dict(saved["model"], source=str(config_path))
    tc = TrainConfig.from_dict(saved["train"], source=str(config_path))
    manager = checkpoint_manager(run_dir, tc)
    steps = manager.all_steps()
    if not steps:
        raise ExportError(f"{run_dir}: no checkpoints yet")
    if step is not None and step not in steps:
        raise ExportError(f"{run_dir}: no checkpoint at step {step} (have {', '.join(map(str, sorted(steps)))})")
    n_classes = len(saved.get("labels") or [])  # a classifier run's head
    state = restore_checkpoint(manager, init_state(mc, tc, make_mesh(1, 1), n_classes=n_classes), step)
    model = nnx.merge(nnx.graphdef(Transformer(mc, nnx.Rngs(0), n_classes=n_classes)), state.params)
    return mc, named_tensors(model), saved


def check_out(out: Path) -> None:
    """`out` must name a file in an existing directory: checked before minutes of loading."""
    if out.is_dir():
        raise ExportError(f"{out}: a directory, not a file: --out names the .gguf file to write (e.g. {out / 'model.gguf'})")
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: no such directory (for --out {out})")


def export(run_dir: Path, tokenizer_dir: Path | None, out: Path, dtype: str = "f32", step: int | None = None) -> Path:
    """Writes the run's checkpoint (the newest, or `step`) with its tokenizer as one GGUF file.

    `tokenizer_dir` None: the one the run recorded (a run trained on raw text keeps its own)."""
    out = Path(out)
    check_out(out)
    mc, tensors, saved = load_run(run_dir, step)
    if tokenizer_dir is None:
        if not saved.get("tokenizer"):
            raise ExportError(f"{run_dir}: the run does not record its tokenizer (it was trained on a shard directory): "
                              "pass --tokenizer DIR, the tokenizer the shards were made with")
        tokenizer_dir = Path(saved["tokenizer"])
    vocab = tk.load(tokenizer_dir)
    recorded = saved.get("tokenizer_sha256")
    if recorded and recorded != tk.fingerprint(tokenizer_dir):
        raise ExportError(f"{tokenizer_dir}: not the tokenizer the run's data was made with (sha256 differs)")
    if vocab.size != mc.vocab_size:
        raise ExportError(f"{tokenizer_dir}: {vocab.size} tokens, but the model's vocab_size is {mc.vocab_size}")
    # A fine-tuned chat model says so: llama.cpp and chat front ends read the template.
    # A classifier carries its head and labels (spec/format.md §6.3).
    template = LLAMA3_CHAT_TEMPLATE if saved.get("kind") == "sft" else None
    write_model(out, mc, tensors, vocab, dtype=dtype, name=run_dir.name, chat_template=template, labels=saved.get("labels"))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.export", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, help="the tokenizer directory the data was made with "
                        "(default: the one the run recorded, as a run trained on raw text does)")
    parser.add_argument("--out", type=Path, required=True, help="the .gguf file to write")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="f32", help="matrices as f32, f16 or q8_0 (norms stay f32)")
    parser.add_argument("--step", type=int, help="a checkpoint step (default: the newest)")
    args = parser.parse_args(argv)
    try:
        path = export(args.run_dir, args.tokenizer, args.out, args.dtype, args.step)
    except (ExportError, ConfigError, GGUFError, tk.TokenizerError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size:,} bytes, {args.dtype})")
    return 0


if __name__ == "__main__":
    from jaxmodel import cli

    sys.exit(cli.run(main))
