"""Does llama.cpp run an exported file the way goengine does? An optional check, not in CI.

    pip install llama-cpp-python          # into any venv; builds llama.cpp from source (~10 min on 2 cores)
    python scripts/check_llama_cpp.py demo/model.gguf [--prompt "Once upon a time"]
    python scripts/check_llama_cpp.py demo/chat.gguf --chat [--chat-data heldout.jsonl --limit 20]

Prints both engines' token ids for the prompt, the largest logit difference at every
position (llama.cpp with a float32 KV cache: its default float16 cache alone moves
logits by ~1e-2 relative), and both greedy continuations.

With --chat (a fine-tuned chat model, whose file carries tokenizer.chat_template): the
prompt llama.cpp's own template code makes of a conversation (llama_chat_apply_template,
which recognises the LLaMA-3 template) must be, token for token, the one goengine chat
sends (jaxmodel.finetune.chat_prompt), and llama.cpp's greedy reply is compared with
goengine chat's for each conversation (the user turns of --chat-data, or one default).
Exit status 0 when every prompt matches and every reply is the same.
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
    parser.add_argument("--chat", action="store_true", help="compare chat prompts and greedy replies (a chat model)")
    parser.add_argument("--chat-data", type=Path, help="JSONL conversations (jaxmodel.corpus qa): their first user turns")
    parser.add_argument("--limit", type=int, default=10, help="with --chat-data: this many conversations")
    args = parser.parse_args(argv)
    if not have_llama_cpp():
        return 1
    if args.chat:
        return check_chat(args.model, args.chat_data, args.limit, args.max_tokens)
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


def llama_cpp_chat_prompt(model_path: Path, messages: list[dict]) -> str:
    """The text llama.cpp's C++ template code makes of `messages` with the file's own
    tokenizer.chat_template, the assistant's header appended (add_ass)."""
    import ctypes

    import llama_cpp
    from jaxmodel.gguf_io import CHAT_TEMPLATE_KEY

    import gguf

    template = gguf.GGUFReader(model_path).fields[CHAT_TEMPLATE_KEY].contents()
    chat = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(role=m["role"].encode(), content=m["content"].encode()) for m in messages])
    size = 4 * sum(len(m["content"]) + 64 for m in messages)
    buffer = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_chat_apply_template(template.encode(), chat, len(messages), True, buffer, size)
    if n < 0:
        raise RuntimeError("llama.cpp does not recognise the file's chat template")
    return buffer.raw[:n].decode()


def check_chat(model_path: Path, data: Path | None, limit: int, max_tokens: int) -> int:
    from llama_cpp import Llama  # optional: not a project dependency

    sys.path.insert(0, str(ROOT))
    from jaxmodel import tokenizer as tk
    from jaxmodel.finetune import chat_prompt
    from jaxmodel.gguf_io import read_model

    subprocess.run(["make", "--no-print-directory", "build"], cwd=ROOT, check=True, capture_output=True)
    if data is None:
        questions = ["Once upon a time, a small cat named Tom lived in a house.\n\nWho is this story about?"]
    else:
        questions = [json.loads(line)["messages"][0]["content"] for line in data.read_text().splitlines() if line.strip()][:limit]
    vocab = read_model(model_path).vocab
    encoding = tk.encoding(vocab)
    llm = Llama(model_path=str(model_path), n_ctx=512, verbose=False, type_k=0, type_v=0, flash_attn=False)
    go = subprocess.run([str(ROOT / "bin" / "goengine"), "chat", "--model", str(model_path), "--temperature", "0",
                         "--max-tokens", str(max_tokens)], input="\n/reset\n".join(q.replace("\n", "\\\n") for q in questions) + "\n",
                        capture_output=True, text=True, check=True).stdout.split("\n")
    same_prompts = same_replies = 0
    for k, question in enumerate(questions):
        messages = [{"role": "user", "content": question}]
        text = llama_cpp_chat_prompt(model_path, messages)
        theirs = llm.tokenize(text.encode(), add_bos=True, special=True)
        ours = chat_prompt([("user", question)], encoding, vocab)
        same_prompts += theirs == ours
        llm.reset()
        reply = llm.create_completion(theirs, max_tokens=max_tokens, temperature=0.0, stop=["<|eot_id|>"])["choices"][0]["text"]
        same_replies += reply == go[k]
        mark = "same" if reply == go[k] else "DIFFERENT"
        print(f"{k}: prompt {'same ids' if theirs == ours else 'DIFFERENT ids'} ({len(ours)} tokens); reply {mark}\n"
              f"   llama.cpp {reply!r}\n   goengine  {go[k]!r}")
    print(f"chat: {same_prompts}/{len(questions)} prompts token for token, {same_replies}/{len(questions)} greedy replies equal")
    return 0 if same_prompts == same_replies == len(questions) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
