"""Input documents: the three formats, directories as inputs, the content hash."""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaxmodel.documents import DocumentError, expand_inputs, inputs_sha256, iter_documents


def test_documents_split_on_the_separator_keeping_line_endings(tmp_path):
    text = tmp_path / "a.txt"
    text.write_bytes(b"one\r\ntwo<|endoftext|>three\n<|endoftext|><|endoftext|>\nfour\n")
    lines = tmp_path / "b.jsonl"
    lines.write_text('{"text": "five\\r\\n"}\n\n{"text": ""}\n{"text": "six"}\n')
    table = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": ["seven", None, "", "eight"]}), table, row_group_size=2)
    # Empty documents (an empty jsonl text, an empty or null parquet row, nothing between separators) are skipped.
    assert list(iter_documents([text, lines, table])) == ["one\r\ntwo", "three\n", "\nfour\n", "five\r\n", "six", "seven", "eight"]


def test_the_same_documents_from_every_format(tmp_path):
    docs = ["a story\r\nwith lines\n", "{not json} <|begin_of_text|>", "ünïcödé 🙂"]
    (tmp_path / "d.txt").write_text("<|endoftext|>".join(docs), encoding="utf-8", newline="")
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    pq.write_table(pa.table({"id": [1, 2, 3], "text": docs}), tmp_path / "d.parquet", row_group_size=1)
    for name in ("d.txt", "d.jsonl", "d.parquet"):
        assert list(iter_documents([tmp_path / name])) == docs, name


@pytest.mark.parametrize("name", ["d.txt", "d.jsonl", "d.parquet"])
def test_progress_adds_up_to_the_file_size(tmp_path, name):
    docs = [f"document {k}\n" * (k % 5 + 1) for k in range(2500)]  # parquet: more rows than one batch
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("<|endoftext|>".join(docs))
    elif name.endswith(".jsonl"):
        path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    else:
        pq.write_table(pa.table({"text": docs}), path, row_group_size=700)
    steps = []
    assert list(iter_documents([path], steps.append)) == docs
    assert sum(steps) == path.stat().st_size and len(steps) > 1 and min(steps) >= 0


def test_format_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"title": "x"}\n')
    with pytest.raises(DocumentError, match=r'bad\.jsonl:2: expected a JSON object with a "text" string'):
        list(iter_documents([tmp_path / "bad.jsonl"]))
    (tmp_path / "num.jsonl").write_text('{"text": 5}\n')
    with pytest.raises(DocumentError, match=r'num\.jsonl:1: "text" must be a string, found int'):
        list(iter_documents([tmp_path / "num.jsonl"]))
    (tmp_path / "latin1.txt").write_bytes(b"ok\ncaf\xe9\n")
    with pytest.raises(DocumentError, match=r"latin1\.txt:2: not valid UTF-8"):
        list(iter_documents([tmp_path / "latin1.txt"]))
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "no_text.parquet")
    with pytest.raises(DocumentError, match=r"no_text\.parquet: no 'text' column \(columns: body\)"):
        list(iter_documents([tmp_path / "no_text.parquet"]))
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(DocumentError, match=r"junk\.parquet: not a readable parquet file"):
        list(iter_documents([tmp_path / "junk.parquet"]))
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "ints.parquet")
    with pytest.raises(DocumentError, match="must hold strings, found int"):
        list(iter_documents([tmp_path / "ints.parquet"]))


def make_tree(root):
    for name in ["b/2.jsonl", "b/10.txt", "a.parquet", "c/d/e.txt", "notes.md", ".hidden/x.txt", "b/.y.txt"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    return root


def test_directories_expand_to_their_documents_sorted(tmp_path):
    root = make_tree(tmp_path / "data")
    names = lambda paths: [p.relative_to(root).as_posix() for p in paths]  # noqa: E731
    # Recursive, sorted by relative path, known suffixes only, hidden files and directories left out.
    assert names(expand_inputs([root])) == ["a.parquet", "b/10.txt", "b/2.jsonl", "c/d/e.txt"]
    # A file named explicitly is taken whatever its suffix (as plain text); each file comes once, first mention wins.
    assert names(expand_inputs([root / "notes.md", root / "b", root / "b/2.jsonl", root])) == [
        "notes.md", "b/10.txt", "b/2.jsonl", "a.parquet", "c/d/e.txt"]
    assert list(iter_documents(expand_inputs([root / "notes.md"]))) == ["notes.md"]


def test_input_errors(tmp_path):
    with pytest.raises(DocumentError, match=r"missing\.txt: no such file or directory"):
        expand_inputs([tmp_path / "missing.txt"])
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.md").write_text("x")
    with pytest.raises(DocumentError, match=r"empty: a directory with no \.txt, \.jsonl or \.parquet files in it"):
        expand_inputs([tmp_path / "empty"])


def test_inputs_sha256_follows_content_names_and_order_not_times(tmp_path):
    root = make_tree(tmp_path / "data")
    first = inputs_sha256([root])
    assert len(first) == 64 and first == inputs_sha256([str(root)])
    os.utime(root / "b/10.txt", (0, 0))  # a touched file with the same bytes is the same input
    assert inputs_sha256([root]) == first
    (root / "b/10.txt").write_text("b/10.txt!")
    changed = inputs_sha256([root])
    assert changed != first
    (root / "b/10.txt").write_text("b/10.txt")
    assert inputs_sha256([root]) == first
    (root / "b/10.txt").rename(root / "b/11.txt")
    renamed = inputs_sha256([root])
    assert renamed != first
    # The names are relative to the directory given, so a moved copy hashes the same.
    os.rename(root, tmp_path / "moved")
    assert inputs_sha256([tmp_path / "moved"]) == renamed
    a, b = tmp_path / "moved" / "a.parquet", tmp_path / "moved" / "c" / "d" / "e.txt"
    assert inputs_sha256([a, b]) != inputs_sha256([b, a])
    # Bytes cannot slide from one file's end to the next file's start unnoticed.
    (tmp_path / "x1.txt").write_text("ab")
    (tmp_path / "x2.txt").write_text("c")
    before = inputs_sha256([tmp_path / "x1.txt", tmp_path / "x2.txt"])
    (tmp_path / "x1.txt").write_text("a")
    (tmp_path / "x2.txt").write_text("bc")
    assert inputs_sha256([tmp_path / "x1.txt", tmp_path / "x2.txt"]) != before
