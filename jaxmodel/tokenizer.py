"""Byte-level BPE tokenizer: train with rustbpe, use through tiktoken (spec/tokenizer.md).

A vocabulary is tiktoken's pair: `mergeable_ranks` (byte string -> rank, and the
rank is the token id) and `special_tokens` (text -> id, after the ranks). This
module trains one, saves and loads it, makes the `tiktoken.Encoding` that
encodes with it, and converts it to and from GGUF's `gpt2` tokenizer keys.

    python -m jaxmodel.tokenizer train --input data.txt more/ --vocab-size 32768 --out tok/
    enc = load_encoding("tok/")          # a tiktoken.Encoding, offline

The golden models use a placeholder vocabulary made by `placeholder_vocabulary`.
"""

from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import functools
import json
import re
import sys
from pathlib import Path

from jaxmodel.documents import DOCUMENT_SEPARATOR, DocumentError, expand_inputs, iter_documents  # noqa: F401 (the separator: for jaxmodel.corpus)

# LLaMA 3's named special tokens, in id order; reserved ones follow (spec/tokenizer.md).
NAMED_SPECIAL_TOKENS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)

# The LLaMA-3 pre-tokenizer (spec/tokenizer.md §2.2): text is cut into pieces by this
# pattern before BPE, and no token spans two pieces. llama.cpp calls it "llama-bpe".
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
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


# --- training, saving, loading ---------------------------------------------------------

RANKS_FILE = "tokenizer.model"  # tiktoken's format: "<base64 token> <rank>" per line
CONFIG_FILE = "tokenizer.json"  # the split pattern and the special tokens


def n_special_for(vocab_size: int) -> int:
    """Special tokens for a vocabulary: vocab_size / 128, at least 8, at most 256 (LLaMA 3's)."""
    return max(8, min(256, vocab_size // 128))


def train(paths: list[Path], vocab_size: int, n_special: int | None = None, progress: bool = True) -> Vocabulary:
    """Trains a byte-level BPE vocabulary of exactly `vocab_size` ids with rustbpe.

    `paths` are files or directories, read by `jaxmodel.documents` (.txt, .jsonl,
    .parquet); each document is one text for the trainer, as `data prepare` encodes it.
    """
    import rustbpe  # imported here: loading a saved tokenizer must not need the trainer

    n_special = n_special_for(vocab_size) if n_special is None else n_special
    n_ranks = vocab_size - n_special
    if n_ranks < 256:
        raise TokenizerError(f"vocab_size {vocab_size} leaves {n_ranks} ids after {n_special} special tokens; need at least 256 for the bytes")
    paths = expand_inputs(paths)
    total = sum(path.stat().st_size for path in paths)
    if total == 0:
        raise TokenizerError("the training data is empty: " + ", ".join(map(str, paths)))
    trainer = rustbpe.Tokenizer()
    with _progress_bar(total, progress) as bar:
        trainer.train_from_iterator(iter_documents(paths, bar.update), n_ranks, pattern=SPLIT_PATTERN)
    ranks = {bytes(token): rank for token, rank in trainer.get_mergeable_ranks()}
    if len(ranks) < n_ranks:  # rustbpe stops quietly when it runs out of pairs
        raise TokenizerError(
            f"the training data has too few distinct pairs: learned {len(ranks) - 256} merges, "
            f"needed {n_ranks - 256} for vocab_size {vocab_size}; use more text or a smaller vocabulary"
        )
    specials = {name: n_ranks + i for i, name in enumerate(special_token_names(n_special))}
    return Vocabulary(ranks, specials)


def _progress_bar(total_bytes: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total_bytes, unit="B", unit_scale=True, desc="reading", file=sys.stderr, disable=not enabled)


def save(vocab: Vocabulary, directory: str | Path) -> None:
    """Writes `tokenizer.model` (tiktoken's rank file) and `tokenizer.json` into `directory`."""
    directory = Path(directory)
    _check_out(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RANKS_FILE).write_text(_ranks_text(vocab), encoding="ascii")
    config = {"pattern": SPLIT_PATTERN, "vocab_size": vocab.size, "special_tokens": vocab.special_tokens}
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _check_out(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise TokenizerError(f"{directory}: a file, not a directory: the tokenizer is saved as a directory of {RANKS_FILE} and {CONFIG_FILE}; pass a new or existing directory")


def load(directory: str | Path) -> Vocabulary:
    """Reads a vocabulary written by `save`, checking that the ids cover 0..vocab_size-1."""
    directory = Path(directory)
    if directory.is_file():
        raise TokenizerError(f"{directory}: a file, not a tokenizer directory: pass the directory that holds {RANKS_FILE} and {CONFIG_FILE}")
    if not directory.is_dir():
        raise TokenizerError(f"{directory}: no such directory (make a tokenizer with python -m jaxmodel.tokenizer train)")
    ranks_path, config_path = directory / RANKS_FILE, directory / CONFIG_FILE
    for path in (ranks_path, config_path):
        if not path.is_file():
            raise TokenizerError(f"{path}: no such file (a tokenizer directory holds {RANKS_FILE} and {CONFIG_FILE})")
    ranks = {}
    for number, line in enumerate(ranks_path.read_text(encoding="ascii").splitlines(), start=1):
        try:
            token, rank = line.split(" ")
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError:
            raise TokenizerError(f"{ranks_path}:{number}: expected '<base64 token> <rank>', found {line[:60]!r}") from None
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("pattern") != SPLIT_PATTERN:
        raise TokenizerError(f"{config_path}: pattern differs from the LLaMA-3 split pattern this project uses")
    vocab = Vocabulary(ranks, {str(k): int(v) for k, v in config["special_tokens"].items()})
    ids = sorted([*vocab.mergeable_ranks.values(), *vocab.special_tokens.values()])
    if ids != list(range(vocab.size)) or vocab.size != config.get("vocab_size"):
        raise TokenizerError(f"{directory}: token ids must be exactly 0..{config.get('vocab_size', '?')} - 1 with no gaps or repeats")
    return vocab


def _ranks_text(vocab: Vocabulary) -> str:
    """The rank file's text: one "<base64 token> <rank>" line per ordinary token, in rank order."""
    return "".join(f"{base64.b64encode(token).decode()} {rank}\n" for token, rank in sorted(vocab.mergeable_ranks.items(), key=lambda item: item[1]))


def vocab_fingerprint(vocab: Vocabulary) -> str:
    """`fingerprint` of the directory `save(vocab, ...)` would write, without writing it."""
    import hashlib

    return hashlib.sha256(_ranks_text(vocab).encode("ascii")).hexdigest()


def fingerprint(directory: str | Path) -> str:
    """sha256 of the rank file: names a vocabulary in shard indexes and training runs."""
    import hashlib

    return hashlib.sha256((Path(directory) / RANKS_FILE).read_bytes()).hexdigest()


def encoding(vocab: Vocabulary, name: str = "gollm") -> "tiktoken.Encoding":  # noqa: F821
    """The tiktoken Encoding that encodes with `vocab` (built offline, nothing downloaded)."""
    import tiktoken

    return tiktoken.Encoding(name, pat_str=SPLIT_PATTERN, mergeable_ranks=vocab.mergeable_ranks, special_tokens=vocab.special_tokens)


def load_encoding(directory: str | Path) -> "tiktoken.Encoding":  # noqa: F821
    """`encoding(load(directory))`."""
    return encoding(load(directory), name=Path(directory).name or "gollm")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.tokenizer", description="Train or try a gollm tokenizer.")
    commands = parser.add_subparsers(dest="command", required=True)
    train_cmd = commands.add_parser("train", help="train a byte-level BPE vocabulary with rustbpe")
    train_cmd.add_argument("--input", type=Path, nargs="+", required=True, help="files or directories: .txt (<|endoftext|> between documents), .jsonl or .parquet with a text field")
    size = train_cmd.add_mutually_exclusive_group(required=True)
    size.add_argument("--vocab-size", type=int, help="ids in all, special tokens included")
    size.add_argument("--config", type=Path, help="take vocab_size from this model config")
    train_cmd.add_argument("--out", type=Path, required=True, help="directory for tokenizer.model and tokenizer.json")
    encode_cmd = commands.add_parser("encode", help="print the ids of a text")
    encode_cmd.add_argument("--tokenizer", type=Path, required=True)
    encode_cmd.add_argument("text")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            vocab_size = args.vocab_size
            _check_out(args.out)  # before hours of training, not after
            if args.config is not None and args.config.is_dir():
                raise TokenizerError(f"{args.config}: a directory, not a file: --config takes a model config file such as configs/gollm-85m.yaml")
            if args.config is not None:
                from jaxmodel.config import ConfigError, load_config

                try:
                    vocab_size = load_config(args.config).vocab_size
                except ConfigError as err:
                    raise TokenizerError(str(err)) from None
            vocab = train(args.input, vocab_size)
            save(vocab, args.out)
            print(f"wrote {args.out}: {vocab.size} tokens ({len(vocab.mergeable_ranks) - 256} merges, {len(vocab.special_tokens)} special)")
        else:
            print(" ".join(map(str, load_encoding(args.tokenizer).encode(args.text))))
    except (TokenizerError, DocumentError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from jaxmodel import cli

    sys.exit(cli.run(main))
