"""Token shards: the training data on disk, and batches drawn from it (spec/data.md).

A shard directory holds `index.json` and raw files of little-endian token ids, the
documents concatenated with the end-of-text id after each. `write_shards` makes one
from token-id documents, streaming; `TokenShards.open` checks one the way
`archive/zip` checks an archive (every count before it is trusted) and memory-maps
the shards; `TokenShards.pipeline` is the grain pipeline of batches of windows.

A batch is a pure function of (seed, step): resuming at step s gives exactly the
batches an uninterrupted run would have seen, with no loader state to save.

    write_shards("shards/", documents, vocab_size=2048, eos_id=2033, val_fraction=0.01)
    data = TokenShards.open("shards/", vocab_size=2048)
    tokens = data.batch(step, batch_size=32, seq_len=512, seed=0)   # (32, 513) int32

Text becomes shards with `python -m jaxmodel.data prepare`; this module checks them:

    python -m jaxmodel.shards info shards/ [--verify]

NumPy only (no JAX): the writer runs in data jobs that have no accelerator.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

FORMAT = "gollm-tokens"
VERSION = 1
INDEX_FILE = "index.json"
SPLITS = ("train", "val")
# Mixed into the batch seed so that the val split's windows are not the train split's.
SPLIT_CODES = {"train": 0, "val": 1}
# Little-endian on every machine: the files are a contract, not a memory dump.
DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
INDEX_KEYS = ("format", "version", "dtype", "vocab_size", "eos_id", "tokenizer_sha256", "shards")
SHARD_KEYS = ("file", "split", "tokens", "sha256")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_WRITTEN_FILE = re.compile(r"(train|val)-[0-9]{5}\.bin|index\.json(\.tmp)?")  # what write_shards writes
_HASH_CHUNK = 1 << 24  # bytes hashed at a time, so verifying never reads a shard whole


class ShardError(ValueError):
    """A shard directory, or a request to it, that breaks the rules of spec/data.md."""


def dtype_for(vocab_size: int) -> str:
    """The narrowest dtype that holds every id: "uint16" up to 65536 ids, else "uint32"."""
    if vocab_size <= 1 << 16:
        return "uint16"
    if vocab_size <= 1 << 32:
        return "uint32"
    raise ShardError(f"vocab_size {vocab_size} does not fit in uint32 token ids")


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """One entry of index.json's "shards" list."""

    file: str
    split: str
    tokens: int
    sha256: str


# --- writing -------------------------------------------------------------------------------


class _SplitWriter:
    """Fills one shard buffer of `shard_tokens` ids at a time and writes it when full.

    A document may continue in the next shard: shards are cut at exactly
    `shard_tokens`, so every shard of a split but its last has the same size.
    """

    def __init__(self, directory: Path, split: str, dtype: np.dtype, shard_tokens: int):
        self.directory, self.split, self.dtype, self.shard_tokens = directory, split, dtype, shard_tokens
        self.buffer: np.ndarray | None = None  # allocated on first use, freed by close()
        self.fill = 0
        self.entries: list[ShardInfo] = []

    def add(self, ids: np.ndarray) -> None:
        while ids.size:
            if self.buffer is None:
                self.buffer = np.empty(self.shard_tokens, self.dtype)
            take = min(self.shard_tokens - self.fill, ids.size)
            self.buffer[self.fill : self.fill + take] = ids[:take]
            self.fill += take
            ids = ids[take:]
            if self.fill == self.shard_tokens:
                self._flush()

    def _flush(self) -> None:
        name = f"{self.split}-{len(self.entries):05d}.bin"
        data = memoryview(self.buffer[: self.fill]).cast("B")
        with open(self.directory / name, "wb") as f:
            f.write(data)
        self.entries.append(ShardInfo(name, self.split, self.fill, hashlib.sha256(data).hexdigest()))
        self.fill = 0

    def close(self) -> list[ShardInfo]:
        if self.fill:
            self._flush()
        self.buffer = None
        return self.entries


def write_shards(
    directory: str | Path,
    documents: Iterable[Sequence[int] | np.ndarray],
    vocab_size: int,
    eos_id: int,
    shard_tokens: int = 2**24,
    val_tokens: int = 0,
    tokenizer_sha256: str | None = None,
    val_fraction: float = 0.0,
    val_max_tokens: int | None = None,
) -> Path:
    """Writes `documents` (token-id sequences) as a shard directory; returns its index path.

    Streams: at most one shard buffer per split is held in memory. Each document is
    followed by `eos_id`. Which documents are held out for the val split (whole
    documents, so a val document is never cut; spec/data.md §3):
    - `val_tokens=N`: the first documents, until val holds at least N tokens;
    - `val_fraction=f`: documents 0, 1/f, 2/f, ... (document k when ceil((k+1)·f) >
      ceil(k·f)), spread through the stream, until the next would take val past
      `val_max_tokens`. A lone document is never held out;
    - neither: no val split.
    Files an earlier write left (index.json, {train,val}-NNNNN.bin) are removed first,
    the index before the shards. index.json is written last, through a temporary file
    and a rename, so a directory whose writing was interrupted has no index and cannot
    be opened.
    """
    directory = Path(directory)
    _check_write_args(vocab_size, eos_id, shard_tokens, val_tokens, tokenizer_sha256, val_fraction, val_max_tokens)
    dtype = DTYPES[dtype_for(vocab_size)]
    directory.mkdir(parents=True, exist_ok=True)
    index_path = directory / INDEX_FILE
    # An old index would describe the shard files we are about to overwrite: it goes first.
    index_path.unlink(missing_ok=True)
    for stale in shard_files(directory):
        stale.unlink()

    writers = {split: _SplitWriter(directory, split, dtype, shard_tokens) for split in SPLITS}
    eos = np.array([eos_id], dtype)
    counts = {split: 0 for split in SPLITS}  # documents per split

    def add(split: str, ids: np.ndarray) -> None:
        writers[split].add(ids)
        writers[split].add(eos)
        counts[split] += 1

    chooser = _ValChooser(val_tokens, val_fraction, val_max_tokens)
    held = None  # document 0 when chosen by fraction: it waits for a second one, since a lone document must train
    for number, document in enumerate(documents):
        ids = _document_ids(document, number, vocab_size).astype(dtype)
        to_val = chooser.take(number, ids.size + 1)
        if held is not None:
            add("val", held)
            held = None
        if to_val and number == 0 and chooser.by_fraction:
            held = ids
            continue
        add("val" if to_val else "train", ids)
        if chooser.complete:
            writers["val"].close()  # val is complete: free its buffer
    if held is not None:
        add("train", held)
    entries = writers["train"].close() + writers["val"].close()
    if counts["train"] == 0:
        raise ShardError(
            f"{directory}: no train tokens: "
            + (f"all {counts['val']} documents went to the val split ({chooser})" if counts["val"] else "no documents were given")
        )

    index = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": dtype_for(vocab_size),
        "vocab_size": vocab_size,
        "eos_id": eos_id,
        "tokenizer_sha256": tokenizer_sha256,
        "documents": counts,
        "shards": [dataclasses.asdict(e) for e in entries],
    }
    tmp = directory / (INDEX_FILE + ".tmp")
    tmp.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, index_path)
    return index_path


def shard_files(directory: str | Path) -> list[Path]:
    """The files in `directory` that `write_shards` writes (index.json, its temporary,
    {train,val}-NNNNN.bin), sorted; other files are not ours and are never touched."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _WRITTEN_FILE.fullmatch(p.name) and p.is_file())


class _ValChooser:
    """Decides, a document at a time, whether it is held out for val (spec/data.md §3)."""

    def __init__(self, val_tokens: int, val_fraction: float, val_max_tokens: int | None):
        self.val_tokens, self.val_fraction, self.val_max_tokens = val_tokens, val_fraction, val_max_tokens
        # The fraction as the decimal it was written as (0.01 is exactly 1/100, not the
        # binary float just above it), so the chosen documents are exactly 0, 100, 200, ...
        fraction = Fraction(repr(float(val_fraction)))
        self.p, self.q = fraction.numerator, fraction.denominator
        self.by_fraction = not val_tokens and self.p > 0
        self.tokens = 0  # val tokens so far, separators included
        self.complete = not val_tokens and not self.by_fraction

    def take(self, number: int, size: int) -> bool:
        """Whether document `number`, `size` tokens with its separator, goes to val."""
        if self.complete:
            return False
        if self.by_fraction:
            ceil = lambda a: -(-a // self.q)  # noqa: E731  ceil(a / q) in integers
            if ceil((number + 1) * self.p) == ceil(number * self.p):
                return False
            if self.val_max_tokens is not None and self.tokens + size > self.val_max_tokens:
                self.complete = True
                return False
        self.tokens += size
        if not self.by_fraction and self.tokens >= self.val_tokens:
            self.complete = True
        return True

    def __str__(self) -> str:
        if self.by_fraction:
            return f"val_fraction={self.val_fraction}"
        return f"val_tokens={self.val_tokens}"


def _check_write_args(vocab_size, eos_id, shard_tokens, val_tokens, tokenizer_sha256, val_fraction, val_max_tokens) -> None:
    for name, value, least in (("vocab_size", vocab_size, 1), ("shard_tokens", shard_tokens, 1), ("val_tokens", val_tokens, 0)):
        if not _is_int(value) or value < least:
            raise ShardError(f"{name} must be an integer >= {least}, found {value!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float, np.floating)) or not 0 <= val_fraction < 1:
        raise ShardError(f"val_fraction must be a number in [0, 1), found {val_fraction!r}")
    if val_max_tokens is not None and (not _is_int(val_max_tokens) or val_max_tokens < 0):
        raise ShardError(f"val_max_tokens must be an integer >= 0 or None, found {val_max_tokens!r}")
    if val_tokens and val_fraction:
        raise ShardError(f"give val_tokens or val_fraction, not both (found {val_tokens} and {val_fraction})")
    dtype_for(vocab_size)
    if not _is_int(eos_id) or not 0 <= eos_id < vocab_size:
        raise ShardError(f"eos_id must be a token id in 0..{vocab_size - 1}, found {eos_id!r}")
    if tokenizer_sha256 is not None and not (isinstance(tokenizer_sha256, str) and _SHA256.fullmatch(tokenizer_sha256)):
        raise ShardError(f"tokenizer_sha256 must be 64 lowercase hex digits or None, found {tokenizer_sha256!r}")


def _document_ids(document, number: int, vocab_size: int) -> np.ndarray:
    """The document as a 1-D integer array, every id checked to be in 0..vocab_size-1."""
    ids = np.asarray(document)
    if ids.size == 0:
        return np.zeros(0, np.int64)  # np.asarray([]) is float64; an empty document is fine
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ShardError(f"document {number}: expected a 1-D sequence of integer token ids, found {ids.dtype} with shape {ids.shape}")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise ShardError(f"document {number}: token id {bad} is outside 0..{vocab_size - 1}")
    return ids


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# --- reading ------------------------------------------------------------------------------


class TokenShards:
    """An opened, checked shard directory; the shards are memory-mapped, never loaded whole."""

    def __init__(self, directory: Path, index: dict, shards: list[ShardInfo], arrays: list[np.ndarray]):
        self.directory = directory
        self.dtype: str = index["dtype"]
        self.vocab_size: int = index["vocab_size"]
        self.eos_id: int = index["eos_id"]
        self.tokenizer_sha256: str | None = index["tokenizer_sha256"]
        # documents per split, if the writer recorded them (optional in the index)
        self.documents: dict[str, int] | None = index.get("documents")
        self.shards = tuple(shards)
        # split -> the split's shards in index order, and their memory maps
        self._pipelines: dict[tuple, object] = {}
        self._arrays = {split: [a for s, a in zip(shards, arrays) if s.split == split] for split in SPLITS}

    @classmethod
    def open(cls, directory: str | Path, vocab_size: int | None = None, verify: bool = False) -> TokenShards:
        """Opens `directory`, checking it in the order of spec/data.md §5.

        `vocab_size`, if given, is the model's: the shards must have been made with
        the same vocabulary size. `verify=True` also hashes every shard against its
        sha256 (slow for large data, so off by default).
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise ShardError(f"{directory}: no such directory")
        index_path = directory / INDEX_FILE
        index = _read_index(index_path)
        shards = _parse_shards(index_path, index)
        if vocab_size is not None and index["vocab_size"] != vocab_size:
            raise ShardError(
                f"{directory}: the shards were made with a vocabulary of {index['vocab_size']} tokens, "
                f"the model has {vocab_size}"
            )
        if sum(s.tokens for s in shards if s.split == "train") == 0:
            raise ShardError(f"{index_path}: empty data: no train shard holds any tokens")

        dtype = DTYPES[index["dtype"]]
        arrays = []
        for shard in shards:
            path = directory / shard.file
            if not path.is_file():
                raise ShardError(f"{path}: listed in {INDEX_FILE} but missing")
            size, expected = path.stat().st_size, shard.tokens * dtype.itemsize
            if size != expected:
                raise ShardError(
                    f"{path}: {size} bytes, expected {shard.tokens} tokens x {dtype.itemsize} bytes = {expected} "
                    "(truncated or corrupt)"
                )
            # np.memmap cannot map an empty file; an empty shard is simply an empty array.
            arrays.append(np.memmap(path, dtype=dtype, mode="r") if shard.tokens else np.zeros(0, dtype))
        for shard, array in zip(shards, arrays):
            _check_ids(directory / shard.file, array, index["vocab_size"])
        opened = cls(directory, index, shards, arrays)
        if verify:
            opened.verify()
        return opened

    def verify(self) -> None:
        """Hashes every shard against its sha256 in the index (reads all the data once)."""
        for shard in self.shards:
            _check_sha256(self.directory / shard.file, shard.sha256)

    def n_windows(self, split: str, seq_len: int) -> int:
        """Windows of seq_len + 1 tokens in `split` (0 if it has no shards): see `pipeline`."""
        return sum(_windows(s.tokens, seq_len) for s in self.shards if s.split == split)

    def n_tokens(self, split: str = "train") -> int:
        """Tokens in `split`, end-of-text separators included."""
        return sum(int(a.size) for a in self._split_arrays(split))

    def batch(
        self,
        step: int,
        batch_size: int,
        seq_len: int,
        seed: int,
        split: str = "train",
        process_index: int = 0,
        process_count: int = 1,
    ) -> np.ndarray:
        """This process's rows of the global batch for `step`: (batch_size // process_count, seq_len + 1) int32.

        `self.pipeline(...)[step]`: a batch depends on nothing but these arguments.
        """
        if not _is_int(step) or step < 0:
            raise ShardError(f"step must be an integer >= 0, found {step!r}")
        key = (batch_size, seq_len, seed, split, process_index, process_count)
        if key not in self._pipelines:
            self._pipelines[key] = self.pipeline(*key)
        return self._pipelines[key][step]

    def pipeline(self, batch_size: int, seq_len: int, seed: int, split: str = "train",
                 process_index: int = 0, process_count: int = 1):
        """The grain pipeline of batches: item `step` is this process's rows of global batch `step`.

        Windows are seq_len + 1 consecutive tokens of one shard, starting at multiples of
        seq_len (inputs row[:-1], targets row[1:], so every token is a target once per
        epoch). grain shuffles the window ids with a seed made from (seed, split), with a
        new order every epoch, forever; global batch `step` is the next batch_size ids.
        The pipeline is random access, so resuming at step s needs no saved state. Each
        process reads only its own block of rows; the blocks stack to the global batch.
        """
        import grain

        for name, value, least in (("seed", seed, 0), ("batch_size", batch_size, 1), ("seq_len", seq_len, 1), ("process_count", process_count, 1)):
            if not _is_int(value) or value < least:
                raise ShardError(f"{name} must be an integer >= {least}, found {value!r}")
        if batch_size % process_count:
            raise ShardError(f"batch_size {batch_size} must be divisible by process_count {process_count}")
        if not _is_int(process_index) or not 0 <= process_index < process_count:
            raise ShardError(f"process_index must be in 0..{process_count - 1}, found {process_index!r}")
        arrays = self._split_arrays(split)
        counts = np.array([_windows(a.size, seq_len) for a in arrays], np.int64)
        ends = np.cumsum(counts)
        if ends[-1] == 0:
            longest = max((a.size for a in arrays), default=0)
            raise ShardError(
                f"{self.directory}: the {split} split is too short for one window of seq_len + 1 = {seq_len + 1} tokens "
                f"(its longest shard has {longest})"
            )
        per = batch_size // process_count

        def rows(window_ids: np.ndarray) -> np.ndarray:  # (batch_size,) ids -> (per, seq_len + 1) tokens
            mine = window_ids[process_index * per : (process_index + 1) * per]
            which = np.searchsorted(ends, mine, side="right")
            starts = (mine - (ends[which] - counts[which])) * seq_len
            return np.stack([arrays[k][start : start + seq_len + 1] for k, start in zip(which, starts)]).astype(np.int32)

        mixed_seed = int(np.random.SeedSequence([seed, SPLIT_CODES[split]]).generate_state(1)[0])
        return grain.MapDataset.range(int(ends[-1])).seed(mixed_seed).shuffle().repeat(None).batch(batch_size).map(rows)

    def _split_arrays(self, split: str) -> list[np.ndarray]:
        if split not in SPLIT_CODES:
            raise ShardError(f"split must be one of {', '.join(SPLITS)}, found {split!r}")
        if not self._arrays[split]:
            raise ShardError(f"{self.directory}: no {split} shards")
        return self._arrays[split]


def _windows(n_tokens: int, seq_len: int) -> int:
    """A shard of n tokens holds (n - 1) // seq_len windows: starts 0, seq_len, ... while start + seq_len < n."""
    return max(0, (n_tokens - 1) // seq_len)


def _read_index(path: Path) -> dict:
    if not path.is_file():
        raise ShardError(f"{path}: no such file (a shard directory holds {INDEX_FILE} and the shard files)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ShardError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except UnicodeDecodeError:
        raise ShardError(f"{path}: not UTF-8 text") from None
    if not isinstance(index, dict):
        raise ShardError(f"{path}: expected a JSON object, found {type(index).__name__}")
    if index.get("format") != FORMAT:
        raise ShardError(f"{path}: format is {index.get('format')!r}, expected {FORMAT!r}")
    if index.get("version") != VERSION:
        raise ShardError(f"{path}: version {index.get('version')!r} is not supported (this reader knows version {VERSION})")
    for key in INDEX_KEYS:
        if key not in index:
            raise ShardError(f"{path}: missing key {key!r}")
    vocab_size = index["vocab_size"]
    if not _is_int(vocab_size) or not 0 < vocab_size <= 1 << 32:
        raise ShardError(f"{path}: vocab_size must be an integer in 1..2^32, found {vocab_size!r}")
    if index["dtype"] != dtype_for(vocab_size):
        raise ShardError(f"{path}: dtype is {index['dtype']!r}, expected {dtype_for(vocab_size)!r} for vocab_size {vocab_size}")
    if not _is_int(index["eos_id"]) or not 0 <= index["eos_id"] < vocab_size:
        raise ShardError(f"{path}: eos_id must be a token id in 0..{vocab_size - 1}, found {index['eos_id']!r}")
    sha = index["tokenizer_sha256"]
    if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        raise ShardError(f"{path}: tokenizer_sha256 must be 64 lowercase hex digits or null, found {sha!r}")
    documents = index.get("documents")
    if documents is not None and not (isinstance(documents, dict) and set(documents) == set(SPLITS)
                                      and all(_is_int(n) and n >= 0 for n in documents.values())):
        raise ShardError(f"{path}: documents must be an object of train and val counts >= 0, found {documents!r}")
    if not isinstance(index["shards"], list):
        raise ShardError(f"{path}: shards must be a list, found {type(index['shards']).__name__}")
    return index


def _parse_shards(path: Path, index: dict) -> list[ShardInfo]:
    shards, seen = [], set()
    for k, entry in enumerate(index["shards"]):
        where = f"{path}: shards[{k}]"
        if not isinstance(entry, dict):
            raise ShardError(f"{where}: expected a JSON object, found {type(entry).__name__}")
        for key in SHARD_KEYS:
            if key not in entry:
                raise ShardError(f"{where}: missing key {key!r}")
        name = entry["file"]
        # A plain file name: an index must not point outside its directory.
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
            raise ShardError(f"{where}: file must be a plain file name in the directory, found {name!r}")
        if name in seen:
            raise ShardError(f"{where}: file {name!r} is listed twice")
        seen.add(name)
        if entry["split"] not in SPLITS:
            raise ShardError(f"{where}: split must be one of {', '.join(SPLITS)}, found {entry['split']!r}")
        if not _is_int(entry["tokens"]) or entry["tokens"] < 0:
            raise ShardError(f"{where}: tokens must be an integer >= 0, found {entry['tokens']!r}")
        if not (isinstance(entry["sha256"], str) and _SHA256.fullmatch(entry["sha256"])):
            raise ShardError(f"{where}: sha256 must be 64 lowercase hex digits, found {entry['sha256']!r}")
        shards.append(ShardInfo(name, entry["split"], entry["tokens"], entry["sha256"]))
    return shards


def _check_ids(path: Path, array: np.ndarray, vocab_size: int) -> None:
    """Every id < vocab_size: one vectorised max over the mapped file, so the data is read once."""
    if array.size == 0 or vocab_size >= np.iinfo(array.dtype).max + 1:
        return  # the dtype cannot hold an id that large
    top = int(array.max())
    if top >= vocab_size:
        position = int(np.argmax(array >= vocab_size))
        raise ShardError(f"{path}: token id {int(array[position])} at position {position} is not below vocab_size {vocab_size}")


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise ShardError(f"{path}: sha256 is {digest.hexdigest()}, {INDEX_FILE} says {expected} (the file changed after it was written)")


# --- the command line ---------------------------------------------------------------------


def describe(shards: TokenShards) -> str:
    """What `info` prints: the header, then tokens, shards and documents per split."""
    lines = [
        f"{shards.directory}: {FORMAT} v{VERSION}, {shards.dtype}, vocab_size {shards.vocab_size}, eos_id {shards.eos_id}",
        f"tokenizer sha256: {shards.tokenizer_sha256 or 'unknown'}",
    ]
    for split in SPLITS:
        listed = [s for s in shards.shards if s.split == split]
        count = sum(s.tokens for s in listed)
        line = f"{split}: {count:,} tokens in {len(listed)} shard{'s' if len(listed) != 1 else ''}"
        if shards.documents is not None:
            line += f", {shards.documents[split]:,} document{'s' if shards.documents[split] != 1 else ''}"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.shards", description="Check a gollm shard directory (spec/data.md).")
    commands = parser.add_subparsers(dest="command", required=True)
    info_cmd = commands.add_parser("info", help="check a shard directory and print its counts")
    info_cmd.add_argument("directory", type=Path)
    info_cmd.add_argument("--verify", action="store_true", help="also check every shard's sha256")
    args = parser.parse_args(argv)
    try:
        print(describe(TokenShards.open(args.directory, verify=args.verify)))
    except (ShardError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from jaxmodel import cli

    sys.exit(cli.run(main))
