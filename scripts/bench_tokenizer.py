"""Encoding speed of the Go tokenizer against tiktoken, on the same text and vocabulary.

    .venv/bin/python scripts/bench_tokenizer.py [--megabytes 4] [--vocab-size 8192]

Generates a text (invented words in sentences, numbers, code-like lines, accented and
CJK words — no third-party prose), trains a vocabulary on it with rustbpe, writes it
as a vocabulary-only GGUF file, then times tiktoken's single-threaded encode_ordinary
and the Go encoder (`go test -bench BenchmarkEncodeFile`) and prints one table.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jaxmodel import tokenizer as tk
from jaxmodel.gguf_io import tokenizer_metadata, write_arrays

ROOT = Path(__file__).resolve().parent.parent


def generated_text(megabytes: float, seed: int = 0) -> str:
    rng = random.Random(seed)
    syllables = "ka lo mi ne ru sa to vi ze ba do fu gi ha je ko lu ma no pi qu re si tu wa yo".split()
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(5000)]
    words += ["café", "naïve", "über", "日本", "語", "привет", "😀", "don't", "it's"]
    lines, size = [], 0
    while size < megabytes * 2**20:
        kind = rng.random()
        if kind < 0.8:
            line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 20))).capitalize() + rng.choice([".", "!", "?", ","])
        elif kind < 0.9:
            line = f"    {rng.choice(words)}({rng.choice(words)}, {rng.randint(0, 99999)}) + {rng.random():.4f}"
        else:
            line = "\n"
        lines.append(line)
        size += len(line.encode()) + 1
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=4.0)
    parser.add_argument("--vocab-size", type=int, default=8192)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        text_path, vocab_path = Path(tmp) / "text.txt", Path(tmp) / "vocab.gguf"
        text = generated_text(args.megabytes)
        text_path.write_text(text, encoding="utf-8", newline="")
        vocab = tk.train([text_path], args.vocab_size, progress=False)
        write_arrays(vocab_path, {}, tokenizer_metadata(vocab))
        encoding = tk.encoding(vocab)
        n_bytes = len(text.encode())

        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            ids = encoding.encode_ordinary(text)
            best = min(best, time.perf_counter() - start)
        tiktoken_mbs = n_bytes / best / 1e6

        env = os.environ | {"GOLLM_BENCH_TEXT": str(text_path), "GOLLM_BENCH_VOCAB": str(vocab_path), "GOMAXPROCS": "1"}
        run = subprocess.run(
            ["go", "test", "-run", "XXX", "-bench", "BenchmarkEncodeFile", "-benchtime", "5x", "./tokenizer/"],
            cwd=ROOT / "goengine", env=env, capture_output=True, text=True,
        )
        match = re.search(r"BenchmarkEncodeFile\S*\s+\d+\s+\d+ ns/op\s+([\d.]+) MB/s", run.stdout)
        if run.returncode or not match:
            print(run.stdout + run.stderr, file=sys.stderr)
            return 1
        go_mbs = float(match.group(1))

    print(f"text: {n_bytes / 2**20:.1f} MiB generated, {len(ids):,} tokens; vocabulary: {args.vocab_size:,} (rustbpe)")
    print(f"{'encoder':<28}{'MB/s':>8}")
    print(f"{'tiktoken (1 thread)':<28}{tiktoken_mbs:>8.1f}")
    print(f"{'goengine/tokenizer (1 core)':<28}{go_mbs:>8.1f}")
    print(f"{'Go / tiktoken':<28}{go_mbs / tiktoken_mbs:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
