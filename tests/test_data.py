"""Data preparation: text, JSONL and parquet documents -> token shards."""

import hashlib
import json
import random
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from conftest import ROOT
from jaxmodel.documents import iter_documents
from jaxmodel.shards import INDEX_FILE
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
