"""Data preparation: text files -> token shards (spec/data.md).

    python -m jaxmodel.data prepare --input a.txt b.jsonl c.parquet --tokenizer tok/ --out shards/
                                    [--val-tokens N] [--shard-tokens N] [--workers N]

Inputs are streamed a document at a time, never loaded whole:
- plain text, where TinyStories' `<|endoftext|>` separates documents (line endings kept);
- `.jsonl`, one JSON object per line with a "text" string;
- `.parquet`, a "text" column, read a row group at a time.
Documents are encoded by tiktoken in batches on `--workers` threads (order kept),
each followed by the end-of-text id, and written by `jaxmodel.shards.write_shards`:
the first `--val-tokens` tokens (whole documents) become the validation split.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from jaxmodel import tokenizer as tk
from jaxmodel.shards import ShardError, TokenShards, describe, write_shards

BATCH_DOCUMENTS = 256  # documents handed to tiktoken at once: enough to keep every thread busy


def iter_documents(paths: list[Path]) -> Iterator[str]:
    """Streams the documents of each input (see the module docstring for the formats)."""
    for path in paths:
        if path.suffix == ".jsonl":
            yield from tk.iter_texts([path])  # one line is one document
        elif path.suffix == ".parquet":
            yield from _parquet_documents(path)
        else:
            yield from _text_documents(path)


def _text_documents(path: Path) -> Iterator[str]:
    """Documents of a text file split on `<|endoftext|>`; empty ones are skipped, and
    the end of the file ends its last document."""
    parts: list[str] = []
    for line in tk.iter_lines(path):
        *finished, rest = line.split(tk.DOCUMENT_SEPARATOR)
        for piece in finished:
            parts.append(piece)
            if document := "".join(parts):
                yield document
            parts = []
        parts.append(rest)
    if document := "".join(parts):
        yield document


def _parquet_documents(path: Path) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises its own error types for bad files
        raise ShardError(f"{path}: not a readable parquet file ({err})") from None
    if "text" not in file.schema_arrow.names:
        raise ShardError(f"{path}: no 'text' column (columns: {', '.join(file.schema_arrow.names)})")
    for batch in file.iter_batches(columns=["text"]):
        for number, text in enumerate(batch.column(0).to_pylist()):
            if text is None:
                continue
            if not isinstance(text, str):
                raise ShardError(f"{path}: the 'text' column must hold strings, found {type(text).__name__}")
            if text:
                yield text


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
    """Encodes `inputs` with a saved tokenizer and writes them as a shard directory."""
    from tqdm import tqdm

    for path in inputs:
        if not path.is_file():
            raise ShardError(f"{path}: no such file")
    vocab = tk.load(tokenizer_dir)
    encoding = tk.encoding(vocab)
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=sum(p.stat().st_size for p in inputs), unit="B", unit_scale=True, desc="tokenizing",
               disable=not progress, file=sys.stderr)

    def documents() -> Iterator[np.ndarray]:
        for texts in _batched(iter_documents(inputs), BATCH_DOCUMENTS):
            bar.update(sum(len(t.encode("utf-8")) for t in texts))
            yield from (np.asarray(ids, np.int64) for ids in encoding.encode_ordinary_batch(texts, num_threads=workers))

    with bar:
        write_shards(out, documents(), vocab.size, vocab.eos_id, shard_tokens=shard_tokens, val_tokens=val_tokens,
                     tokenizer_sha256=tk.fingerprint(tokenizer_dir))
    return TokenShards.open(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.data", description="Prepare training data for gollm.")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("prepare", help="encode text files into a shard directory")
    cmd.add_argument("--input", type=Path, nargs="+", required=True, help=".txt (<|endoftext|> between documents), .jsonl or .parquet with a text field")
    cmd.add_argument("--tokenizer", type=Path, required=True, help="tokenizer directory (python -m jaxmodel.tokenizer train)")
    cmd.add_argument("--out", type=Path, required=True, help="shard directory to write")
    cmd.add_argument("--val-tokens", type=int, default=0, help="tokens (whole documents, taken first) for the validation split")
    cmd.add_argument("--shard-tokens", type=int, default=2**24, help="tokens per shard file")
    cmd.add_argument("--workers", type=int, help="tokenizer threads (default: every core)")
    cmd.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        shards = prepare(args.input, args.tokenizer, args.out, args.val_tokens, args.shard_tokens, args.workers, not args.no_progress)
    except (ShardError, tk.TokenizerError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {describe(shards)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
