"""Token shards (spec/data.md): the round trip, the reader's checks, deterministic batches, the CLI."""

import hashlib
import json
import random
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import ROOT
from jaxmodel.shards import INDEX_FILE, ShardError, TokenShards, write_shards

VOCAB, EOS = 300, 299


def documents(n=50, seed=0, vocab=VOCAB - 1):
    """n documents of random ids below `vocab` (so below eos), lengths 0..40."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=rng.integers(0, 41)) for _ in range(n)]


def joined(docs, eos=EOS):
    """The spec's stream: every document followed by the end-of-text id."""
    return np.concatenate([np.append(np.asarray(d, np.int64), eos) for d in docs])


def split_tokens(directory, split):
    index = json.loads((directory / INDEX_FILE).read_text())
    dtype = {"uint16": "<u2", "uint32": "<u4"}[index["dtype"]]
    files = [s["file"] for s in index["shards"] if s["split"] == split]
    return np.concatenate([np.fromfile(directory / f, dtype) for f in files]).astype(np.int64)


@pytest.fixture
def written(tmp_path):
    docs = documents()
    write_shards(tmp_path / "d", docs, VOCAB, EOS, shard_tokens=100)
    return tmp_path / "d", docs


# --- writing ---------------------------------------------------------------------------------


def test_round_trip(written):
    directory, docs = written
    index = json.loads((directory / INDEX_FILE).read_text())
    assert (index["format"], index["version"], index["dtype"], index["vocab_size"], index["eos_id"]) == ("gollm-tokens", 1, "uint16", VOCAB, EOS)
    assert index["tokenizer_sha256"] is None
    np.testing.assert_array_equal(split_tokens(directory, "train"), joined(docs))
    data = TokenShards.open(directory, vocab_size=VOCAB, verify=True)
    assert data.n_tokens() == joined(docs).size and data.eos_id == EOS
    assert not (directory / (INDEX_FILE + ".tmp")).exists()


def test_shards_are_cut_at_shard_tokens(written):
    directory, docs = written
    shards = json.loads((directory / INDEX_FILE).read_text())["shards"]
    total = joined(docs).size
    assert [s["file"] for s in shards] == [f"train-{k:05d}.bin" for k in range(len(shards))]
    assert [s["tokens"] for s in shards] == [100] * (total // 100) + ([total % 100] if total % 100 else [])
    assert all((directory / s["file"]).stat().st_size == 2 * s["tokens"] for s in shards)


def test_uint32_for_large_vocabularies(tmp_path):
    docs = [[70000, 1, 65536], [5]]
    write_shards(tmp_path, docs, vocab_size=70001, eos_id=0)
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    assert index["dtype"] == "uint32"
    assert (tmp_path / "train-00000.bin").read_bytes() == np.array([70000, 1, 65536, 0, 5, 0], "<u4").tobytes()
    write_shards(tmp_path / "edge", [[65535]], vocab_size=65536, eos_id=0)
    assert json.loads((tmp_path / "edge" / INDEX_FILE).read_text())["dtype"] == "uint16"


def test_val_split_takes_whole_documents_first(tmp_path):
    docs = [[1] * 10, [2] * 10, [3] * 10, [4] * 10]
    write_shards(tmp_path, docs, VOCAB, EOS, val_tokens=12, shard_tokens=7)
    # 12 tokens asked: the first document (11 with its eos) is not enough, so two go to val.
    np.testing.assert_array_equal(split_tokens(tmp_path, "val"), joined(docs[:2]))
    np.testing.assert_array_equal(split_tokens(tmp_path, "train"), joined(docs[2:]))
    data = TokenShards.open(tmp_path)
    assert (data.n_tokens("val"), data.n_tokens("train")) == (22, 22)
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    assert [s["split"] for s in index["shards"]] == ["train"] * 4 + ["val"] * 4


def numbered(n):
    """n documents; document k is [k % 290] * (k % 3 + 1), so a split's stream tells which documents it holds."""
    return [[k % 290] * (k % 3 + 1) for k in range(n)]


def test_val_fraction_spreads_whole_documents_through_the_stream(tmp_path):
    docs = numbered(250)
    write_shards(tmp_path, docs, VOCAB, EOS, shard_tokens=64, val_fraction=0.01)
    # 1 % = 1/100 exactly: documents 0, 100 and 200 (ceil(250 / 100) = 3), the rest to train in order.
    np.testing.assert_array_equal(split_tokens(tmp_path, "val"), joined([docs[0], docs[100], docs[200]]))
    np.testing.assert_array_equal(split_tokens(tmp_path, "train"), joined([d for k, d in enumerate(docs) if k % 100]))
    assert json.loads((tmp_path / INDEX_FILE).read_text())["documents"] == {"train": 247, "val": 3}
    assert TokenShards.open(tmp_path).documents == {"train": 247, "val": 3}


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 400), st.sampled_from([0.001, 0.01, 0.05, 0.1, 0.25, 1 / 3, 0.5]))
def test_val_fraction_holds_out_ceil_of_n_times_f(tmp_path_factory, n, fraction):
    from fractions import Fraction
    from math import ceil

    directory = tmp_path_factory.mktemp("f")
    write_shards(directory, numbered(n), VOCAB, EOS, val_fraction=fraction)
    held = json.loads((directory / INDEX_FILE).read_text())["documents"]["val"]
    assert held == ceil(n * Fraction(repr(fraction))) >= 1  # at least one, however small the corpus


def test_val_fraction_cap_and_tiny_corpora(tmp_path):
    docs = numbered(1000)  # every tenth document to val: 0, 10, 20, ... of 1, 2 or 3 ids (+ eos)
    write_shards(tmp_path / "cap", docs, VOCAB, EOS, val_fraction=0.1, val_max_tokens=10)
    # documents 0 (2 tokens), 10 (3), 20 (4) fill 9 tokens; 30 (2) would make 11: val stops there.
    np.testing.assert_array_equal(split_tokens(tmp_path / "cap", "val"), joined([docs[0], docs[10], docs[20]]))
    assert TokenShards.open(tmp_path / "cap").documents == {"train": 997, "val": 3}
    # Two documents: the first is held out. One: it trains, and there is no val split.
    write_shards(tmp_path / "two", [[1], [2]], VOCAB, EOS, val_fraction=0.01)
    np.testing.assert_array_equal(split_tokens(tmp_path / "two", "val"), [1, EOS])
    write_shards(tmp_path / "one", [[1]], VOCAB, EOS, val_fraction=0.01)
    assert [s["split"] for s in json.loads((tmp_path / "one" / INDEX_FILE).read_text())["shards"]] == ["train"]
    write_shards(tmp_path / "none", docs, VOCAB, EOS, val_fraction=0.0)
    assert TokenShards.open(tmp_path / "none").documents == {"train": 1000, "val": 0}


def test_rewriting_removes_stale_files(tmp_path):
    write_shards(tmp_path, numbered(300), VOCAB, EOS, shard_tokens=50, val_fraction=0.1)
    (tmp_path / "notes.txt").write_text("mine")
    assert (tmp_path / "train-00005.bin").exists()
    write_shards(tmp_path, numbered(10), VOCAB, EOS, shard_tokens=50)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "notes.txt", "train-00000.bin"]


def test_writer_errors(tmp_path):
    with pytest.raises(ShardError, match="document 1: token id 300 is outside 0..299"):
        write_shards(tmp_path, [[1], [300]], VOCAB, EOS)
    with pytest.raises(ShardError, match="document 0: token id -1"):
        write_shards(tmp_path, [[-1]], VOCAB, EOS)
    with pytest.raises(ShardError, match="document 0: expected a 1-D sequence of integer"):
        write_shards(tmp_path, [[1.5]], VOCAB, EOS)
    with pytest.raises(ShardError, match="eos_id must be a token id in 0..299, found 300"):
        write_shards(tmp_path, [[1]], VOCAB, 300)
    with pytest.raises(ShardError, match="no train tokens"):
        write_shards(tmp_path, [[1, 2]], VOCAB, EOS, val_tokens=1)
    with pytest.raises(ShardError, match=r"no train tokens: all 2 documents went to the val split \(val_fraction=0.75\)"):
        write_shards(tmp_path, [[1], [2]], VOCAB, EOS, val_fraction=0.75)
    with pytest.raises(ShardError, match="no train tokens: no documents were given"):
        write_shards(tmp_path, [], VOCAB, EOS)
    assert not (tmp_path / INDEX_FILE).exists()  # a failed write leaves no index to open
    for fraction in (1.0, -0.1, True, "0.1"):
        with pytest.raises(ShardError, match=r"val_fraction must be a number in \[0, 1\)"):
            write_shards(tmp_path, [[1]], VOCAB, EOS, val_fraction=fraction)
    with pytest.raises(ShardError, match="give val_tokens or val_fraction, not both"):
        write_shards(tmp_path, [[1]], VOCAB, EOS, val_tokens=5, val_fraction=0.1)
    with pytest.raises(ShardError, match="val_max_tokens must be an integer >= 0 or None, found -1"):
        write_shards(tmp_path, [[1]], VOCAB, EOS, val_fraction=0.1, val_max_tokens=-1)


# --- batches ---------------------------------------------------------------------------------


def test_batch_is_a_pure_function_of_seed_and_step(written):
    directory, _ = written
    a, b = TokenShards.open(directory), TokenShards.open(directory)
    first = a.batch(3, 8, 16, seed=7)
    assert first.shape == (8, 17) and first.dtype == np.int32
    np.testing.assert_array_equal(first, b.batch(3, 8, 16, seed=7))  # a fresh reader: no state
    assert not np.array_equal(first, a.batch(4, 8, 16, seed=7))
    assert not np.array_equal(first, a.batch(3, 8, 16, seed=8))


def test_windows_are_consecutive_tokens_of_one_shard(written):
    directory, _ = written
    data = TokenShards.open(directory)
    stream = split_tokens(directory, "train")
    n_windows = sum((n - 1) // 16 for n in [100] * (stream.size // 100) + ([stream.size % 100] if stream.size % 100 else []))
    seen = []
    for step in range(-(-n_windows // 8)):  # one epoch: every window once
        for row in data.batch(step, 8, 16, seed=0):
            # Shards are 100 tokens long: a window starts at a multiple of 16 inside one shard.
            hits = [s for s in range(stream.size - 16) if np.array_equal(stream[s : s + 17], row)
                    and s % 100 % 16 == 0 and s // 100 == (s + 16) // 100]
            assert hits, row
            seen.append(hits[0])
    assert len(set(seen[:n_windows])) == n_windows  # an epoch is a permutation of all windows


def test_processes_read_disjoint_rows_of_the_global_batch(written):
    directory, _ = written
    data = TokenShards.open(directory)
    whole = data.batch(5, 12, 10, seed=1)
    parts = [data.batch(5, 12, 10, seed=1, process_index=p, process_count=3) for p in range(3)]
    assert all(p.shape == (4, 11) for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_val_batches_differ_from_train(tmp_path):
    docs = documents(20)
    write_shards(tmp_path, docs + docs, VOCAB, EOS, val_tokens=1)  # val and train hold the same ids
    data = TokenShards.open(tmp_path)
    np.testing.assert_array_equal(data.batch(0, 4, 8, 0, split="val"), data.batch(0, 4, 8, 0, split="val"))
    assert not np.array_equal(data.batch(0, 4, 8, 0, split="val"), data.batch(0, 4, 8, 0))


def test_batch_errors(tmp_path, written):
    directory, _ = written
    data = TokenShards.open(directory)
    with pytest.raises(ShardError, match="batch_size 10 must be divisible by process_count 4"):
        data.batch(0, 10, 8, 0, process_count=4)
    with pytest.raises(ShardError, match="process_index must be in 0..1"):
        data.batch(0, 4, 8, 0, process_index=2, process_count=2)
    with pytest.raises(ShardError, match="too short for one window of seq_len \\+ 1 = 101 tokens \\(its longest shard has 100\\)"):
        data.batch(0, 4, 100, 0)
    assert data.batch(0, 4, 99, 0).shape == (4, 100)  # a 100-token shard holds exactly one window
    with pytest.raises(ShardError, match="no val shards"):
        data.batch(0, 4, 8, 0, split="val")
    with pytest.raises(ShardError, match="split must be one of train, val, found 'test'"):
        data.n_tokens("test")
    with pytest.raises(ShardError, match="step must be an integer >= 0, found -1"):
        data.batch(-1, 4, 8, 0)


# --- the reader's checks -----------------------------------------------------------------------


def edit_index(directory, change):
    path = directory / INDEX_FILE
    index = json.loads(path.read_text())
    change(index)
    path.write_text(json.dumps(index))


def test_open_errors(tmp_path, written):
    directory, _ = written
    index = directory / INDEX_FILE
    good = index.read_text()

    def fails(match, **kwargs):
        with pytest.raises(ShardError, match=match):
            TokenShards.open(directory, **kwargs)
        index.write_text(good)

    with pytest.raises(ShardError, match="nowhere: no such directory"):
        TokenShards.open(tmp_path / "nowhere")
    with pytest.raises(ShardError, match="index.json: no such file"):
        TokenShards.open(tmp_path)
    index.write_text("{not json")
    fails("index.json: not valid JSON")
    index.write_text("[]")
    fails("index.json: expected a JSON object, found list")
    edit_index(directory, lambda i: i.update(format="other"))
    fails("format is 'other', expected 'gollm-tokens'")
    edit_index(directory, lambda i: i.update(version=2))
    fails("version 2 is not supported")
    edit_index(directory, lambda i: i.pop("eos_id"))
    fails("index.json: missing key 'eos_id'")
    edit_index(directory, lambda i: i["shards"][0].pop("sha256"))
    fails(r"index.json: shards\[0\]: missing key 'sha256'")
    edit_index(directory, lambda i: i.update(dtype="uint32"))
    fails("dtype is 'uint32', expected 'uint16' for vocab_size 300")
    edit_index(directory, lambda i: i.update(documents={"train": -1, "val": 0}))
    fails("documents must be an object of train and val counts >= 0")
    edit_index(directory, lambda i: i.pop("documents"))
    assert TokenShards.open(directory).documents is None  # optional: other writers may not count documents
    edit_index(directory, lambda i: i["shards"][0].update(file="../x.bin"))
    fails("file must be a plain file name")
    edit_index(directory, lambda i: i.update(shards=[s for s in i["shards"] if s["split"] != "train"]))
    fails("empty data")
    fails("the shards were made with a vocabulary of 300 tokens, the model has 512", vocab_size=512)
    edit_index(directory, lambda i: i["shards"][1].update(file="train-09999.bin"))
    fails("train-09999.bin: listed in index.json but missing")

    shard = directory / "train-00001.bin"
    original = shard.read_bytes()
    shard.write_bytes(original[:-3])
    fails("train-00001.bin: 197 bytes, expected 100 tokens x 2 bytes = 200 \\(truncated or corrupt\\)")
    shard.write_bytes(original[:20] + np.array([1000], "<u2").tobytes() + original[22:])
    fails("train-00001.bin: token id 1000 at position 10 is not below vocab_size 300")
    shard.write_bytes(original[:20] + np.array([7], "<u2").tobytes() + original[22:])
    TokenShards.open(directory)  # the sha256 is checked only when asked
    fails("train-00001.bin: sha256 is [0-9a-f]{64}, index.json says", verify=True)


def test_empty_shard_files_are_allowed(tmp_path, written):
    directory, docs = written
    (directory / "val-00000.bin").write_bytes(b"")
    entry = {"file": "val-00000.bin", "split": "val", "tokens": 0, "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
    edit_index(directory, lambda i: i["shards"].append(entry))
    data = TokenShards.open(directory, verify=True)
    assert data.n_tokens("val") == 0
    with pytest.raises(ShardError, match="the val split is too short .* longest shard has 0"):
        data.batch(0, 2, 4, 0, split="val")


# --- the interim CLI -------------------------------------------------------------------------

WORDS = "the a little robot turtle river tree rain sun moon garden friend happy sad big ran saw said".split()


def story(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))).capitalize() + f". It was {rng.randint(0, 999)}!\r\n"


def test_cli_info(tmp_path):
    out = tmp_path / "shards"
    write_shards(out, [[1, 2, 3]] * 20, vocab_size=300, eos_id=299)
    cli = [sys.executable, "-m", "jaxmodel.shards"]
    info = subprocess.run([*cli, "info", str(out), "--verify"], capture_output=True, text=True, cwd=ROOT)
    assert info.returncode == 0 and "train: 80 tokens in 1 shard, 20 documents\nval: 0 tokens in 0 shards, 0 documents" in info.stdout, info.stdout + info.stderr
    bad = subprocess.run([*cli, "info", str(tmp_path / "none")], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "none: no such directory" in bad.stderr
    assert "Traceback" not in bad.stderr
