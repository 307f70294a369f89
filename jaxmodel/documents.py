"""Input documents: the one reader of raw text for `tokenizer train` and `data prepare`.

An input is a file or a directory (`expand_inputs`). A file's suffix says its format:
- `.jsonl`: one JSON object per line, its "text" string is a document (blank lines skipped);
- `.parquet`: one document per row of its "text" column, read a batch at a time;
- `.txt`, or any other suffix when the file is named explicitly: UTF-8 text in which
  TinyStories' `<|endoftext|>` separates documents. The separator is dropped, line
  endings are kept as they are, and a file's end ends its last document.
Empty documents are skipped in every format. Inputs are streamed a document at a time,
never a file at a time (but a document is held whole: a text file without separators
is one document).

    paths = expand_inputs([Path("stories/"), Path("extra.jsonl")])
    for text in iter_documents(paths): ...
    inputs_sha256(paths)   # names the raw input, to notice when it changed
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

DOCUMENT_SEPARATOR = "<|endoftext|>"  # TinyStories-style document boundary in plain text
SUFFIXES = (".txt", ".jsonl", ".parquet")  # what a directory input expands to
_HASH_CHUNK = 1 << 24  # bytes hashed at a time, so hashing never reads a file whole
_PARQUET_BATCH_ROWS = 1024  # rows decoded at a time: little memory, and a progress step per batch


class DocumentError(ValueError):
    """An input that is missing or not in its format; the message names the file (and line)."""


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """The input files that `paths` name, in order, each once.

    A file is taken as it is, whatever its suffix. A directory stands for the .txt,
    .jsonl and .parquet files under it, recursively, sorted by relative path (hidden
    files and directories, whose names start with ".", are left out); a directory
    with none is an error, and so is a path that does not exist.
    """
    return [path for path, _ in _expand(paths)]


def _expand(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(file, name) pairs: the name is the file's path relative to the directory it came
    from, or its file name if it was named explicitly (so moving the data keeps names)."""
    found, seen = [], set()
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(
                (p.relative_to(path).as_posix(), p)
                for p in path.rglob("*")
                if p.suffix in SUFFIXES and p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise DocumentError(f"{path}: a directory with no {', '.join(SUFFIXES[:-1])} or {SUFFIXES[-1]} files in it")
            pairs = [(p, name) for name, p in files]
        elif path.is_file():
            pairs = [(path, path.name)]
        else:
            raise DocumentError(f"{path}: no such file or directory")
        for file, name in pairs:
            if (key := file.resolve()) not in seen:
                seen.add(key)
                found.append((file, name))
    return found


def inputs_sha256(paths: Iterable[str | Path]) -> str:
    """sha256 over the expanded inputs' names and bytes, in order; file times play no part.

    Each file contributes its name (see `_expand`), its size and its bytes, read in
    chunks, so the hash changes when any file's content, name or order changes.
    """
    digest = hashlib.sha256()
    for path, name in _expand(paths):
        digest.update(f"{name}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def iter_documents(paths: Iterable[Path], on_bytes: Callable[[int], object] | None = None) -> Iterator[str]:
    """Streams the non-empty documents of each file (see the module docstring for the formats).

    `on_bytes(n)`, if given, is told how many bytes of the files each step read, adding
    up to the files' sizes (for a progress bar).
    """
    for path in map(Path, paths):
        if path.suffix == ".jsonl":
            yield from _jsonl_documents(path, on_bytes)
        elif path.suffix == ".parquet":
            yield from _parquet_documents(path, on_bytes)
        else:
            yield from _text_documents(path, on_bytes)


def iter_lines(path: Path, on_bytes: Callable[[int], object] | None = None) -> Iterator[str]:
    """The lines of a UTF-8 file with their endings (`\\r\\n` stays `\\r\\n`), one at a time.
    Invalid UTF-8 is an error naming the file and line."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if on_bytes is not None:
                on_bytes(len(raw))
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DocumentError(f"{path}:{number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None


def json_lines(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, value) for each non-blank line of a JSON Lines file, the one reader of
    them. Lines end at "\\n" only, as JSON Lines says: U+2028 and other Unicode line
    breaks inside a string are text. A line that is not JSON is an error naming it."""
    for number, line in enumerate(iter_lines(path), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            raise DocumentError(f"{path}:{number}: not valid JSON ({err.msg})") from None


def _text_documents(path: Path, on_bytes) -> Iterator[str]:
    parts: list[str] = []
    for line in iter_lines(path, on_bytes):
        *finished, rest = line.split(DOCUMENT_SEPARATOR)
        for piece in finished:
            parts.append(piece)
            if document := "".join(parts):
                yield document
            parts = []
        parts.append(rest)
    if document := "".join(parts):
        yield document


def _jsonl_documents(path: Path, on_bytes) -> Iterator[str]:
    for number, line in enumerate(iter_lines(path, on_bytes), start=1):
        if not line.strip():
            continue
        try:
            text = json.loads(line)["text"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DocumentError(f'{path}:{number}: expected a JSON object with a "text" string') from None
        if not isinstance(text, str):
            raise DocumentError(f'{path}:{number}: "text" must be a string, found {type(text).__name__}')
        if text:
            yield text


def _parquet_documents(path: Path, on_bytes) -> Iterator[str]:
    import pyarrow.parquet as pq  # imported here: text inputs must not need pyarrow

    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises its own error types for bad files
        raise DocumentError(f"{path}: not a readable parquet file ({err})") from None
    names = file.schema_arrow.names
    if "text" not in names:
        raise DocumentError(f"{path}: no 'text' column (columns: {', '.join(names)})")
    # Compressed bytes cannot be told per row: progress is the file's size shared out by rows.
    size, rows, reported, done = path.stat().st_size, file.metadata.num_rows, 0, 0
    for batch in file.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=["text"]):
        for text in batch.column(0).to_pylist():
            if text is None:
                continue
            if not isinstance(text, str):
                raise DocumentError(f"{path}: the 'text' column must hold strings, found {type(text).__name__}")
            if text:
                yield text
        done += batch.num_rows
        if on_bytes is not None:
            on_bytes(size * done // max(rows, 1) - reported)
            reported = size * done // max(rows, 1)
    if on_bytes is not None and reported < size:
        on_bytes(size - reported)
