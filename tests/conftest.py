"""Shared paths for the test suite."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
GOLDENS = ROOT / "goldens"
SPEC = ROOT / "spec"


def write_counting_shards(directory: Path) -> None:
    """Token shards with structure to learn: 400 documents that count upwards from a
    random start (vocab 320, EOS 313), with a validation split of 2,000 tokens."""
    import numpy as np

    from jaxmodel.shards import write_shards

    rng = np.random.default_rng(0)
    documents = [(np.arange(n) + rng.integers(0, 200)) % 300 for n in rng.integers(20, 120, 400)]
    write_shards(directory, documents, vocab_size=320, eos_id=313, shard_tokens=8192, val_tokens=2000)
