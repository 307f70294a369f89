"""Data preparation: text files -> token shards (spec/data.md).

    python -m jaxmodel.data prepare --input a.txt b.jsonl c.parquet more/ --tokenizer tok/ --out shards/
                                    [--val-tokens N] [--shard-tokens N] [--workers N]

Inputs are files or directories, read a document at a time by `jaxmodel.documents`
(.txt with `<|endoftext|>` between documents, .jsonl and .parquet with a text field):
the same reader `tokenizer train` uses. Documents are encoded by tiktoken in batches
on `--workers` threads (order kept), each followed by the end-of-text id, and written
by `jaxmodel.shards.write_shards`: the first `--val-tokens` tokens (whole documents)
become the validation split.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from jaxmodel import tokenizer as tk
from jaxmodel.documents import DocumentError, expand_inputs, iter_documents
from jaxmodel.shards import ShardError, TokenShards, describe, write_shards

BATCH_DOCUMENTS = 256  # documents handed to tiktoken at once: enough to keep every thread busy


def _batched(items: Iterable, n: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def prepare(inputs: list[Path], tokenizer_dir: Path, out: Path, val_tokens: int = 0, shard_tokens: int = 2**24,
            workers: int | None = None, progress: bool = True) -> TokenShards:
    """Encodes `inputs` (files or directories) with a saved tokenizer and writes them as a shard directory."""
    from tqdm import tqdm

    paths = expand_inputs(inputs)
    vocab = tk.load(tokenizer_dir)
    encoding = tk.encoding(vocab)
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=sum(p.stat().st_size for p in paths), unit="B", unit_scale=True, desc="tokenizing",
               disable=not progress, file=sys.stderr)

    def documents() -> Iterator[np.ndarray]:
        for texts in _batched(iter_documents(paths, bar.update), BATCH_DOCUMENTS):
            yield from (np.asarray(ids, np.int64) for ids in encoding.encode_ordinary_batch(texts, num_threads=workers))

    with bar:
        write_shards(out, documents(), vocab.size, vocab.eos_id, shard_tokens=shard_tokens, val_tokens=val_tokens,
                     tokenizer_sha256=tk.fingerprint(tokenizer_dir))
    return TokenShards.open(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.data", description="Prepare training data for gollm.")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("prepare", help="encode text files into a shard directory")
    cmd.add_argument("--input", type=Path, nargs="+", required=True, help="files or directories: .txt (<|endoftext|> between documents), .jsonl (a text field), .parquet (a text column)")
    cmd.add_argument("--tokenizer", type=Path, required=True, help="tokenizer directory (python -m jaxmodel.tokenizer train)")
    cmd.add_argument("--out", type=Path, required=True, help="shard directory to write")
    cmd.add_argument("--val-tokens", type=int, default=0, help="tokens (whole documents, taken first) for the validation split")
    cmd.add_argument("--shard-tokens", type=int, default=2**24, help="tokens per shard file")
    cmd.add_argument("--workers", type=int, help="tokenizer threads (default: every core)")
    cmd.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        shards = prepare(args.input, args.tokenizer, args.out, args.val_tokens, args.shard_tokens, args.workers, not args.no_progress)
    except (ShardError, DocumentError, tk.TokenizerError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {describe(shards)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
