"""Writes tiktoken_cases.json, the cases the Go tokenizer must reproduce exactly.

    cd /work/main && .venv/bin/python goengine/tokenizer/testdata/make_cases.py

The ids come from tiktoken and the pieces from the `regex` module with the split
pattern, so the Go tests compare against the reference implementations, never
against Go itself. Two vocabularies:

* "ids": the goldens' placeholder vocabulary (placeholder_vocabulary(320)), which
  is the one stored in goldens/gqa.gguf; the Go test loads it from there.
* "trained_ids": a vocabulary trained here on the random texts, with merges of
  multi-byte characters, digits and spaces that the placeholder lacks. Its ranks
  are stored in the file.

Deterministic: a rerun writes the same bytes.
"""

from __future__ import annotations

import base64
import collections
import json
import random
from pathlib import Path

import regex
import tiktoken

from jaxmodel.tokenizer import SPLIT_PATTERN, placeholder_vocabulary

OUT = Path(__file__).with_name("tiktoken_cases.json")
SEED = 20240611
N_RANDOM = 560
N_RANDOM_SPECIAL = 60
TRAINED_MERGES = 800

# Hand-picked strings: each stresses one rule of spec/tokenizer.md §2.2.
HAND_PICKED = [
    "",
    "hello world",
    "Once upon a time, the robot met a little turtle in the garden.",
    "héllo wörld, naïve café Ångström",
    "日本語のテキスト 中文 한국어",
    "🦙 llama 👍🏽 👨‍👩‍👧 emoji",
    "1234567",
    "3.14159 and 1,000,000 and 12 345",
    "   hi",
    "hi   ",
    "a  b   c    d",
    "\t\tindent\n\tx",
    "line\r\nline\r\n\r\n",
    "\n\n  x",
    " \n \n ",
    "trailing spaces   ",
    "  \t \n",
    "\r\r\n\n\r",
    "it's I'LL you'Re we've I'm he'd don't 'start",
    "'s 'S 'ſ ſ 'ſtart 'hello 'RE 're 'Ve 'lL 'x",
    "''s '''",
    "def f(x):\n    return x**2 + 1  # square\n",
    "if (a != b && c <= d) { return; }",
    "for i in range(10):\n\tprint(i)\r\n",
    "!!! ??? ... --- === !?\n\n",
    "Hello!!!\nWorld...\r\n",
    " ...",
    "<|eot_id|>",
    "hi<|eot_id|>",
    "<|begin_of_text|>hello<|end_of_text|>",
    "<|reserved_special_token_0|> <|start_header_id|>user<|end_header_id|>\n\n",
    "no\u00a0break\u00a0space",
    "ideographic\u3000space\u3000\u3000x",
    "\u001c\u001d\u001e\u001f",
    "a\u001cb \u001d c\u001e\u001f ",
    "\u0085next line\u2028\u2029",
    "e\u0301 combining a\u0300\u0301 \u0301\u0301x",
    "½ Ⅻ ٣ ²³ ⅓ 10½",
    "x½y Ⅻth 12Ⅻ34",
    "$100 €50 ¥20 #tag @user",
    "'",
    " ",
    "\n",
    "x",
    "日",
    "a'b'c",
    "(hello) [world] {x}",
    " (hello) \"quoted\" «guillemets»",
]

# Fragments for random strings: letters, digits, every kind of space, line
# breaks, punctuation, apostrophes, accents, CJK, emoji, marks and odd numbers.
FRAGMENTS = [
    "the", "and", "hello", "World", "robot", "IT", "a", "b", "Z", "x",
    "0", "1", "7", "42", "999", "12345",
    " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\n\n", " \n",
    "\u00a0", "\u3000", "\u2003", "\u0085", "\u000b", "\u000c", "\u001c", "\u001f",
    ".", ",", "!", "?", "-", "_", "(", ")", "\"", "#", "*", "<|", "|>", "...", "+=",
    "'", "'s", "'S", "'t", "'re", "'RE", "'ve", "'m", "'ll", "'LL", "'d", "ſ", "'ſ",
    "é", "ñ", "Ü", "ß", "ø", "Ω", "ж", "Д", "ا", "ש",
    "日", "本", "語", "中", "文", "の", "ア", "한",
    "🦙", "👍", "🏽", "😀", "\u200d", "🇫🇷",
    "\u0301", "\u0300", "\u093f", "½", "Ⅻ", "٣", "²",
    "<|eot_id|>", "<|begin_of_text|>",
]


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 24)))


def train(texts: list[str], n_merges: int) -> dict[bytes, int]:
    """Byte-level BPE on the pieces of texts: most frequent pair first, ties to the smaller pair."""
    words = collections.Counter(tuple(bytes([b]) for b in p.encode()) for t in texts for p in regex.findall(SPLIT_PATTERN, t))
    ranks = {bytes([b]): b for b in range(256)}
    for _ in range(n_merges):
        pairs: collections.Counter[tuple[bytes, bytes]] = collections.Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merged = best[0] + best[1]
        if merged not in ranks:  # two pairs can make the same bytes; keep the first rank
            ranks[merged] = len(ranks)
        new_words: collections.Counter[tuple[bytes, ...]] = collections.Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] += count
        words = new_words
    return ranks


def encoding(name: str, ranks: dict[bytes, int], specials: dict[str, int]) -> tiktoken.Encoding:
    return tiktoken.Encoding(name, pat_str=SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens=specials)


def check_pieces(enc: tiktoken.Encoding, text: str, pieces: list[str]) -> None:
    """The regex module's pieces must be the ones tiktoken's own splitter uses."""
    assert "".join(pieces) == text, text
    by_piece = [i for p in pieces for i in enc._encode_single_piece(p.encode())]
    assert by_piece == enc.encode_ordinary(text), text


def main() -> None:
    rng = random.Random(SEED)
    random_texts = [random_text(rng) for _ in range(N_RANDOM)]
    special_texts = [
        "<|eot_id|>",
        "hi<|eot_id|>",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>",
        "<|<|eot_id|>|>",
        "<|eot_id|<|eot_id|>",
        "<|eot_id",
        "text <|reserved_special_token_2|> text <|reserved_special_token_3|>",
        "  <|end_of_text|>  x",
        "<|eot_id|><|eot_id|>",
    ] + [random_text(rng) for _ in range(N_RANDOM_SPECIAL)]

    golden = placeholder_vocabulary(320)
    golden_enc = encoding("gollm-goldens", golden.mergeable_ranks, golden.special_tokens)
    trained_ranks = train(HAND_PICKED + random_texts, TRAINED_MERGES)
    trained_specials = {name: len(trained_ranks) + i for i, name in enumerate(golden.special_tokens)}
    trained_enc = encoding("gollm-trained", trained_ranks, trained_specials)

    cases = []
    for text in HAND_PICKED + random_texts:
        pieces = regex.findall(SPLIT_PATTERN, text)
        check_pieces(golden_enc, text, pieces)
        check_pieces(trained_enc, text, pieces)
        cases.append({
            "text": text,
            "pieces": pieces,
            "ids": golden_enc.encode_ordinary(text),
            "trained_ids": trained_enc.encode_ordinary(text),
        })
    special_cases = [{
        "text": text,
        "ids": golden_enc.encode(text, allowed_special="all"),
        "trained_ids": trained_enc.encode(text, allowed_special="all"),
    } for text in special_texts]

    def line(obj: object) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    by_rank = sorted(trained_ranks, key=trained_ranks.__getitem__)
    lines = [
        "{",
        f'"generated": {line("by goengine/tokenizer/testdata/make_cases.py; do not edit by hand")},',
        f'"tiktoken_version": {line(tiktoken.__version__)},',
        f'"split_pattern": {line(SPLIT_PATTERN)},',
        '"trained_vocabulary": {',
        f'"ranks_base64": {line([base64.b64encode(b).decode() for b in by_rank])},',
        f'"special_tokens": {line(trained_specials)}',
        "},",
        '"cases": [',
        ",\n".join(line(c) for c in cases),
        "],",
        '"special_cases": [',
        ",\n".join(line(c) for c in special_cases),
        "]",
        "}",
    ]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(cases)} cases, {len(special_cases)} special cases, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
