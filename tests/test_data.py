"""Data preparation: text, JSONL and parquet documents -> token shards."""

import hashlib
import json
import random
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ROOT
from jaxmodel.documents import iter_documents
from jaxmodel.shards import INDEX_FILE, ShardError
from test_shards import joined, split_tokens, story


def test_cli_prepare_text_jsonl_and_parquet(tmp_path):
    from jaxmodel import tokenizer as tk

    rng = random.Random(0)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("<|endoftext|>".join(story(rng) for _ in range(300)), encoding="utf-8", newline="")
    vocab = tk.train([corpus], vocab_size=300, progress=False)
    tk.save(vocab, tmp_path / "tok")
    extra = tmp_path / "more.jsonl"
    extra.write_text("".join(json.dumps({"text": story(rng)}) + "\n" for _ in range(5)))
    table = tmp_path / "more.parquet"
    pq.write_table(pa.table({"text": [story(rng) for _ in range(7)], "id": list(range(7))}), table, row_group_size=3)

    out = tmp_path / "shards"
    cli = [sys.executable, "-m", "jaxmodel.data", "prepare", "--no-progress"]
    run = subprocess.run(
        [*cli, "--tokenizer", str(tmp_path / "tok"), "--input", str(corpus), str(extra), str(table), "--out", str(out), "--val-tokens", "500", "--shard-tokens", "4096"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    index = json.loads((out / INDEX_FILE).read_text())
    assert index["vocab_size"] == 300 and index["eos_id"] == vocab.eos_id
    assert index["tokenizer_sha256"] == hashlib.sha256((tmp_path / "tok" / tk.RANKS_FILE).read_bytes()).hexdigest()

    enc = tk.encoding(vocab)
    docs = [enc.encode_ordinary(d) for d in iter_documents([corpus, extra, table])]
    assert len(docs) == 312
    stream = np.concatenate([split_tokens(out, "val"), split_tokens(out, "train")])
    np.testing.assert_array_equal(stream, joined(docs, vocab.eos_id))
    # text -> shards -> text: cutting the stream at the end-of-text ids and decoding gives the documents back
    pieces = np.split(stream, np.flatnonzero(stream == vocab.eos_id) + 1)[:-1]
    assert [enc.decode(p[:-1].tolist()) for p in pieces] == list(iter_documents([corpus, extra, table]))
    assert 500 <= split_tokens(out, "val").size < 500 + max(map(len, docs)) + 1

    bad = subprocess.run([*cli, "--tokenizer", str(tmp_path / "tok"), "--input", str(tmp_path / "x.txt"), "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and "x.txt: no such file or directory" in bad.stderr and "Traceback" not in bad.stderr


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    """A small tokenizer and a 250-document text corpus it was trained on."""
    from jaxmodel import tokenizer as tk

    root = tmp_path_factory.mktemp("tok")
    rng = random.Random(1)
    corpus = root / "corpus.txt"
    corpus.write_text("<|endoftext|>".join(story(rng) for _ in range(250)), encoding="utf-8", newline="")
    tk.save(tk.train([corpus], vocab_size=300, progress=False), root / "tok")
    return root / "tok", corpus


def prepare_cli(*args):
    cli = [sys.executable, "-m", "jaxmodel.data", "prepare", "--no-progress"]
    return subprocess.run([*cli, *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def test_cli_holds_out_one_percent_by_default_and_nothing_with_no_val(tmp_path, tok):
    from jaxmodel import tokenizer as tk

    tokenizer, corpus = tok
    run = prepare_cli("--tokenizer", tokenizer, "--input", corpus, "--out", tmp_path / "a")
    assert run.returncode == 0, run.stderr
    enc = tk.load_encoding(tokenizer)
    docs = [enc.encode_ordinary(d) for d in iter_documents([corpus])]
    eos = tk.load(tokenizer).eos_id
    np.testing.assert_array_equal(split_tokens(tmp_path / "a", "val"), joined([docs[0], docs[100], docs[200]], eos))
    val_tokens = sum(len(docs[k]) + 1 for k in (0, 100, 200))
    assert f"val: {val_tokens:,} tokens in 1 shard, 3 documents" in run.stdout
    assert f"held out 3 of 250 documents ({val_tokens:,} tokens) for validation" in run.stdout

    run = prepare_cli("--tokenizer", tokenizer, "--input", corpus, "--out", tmp_path / "b", "--no-val")
    assert run.returncode == 0, run.stderr
    assert [s["split"] for s in json.loads((tmp_path / "b" / INDEX_FILE).read_text())["shards"]] == ["train"]
    assert "held out nothing for validation" in run.stdout
    run = prepare_cli("--tokenizer", tokenizer, "--input", corpus, "--out", tmp_path / "c", "--val-fraction", "0.1", "--val-max-tokens", "100")
    assert run.returncode == 0, run.stderr
    held = json.loads((tmp_path / "c" / INDEX_FILE).read_text())["documents"]["val"]
    assert 0 < split_tokens(tmp_path / "c", "val").size <= 100 and 0 < held < 25


def test_prepare_api_val_choices(tmp_path, tok):
    from jaxmodel.data import prepare

    tokenizer, corpus = tok
    assert prepare([corpus], tokenizer, tmp_path / "a", progress=False).documents == {"train": 247, "val": 3}
    assert prepare([corpus], tokenizer, tmp_path / "b", val_fraction=0, progress=False).documents == {"train": 250, "val": 0}
    first = prepare([corpus], tokenizer, tmp_path / "c", val_tokens=1, progress=False)  # the first documents instead
    assert first.documents == {"train": 249, "val": 1}


def test_cli_refuses_to_overwrite_unless_told_and_then_leaves_nothing_stale(tmp_path, tok):
    tokenizer, corpus = tok
    out = tmp_path / "shards"
    out.mkdir()  # an empty directory is fine
    (out / "README").write_text("not ours")
    first = prepare_cli("--tokenizer", tokenizer, "--input", corpus, "--out", out, "--shard-tokens", "1000")
    assert first.returncode == 0, first.stderr
    assert len(list(out.glob("train-*.bin"))) > 3
    again = prepare_cli("--tokenizer", tokenizer, "--input", corpus, "--out", out)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr == f"error: {out}: already holds shards (index.json, ...); pass --overwrite to replace them\n"
    (out / INDEX_FILE).unlink()  # shard files alone (an interrupted prepare) count too
    assert prepare_cli("--tokenizer", tokenizer, "--input", corpus, "--out", out).returncode == 1
    forced = prepare_cli("--tokenizer", tokenizer, "--input", corpus, "--out", out, "--overwrite")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README", "index.json", "train-00000.bin", "val-00000.bin"]


def test_cli_reads_directories_and_explains_wrong_paths(tmp_path, tok):
    tokenizer, corpus = tok
    data = tmp_path / "data"
    (data / "more").mkdir(parents=True)
    (data / "a.txt").write_text(corpus.read_text(encoding="utf-8"), encoding="utf-8", newline="")
    pq.write_table(pa.table({"text": ["a parquet story", "another one"]}), data / "more" / "b.parquet")
    run = prepare_cli("--tokenizer", tokenizer, "--input", data, "--out", tmp_path / "s")
    assert run.returncode == 0, run.stderr
    assert "held out 3 of 252 documents" in run.stdout
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.jsonl").write_text("[1]\n")
    for args, message in [
        (("--tokenizer", tokenizer / "tokenizer.model", "--input", corpus, "--out", tmp_path / "t"),
         "tokenizer.model: a file, not a tokenizer directory: pass the directory that holds tokenizer.model and tokenizer.json"),
        (("--tokenizer", tokenizer, "--input", tmp_path / "empty", "--out", tmp_path / "t"),
         "empty: a directory with no .txt, .jsonl or .parquet files in it"),
        (("--tokenizer", tokenizer, "--input", corpus, "--out", corpus), "corpus.txt: a file, not a directory: --out names the shard directory"),
        (("--tokenizer", tokenizer, "--input", tmp_path / "broken.jsonl", "--out", tmp_path / "t"), "broken.jsonl:1: expected a JSON object"),
    ]:
        bad = prepare_cli(*args)
        assert bad.returncode == 1 and bad.stderr.startswith("error: ") and message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
