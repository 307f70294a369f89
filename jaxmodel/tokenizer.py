"""Byte-level BPE vocabulary and its GGUF form (spec/tokenizer.md).

A vocabulary is tiktoken's pair: `mergeable_ranks` (byte string -> rank, and the
rank is the token id) and `special_tokens` (text -> id, after the ranks). This
module converts it to and from GGUF's `gpt2` tokenizer keys.

For now the goldens use a placeholder vocabulary: the 256 bytes, a few merges
learned from a fixed built-in text by `train_tiny_bpe`, and 8 special tokens. The
real trained tokenizer (rustbpe, tiktoken, the Go encoder) comes in a later issue.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import re

# LLaMA 3's named special tokens, in id order; reserved ones follow (spec/tokenizer.md).
NAMED_SPECIAL_TOKENS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)

# GGUF's tokenizer.ggml.token_type values that we write.
TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_CONTROL = 3


class TokenizerError(ValueError):
    """A vocabulary that breaks the rules of spec/tokenizer.md."""


def special_token_names(n_special: int) -> list[str]:
    """The `n_special` special tokens: the five named ones, then reserved ones."""
    if n_special < len(NAMED_SPECIAL_TOKENS):
        raise TokenizerError(f"need at least {len(NAMED_SPECIAL_TOKENS)} special tokens, asked for {n_special}")
    reserved = [f"<|reserved_special_token_{k}|>" for k in range(n_special - len(NAMED_SPECIAL_TOKENS))]
    return list(NAMED_SPECIAL_TOKENS) + reserved


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """A byte-level BPE vocabulary: ids 0..255 are bytes, then merges, then specials."""

    mergeable_ranks: dict[bytes, int]
    special_tokens: dict[str, int]

    @property
    def size(self) -> int:
        return len(self.mergeable_ranks) + len(self.special_tokens)

    @property
    def bos_id(self) -> int:
        return self.special_tokens["<|begin_of_text|>"]

    @property
    def eos_id(self) -> int:
        return self.special_tokens["<|end_of_text|>"]


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table used for token strings in GGUF.

    Printable bytes stand for themselves; the other 68 bytes map, in byte order, to
    code points 256, 257, ... so that every token is a readable, whitespace-free string.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    next_code = 256
    for b in range(256):
        if b not in table:
            table[b] = chr(next_code)
            next_code += 1
    return table


@functools.cache
def unicode_to_bytes() -> dict[str, int]:
    return {char: b for b, char in bytes_to_unicode().items()}


def token_to_unicode(token: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def token_from_unicode(text: str) -> bytes:
    table = unicode_to_bytes()
    try:
        return bytes(table[char] for char in text)
    except KeyError as err:
        raise TokenizerError(f"token {text!r}: character {err.args[0]!r} is not in the byte-to-unicode table") from None


def bpe(ranks: dict[bytes, int], piece: bytes, max_rank: int | None = None) -> list[bytes]:
    """Splits `piece` into tokens: repeatedly join the adjacent pair of lowest rank.

    With `max_rank`, only merges of rank < max_rank may be used (to find the pair a
    token was made from).
    """
    parts = [bytes([b]) for b in piece]
    while len(parts) > 1:
        best_rank, best_i = None, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (max_rank is None or rank < max_rank):
                if best_rank is None or rank < best_rank:
                    best_rank, best_i = rank, i
        if best_rank is None:
            break
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts


def vocab_to_gguf(vocab: Vocabulary) -> tuple[list[str], list[int], list[str]]:
    """Returns (tokens, token_types, merges) for GGUF's `gpt2` tokenizer keys."""
    tokens: list[str | None] = [None] * vocab.size
    types = [TOKEN_TYPE_NORMAL] * vocab.size
    merges = []
    for token, rank in sorted(vocab.mergeable_ranks.items(), key=lambda item: item[1]):
        tokens[rank] = token_to_unicode(token)
        if len(token) > 1:
            parts = bpe(vocab.mergeable_ranks, token, max_rank=rank)
            if len(parts) != 2:
                raise TokenizerError(f"token {token!r} (rank {rank}) is not the merge of two lower-ranked tokens")
            merges.append(f"{token_to_unicode(parts[0])} {token_to_unicode(parts[1])}")
    for text, token_id in vocab.special_tokens.items():
        tokens[token_id] = text
        types[token_id] = TOKEN_TYPE_CONTROL
    missing = [i for i, token in enumerate(tokens) if token is None]
    if missing:
        raise TokenizerError(f"vocabulary has no token with id {missing[0]} (ids must be 0..{vocab.size - 1})")
    return tokens, types, merges


def vocab_from_gguf(tokens: list[str], token_types: list[int]) -> Vocabulary:
    """Inverse of `vocab_to_gguf`: control tokens are specials, the rest are ranks."""
    if len(tokens) != len(token_types):
        raise TokenizerError(f"{len(tokens)} tokens but {len(token_types)} token types")
    ranks, specials = {}, {}
    for token_id, (text, kind) in enumerate(zip(tokens, token_types)):
        if kind == TOKEN_TYPE_CONTROL:
            specials[text] = token_id
        else:
            ranks[token_from_unicode(text)] = token_id
    return Vocabulary(ranks, specials)


# A fixed text, written for this project, from which the placeholder merges are learned.
_TINY_CORPUS = (
    "the little robot rolled into the garden and met a tired turtle. "
    "the turtle told the robot a story about the river, the rain and the tall tree. "
    "then the robot and the turtle rested in the shade until the evening light turned gold."
)


def train_tiny_bpe(text: bytes, n_merges: int) -> dict[bytes, int]:
    """Learns `n_merges` merges from `text` by counting adjacent pairs within words.

    Deterministic: the most frequent pair wins, ties go to the smallest pair in
    byte order. Only for placeholder vocabularies; real training uses rustbpe.
    """
    words = collections.Counter(tuple(bytes([b]) for b in w) for w in re.findall(rb" ?[^ ]+", text))
    ranks = {bytes([b]): b for b in range(256)}
    for _ in range(n_merges):
        pairs: collections.Counter[tuple[bytes, bytes]] = collections.Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            raise TokenizerError(f"text too short to learn {n_merges} merges (learned {len(ranks) - 256})")
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        ranks[best[0] + best[1]] = len(ranks)
        words = collections.Counter({_merge_pair(word, best): count for word, count in words.items()})
    return ranks


def _merge_pair(word: tuple[bytes, ...], pair: tuple[bytes, bytes]) -> tuple[bytes, ...]:
    merged, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            merged.append(word[i] + word[i + 1])
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return tuple(merged)


def placeholder_vocabulary(vocab_size: int, n_special: int = 8) -> Vocabulary:
    """The goldens' vocabulary: 256 bytes + merges from the tiny corpus + specials."""
    n_merges = vocab_size - 256 - n_special
    if n_merges < 0:
        raise TokenizerError(f"vocab_size {vocab_size} is smaller than 256 bytes + {n_special} special tokens")
    ranks = train_tiny_bpe(_TINY_CORPUS.encode(), n_merges)
    specials = {name: len(ranks) + i for i, name in enumerate(special_token_names(n_special))}
    return Vocabulary(ranks, specials)
