"""goengine and llama.cpp side by side on the same GGUF file. An optional check, not in CI.

    pip install llama-cpp-python          # into the venv; builds llama.cpp from source (~10 min on 2 cores)
    python scripts/compare_engines.py [--config configs/gollm-85m.yaml] [--dtype f32 q8_0]

Writes a random-weight model of the config (with a synthetic 2-byte-merge vocabulary, so
llama.cpp will load it) once per weight type, then times both engines on it with the same
thread count: a prompt of --prompt-tokens tokens in one batch, then --gen-tokens decode
steps one token at a time. Prints one table.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from check_llama_cpp import have_llama_cpp  # the script beside this one (its directory is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaxmodel.config import load_config  # noqa: E402
from jaxmodel.gguf_io import tensor_shapes, write_model  # noqa: E402
from jaxmodel.tokenizer import Vocabulary, n_special_for, special_token_names  # noqa: E402


def synthetic_vocabulary(size: int) -> Vocabulary:
    """256 bytes, then 2-byte merges in byte order, then the specials."""
    n_special = n_special_for(size)
    ranks = {bytes([b]): b for b in range(256)}
    for a, b in itertools.product(range(256), repeat=2):
        if len(ranks) == size - n_special:
            break
        ranks[bytes([a, b])] = len(ranks)
    specials = {name: len(ranks) + i for i, name in enumerate(special_token_names(n_special))}
    return Vocabulary(ranks, specials)


def random_model(config_path: Path, dtype: str, out: Path) -> Path:
    config = load_config(config_path)
    rng = np.random.default_rng(0)
    tensors = {name: (np.ones(shape) if len(shape) == 1 else rng.normal(0, shape[1] ** -0.5, shape)).astype(np.float32)
               for name, shape in tensor_shapes(config).items()}
    write_model(out, config, tensors, synthetic_vocabulary(config.vocab_size), dtype=dtype)
    return out


def goengine_bench(path: Path, prompt: int, gen: int, threads: int) -> dict[str, float]:
    out = subprocess.run([str(ROOT / "bin" / "goengine"), "bench", "--model", str(path), "--prompt-tokens", str(prompt),
                          "--gen-tokens", str(gen), "--threads", str(threads)], capture_output=True, text=True, check=True).stdout
    rate = lambda row: float(re.search(rf"^{row}\s+([\d.]+) tokens/s", out, re.M).group(1))  # noqa: E731
    return {"prefill": rate("prefill"), "decode": rate("decode")}


def llama_cpp_bench(path: Path, prompt: int, gen: int, threads: int) -> dict[str, float]:
    from llama_cpp import Llama  # optional: not a project dependency

    llm = Llama(model_path=str(path), n_ctx=prompt + gen + 8, n_batch=prompt, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    vocab = llm.n_vocab()
    tokens = [(i * 7919) % vocab for i in range(prompt)]
    start = time.perf_counter()
    llm.eval(tokens)
    prefill = prompt / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(gen):
        llm.eval([(i * 104729) % vocab])
    decode = gen / (time.perf_counter() - start)
    return {"prefill": prefill, "decode": decode}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "gollm-85m.yaml")
    parser.add_argument("--dtype", nargs="+", default=["f32", "q8_0"])
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=Path("/tmp"))
    args = parser.parse_args(argv)
    if not have_llama_cpp():
        return 1
    subprocess.run(["make", "--no-print-directory", "build"], cwd=ROOT, check=True, capture_output=True)
    rows = []
    for dtype in args.dtype:
        path = random_model(args.config, dtype, args.out / f"compare-{args.config.stem}-{dtype}.gguf")
        for engine, bench in [("goengine", goengine_bench), ("llama.cpp", llama_cpp_bench)]:
            r = bench(path, args.prompt_tokens, args.gen_tokens, args.threads)
            rows.append((dtype, engine, r["prefill"], r["decode"]))
    print(f"{args.config.name}, {args.threads} threads, prompt {args.prompt_tokens}, {args.gen_tokens} decode steps")
    print(f"{'weights':<8} {'engine':<10} {'prefill tok/s':>14} {'decode tok/s':>13}")
    for dtype, engine, prefill, decode in rows:
        print(f"{dtype:<8} {engine:<10} {prefill:>14.1f} {decode:>13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
