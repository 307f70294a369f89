"""Does llama.cpp run an exported file the way goengine does? An optional check, not in CI.

    pip install llama-cpp-python          # into any venv; builds llama.cpp from source (~10 min on 2 cores)
    python scripts/check_llama_cpp.py demo/model.gguf [--prompt "Once upon a time"]

Prints both engines' token ids for the prompt, the largest logit difference at every
position (llama.cpp with a float32 KV cache: its default float16 cache alone moves
logits by ~1e-2 relative), and both greedy continuations.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def goengine(*args: str) -> str:
    return subprocess.run([str(ROOT / "bin" / "goengine"), *args], capture_output=True, text=True, check=True).stdout


def have_llama_cpp() -> bool:
    """Whether the optional llama-cpp-python is installed; if not, says how to get it (one line)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("error: this script needs llama-cpp-python: pip install llama-cpp-python (builds llama.cpp from source, ~10 min)", file=sys.stderr)
        return False
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--prompt", default="Once upon a time")
    parser.add_argument("--max-tokens", type=int, default=60)
    args = parser.parse_args(argv)
    if not have_llama_cpp():
        return 1
    from llama_cpp import Llama  # optional: not a project dependency

    subprocess.run(["make", "--no-print-directory", "build"], cwd=ROOT, check=True, capture_output=True)
    llm = Llama(model_path=str(args.model), n_ctx=512, logits_all=True, verbose=False, type_k=0, type_v=0, flash_attn=False)
    ids = llm.tokenize(args.prompt.encode(), add_bos=True, special=False)
    go_ids = [int(t) for t in goengine("tokenize", "--model", str(args.model), "--bos", args.prompt).split()]
    print(f"token ids  llama.cpp {ids}\n           goengine  {go_ids}")
    llm.eval(ids)
    theirs = np.array(llm.scores[: len(ids)])
    ours = np.array(json.loads(goengine("logits", "--model", str(args.model), "--tokens", " ".join(map(str, ids)))))
    print(f"max |logit difference| per position: {np.abs(theirs - ours).max(axis=1)}  (logits span {ours.min():.2f} .. {ours.max():.2f})")
    llm.reset()
    text = llm(args.prompt, max_tokens=args.max_tokens, temperature=0.0)["choices"][0]["text"]
    go_text = goengine("generate", "--model", str(args.model), "--prompt", args.prompt, "--max-tokens", str(args.max_tokens), "--temperature", "0")
    print(f"greedy     llama.cpp {args.prompt + text!r}\n           goengine  {go_text.rstrip(chr(10))!r}")
    return 0 if ids == go_ids else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
