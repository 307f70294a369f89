"""Data preparation: text files -> token shards (spec/data.md §7).

    python -m jaxmodel.data prepare --input a.txt b.jsonl c.parquet more/ --tokenizer tok/ --out shards/
        [--val-fraction F] [--val-max-tokens N] | [--val-tokens N] | [--no-val]
        [--shard-tokens N] [--workers N] [--overwrite]

Inputs are files or directories, read a document at a time by `jaxmodel.documents`
(.txt with `<|endoftext|>` between documents, .jsonl and .parquet with a text field):
the same reader `tokenizer train` uses. Documents are encoded by tiktoken in batches
on `--workers` threads (order kept), each followed by the end-of-text id, and written
by `jaxmodel.shards.write_shards`. By default 1 % of the documents (0, 100, 200, ...,
spread through the corpus), at most 2,000,000 tokens, are held out as the validation
split; `--val-tokens N` holds out the first documents instead, and `--no-val` none.
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
from jaxmodel.shards import ShardError, TokenShards, describe, shard_files, write_shards

BATCH_DOCUMENTS = 256  # documents handed to tiktoken at once: enough to keep every thread busy
VAL_FRACTION = 0.01  # the default validation split: 1 % of the documents ...
VAL_MAX_TOKENS = 2_000_000  # ... but no more tokens than this: enough for a steady val loss


def _batched(items: Iterable, n: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def check_out(out: Path, overwrite: bool = False) -> None:
    """Refuses an `out` that is a file, or a directory that already holds shards
    (unless `overwrite`): an earlier prepare's work is not replaced by accident."""
    if out.exists() and not out.is_dir():
        raise ShardError(f"{out}: a file, not a directory: --out names the shard directory to write")
    if not overwrite and (found := shard_files(out)):
        raise ShardError(f"{out}: already holds shards ({found[0].name}, ...); pass --overwrite to replace them")


def prepare(inputs: list[Path], tokenizer_dir: Path, out: Path, val_tokens: int | None = None, shard_tokens: int = 2**24,
            workers: int | None = None, progress: bool = True, val_fraction: float = VAL_FRACTION,
            val_max_tokens: int = VAL_MAX_TOKENS, overwrite: bool = False) -> TokenShards:
    """Encodes `inputs` (files or directories) with a saved tokenizer and writes them as a shard directory.

    The val split: `val_tokens=None` holds out `val_fraction` of the documents (spread
    through the corpus, at most `val_max_tokens` tokens, at least one document when
    there are two or more); `val_fraction=0` holds out none; `val_tokens=N` holds out
    the first documents until N tokens instead. An `out` that already holds shards is
    refused unless `overwrite`, and then the old files are removed. Everything is
    checked before the first document is read.
    """
    from tqdm import tqdm

    paths = expand_inputs(inputs)
    vocab = tk.load(tokenizer_dir)
    check_out(out, overwrite)
    encoding = tk.encoding(vocab)
    workers = workers or os.cpu_count() or 1
    if val_tokens is not None:
        val_fraction = 0.0
    bar = tqdm(total=sum(p.stat().st_size for p in paths), unit="B", unit_scale=True, desc="tokenizing",
               disable=not progress, file=sys.stderr)

    def documents() -> Iterator[np.ndarray]:
        for texts in _batched(iter_documents(paths, bar.update), BATCH_DOCUMENTS):
            yield from (np.asarray(ids, np.int64) for ids in encoding.encode_ordinary_batch(texts, num_threads=workers))

    with bar:
        write_shards(out, documents(), vocab.size, vocab.eos_id, shard_tokens=shard_tokens, val_tokens=val_tokens or 0,
                     tokenizer_sha256=tk.fingerprint(tokenizer_dir), val_fraction=val_fraction, val_max_tokens=val_max_tokens)
    return TokenShards.open(out)


def held_out(shards: TokenShards) -> str:
    """One line on the val split: how many documents and tokens were held out."""
    val, total = shards.documents["val"], sum(shards.documents.values())
    if not val:
        return "held out nothing for validation (no val split)"
    return f"held out {val:,} of {total:,} documents ({shards.n_tokens('val'):,} tokens) for validation"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.data", description="Prepare training data for gollm.")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser(
        "prepare", help="encode text files into a shard directory",
        description="Encode documents into a shard directory (spec/data.md). By default 1 % of the documents "
                    f"(0, 100, 200, ...), at most {VAL_MAX_TOKENS:,} tokens, are held out as the val split.",
    )
    cmd.add_argument("--input", type=Path, nargs="+", required=True,
                     help="files or directories: .txt (<|endoftext|> between documents), .jsonl (a text field), .parquet (a text column)")
    cmd.add_argument("--tokenizer", type=Path, required=True, help="tokenizer directory (python -m jaxmodel.tokenizer train)")
    cmd.add_argument("--out", type=Path, required=True, help="shard directory to write")
    val = cmd.add_mutually_exclusive_group()
    val.add_argument("--val-fraction", type=float, default=VAL_FRACTION,
                     help="hold out this fraction of the documents, spread through the corpus (default: %(default)s)")
    val.add_argument("--val-tokens", type=int, help="hold out the first documents until this many tokens instead")
    val.add_argument("--no-val", action="store_true", help="hold out nothing (the trainer then cannot evaluate)")
    cmd.add_argument("--val-max-tokens", type=int, default=VAL_MAX_TOKENS,
                     help="at most this many tokens for --val-fraction (default: %(default)s)")
    cmd.add_argument("--shard-tokens", type=int, default=2**24, help="tokens per shard file")
    cmd.add_argument("--workers", type=int, help="tokenizer threads (default: every core)")
    cmd.add_argument("--overwrite", action="store_true", help="replace the shards already in --out")
    cmd.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        shards = prepare(args.input, args.tokenizer, args.out, args.val_tokens, args.shard_tokens, args.workers,
                         not args.no_progress, 0.0 if args.no_val else args.val_fraction, args.val_max_tokens, args.overwrite)
    except (ShardError, DocumentError, tk.TokenizerError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {describe(shards)}")
    print(held_out(shards))
    return 0


if __name__ == "__main__":
    from jaxmodel import cli

    sys.exit(cli.run(main))
