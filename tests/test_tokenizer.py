"""The vocabulary's GGUF form: byte-to-unicode table, merges, the exact round trip."""

import pytest
from hypothesis import given, settings, strategies as st

from jaxmodel.tokenizer import (
    TOKEN_TYPE_CONTROL,
    TokenizerError,
    Vocabulary,
    bpe,
    bytes_to_unicode,
    placeholder_vocabulary,
    special_token_names,
    token_from_unicode,
    token_to_unicode,
    train_tiny_bpe,
    vocab_from_gguf,
    vocab_to_gguf,
)


def test_byte_table_is_a_printable_bijection():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(ch.isprintable() and not ch.isspace() for ch in table.values())
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"


@given(st.binary(max_size=64))
def test_token_strings_round_trip(data):
    assert token_from_unicode(token_to_unicode(data)) == data


def test_placeholder_vocabulary_layout():
    vocab = placeholder_vocabulary(320, n_special=8)
    assert vocab.size == 320
    assert all(vocab.mergeable_ranks[bytes([b])] == b for b in range(256))
    assert sorted(vocab.mergeable_ranks.values()) == list(range(312))
    assert list(vocab.special_tokens) == special_token_names(8)
    assert (vocab.bos_id, vocab.eos_id) == (312, 313)


def test_gguf_round_trip_is_exact():
    vocab = placeholder_vocabulary(320)
    tokens, types, merges = vocab_to_gguf(vocab)
    assert len(tokens) == len(types) == 320 and len(merges) == 320 - 256 - 8
    assert types[312:] == [TOKEN_TYPE_CONTROL] * 8 and tokens[312] == "<|begin_of_text|>"
    assert vocab_from_gguf(tokens, types) == vocab


def test_merges_rebuild_every_token():
    # A gpt2-style reader builds tokens from merges in order; each must be the token of the next rank.
    vocab = placeholder_vocabulary(320)
    tokens, _, merges = vocab_to_gguf(vocab)
    for rank, merge in enumerate(merges, start=256):
        left, right = merge.split(" ")
        assert left + right == tokens[rank]


@given(st.text(alphabet="the robot turtle river. ", max_size=40))
def test_bpe_parts_concatenate_to_the_input(text):
    vocab = placeholder_vocabulary(320)
    parts = bpe(vocab.mergeable_ranks, text.encode())
    assert b"".join(parts) == text.encode()
    assert all(part in vocab.mergeable_ranks for part in parts)


def test_tiny_trainer_is_deterministic_and_merges_most_frequent_first():
    ranks = train_tiny_bpe(b"ab ab ab cd", 2)
    assert ranks[b"ab"] == 256  # 'ab' occurs 3 times, ' a' twice
    assert train_tiny_bpe(b"ab ab ab cd", 2) == ranks


def test_errors():
    with pytest.raises(TokenizerError, match="smaller than 256 bytes"):
        placeholder_vocabulary(200)
    with pytest.raises(TokenizerError, match="text too short"):
        train_tiny_bpe(b"ab", 5)
    with pytest.raises(TokenizerError, match="at least 5 special tokens"):
        special_token_names(3)
    with pytest.raises(TokenizerError, match="not in the byte-to-unicode table"):
        token_from_unicode("a b")
    broken = Vocabulary({**{bytes([b]): b for b in range(256)}, b"xyz": 256}, {})
    with pytest.raises(TokenizerError, match="not the merge of two"):
        vocab_to_gguf(broken)


# --- training with rustbpe, use through tiktoken ------------------------------------------

import json  # noqa: E402
import random  # noqa: E402

from jaxmodel import tokenizer as tk  # noqa: E402
from jaxmodel.documents import DocumentError, iter_documents  # noqa: E402

WORDS = "the a little robot turtle river tree rain sun moon garden friend happy sad big ran saw said".split()


def corpus(path, documents=400, seed=0, separator="\n<|endoftext|>\n"):
    """A generated corpus: sentences from a small word list, documents separated TinyStories-style."""
    rng = random.Random(seed)
    text = separator.join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))).capitalize() + f". It was {rng.randint(0, 99999)}!\r\n"
        for _ in range(documents)
    )
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tok")
    vocab = tk.train([corpus(directory / "data.txt")], vocab_size=360, progress=False)
    tk.save(vocab, directory / "tok")
    return vocab, directory / "tok"


def test_training_gives_exactly_the_vocab_size(trained):
    vocab, _ = trained
    assert vocab.size == 360 and len(vocab.special_tokens) == tk.n_special_for(360) == 8
    assert sorted([*vocab.mergeable_ranks.values(), *vocab.special_tokens.values()]) == list(range(360))
    assert all(vocab.mergeable_ranks[bytes([b])] == b for b in range(256))
    assert b" robot" in vocab.mergeable_ranks  # a frequent word became one token
    assert not any(b"<|" in token for token in vocab.mergeable_ranks), "the document separator must not be trained on"


def test_training_is_deterministic(tmp_path, trained):
    vocab, _ = trained
    again = tk.train([corpus(tmp_path / "data.txt")], vocab_size=360, progress=False)
    assert again == vocab


def test_save_load_round_trip_and_gguf_round_trip(trained):
    vocab, directory = trained
    assert tk.load(directory) == vocab
    tokens, types, _ = vocab_to_gguf(vocab)
    assert vocab_from_gguf(tokens, types) == vocab


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_tiktoken_round_trip(trained, text):
    encoding = tk.load_encoding(trained[1])
    ids = encoding.encode_ordinary(text)
    assert all(0 <= i < 352 for i in ids)  # special-token text is ordinary text
    assert encoding.decode(ids) == text


def test_split_pattern_keeps_words_with_their_space(trained):
    encoding = tk.load_encoding(trained[1])
    ids = encoding.encode_ordinary("the robot  ran\r\n12345")
    pieces = [encoding.decode_single_token_bytes(i) for i in ids]
    assert b"".join(pieces) == b"the robot  ran\r\n12345"
    assert b" robot" in pieces and b"12345" not in pieces  # digits come in groups of at most 3


def test_training_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(TokenizerError, match="training data is empty"):
        tk.train([tmp_path / "empty.txt"], 300, progress=False)
    with pytest.raises(DocumentError, match="missing.txt: no such file or directory"):
        tk.train([tmp_path / "missing.txt"], 300, progress=False)
    (tmp_path / "tiny.txt").write_text("ab ab ab")
    with pytest.raises(TokenizerError, match="too few distinct pairs: learned 2 merges, needed 36"):
        tk.train([tmp_path / "tiny.txt"], 300, progress=False)
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DocumentError, match=r"latin1\.txt:1: not valid UTF-8"):
        tk.train([tmp_path / "latin1.txt"], 300, progress=False)
    with pytest.raises(TokenizerError, match="need at least 256"):
        tk.train([tmp_path / "tiny.txt"], 200, progress=False)


def test_load_errors(tmp_path, trained):
    with pytest.raises(TokenizerError, match=r"tokenizer\.model: no such file \(a tokenizer directory holds"):
        tk.load(tmp_path)
    with pytest.raises(TokenizerError, match="nowhere: no such directory"):
        tk.load(tmp_path / "nowhere")
    with pytest.raises(TokenizerError, match=r"tokenizer\.model: a file, not a tokenizer directory: pass the directory that holds"):
        tk.load(trained[1] / tk.RANKS_FILE)
    _, directory = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / tk.RANKS_FILE).write_text((directory / tk.RANKS_FILE).read_text().replace(" 300\n", " 301\n"))
    (broken / tk.CONFIG_FILE).write_text((directory / tk.CONFIG_FILE).read_text())
    with pytest.raises(TokenizerError, match="no gaps or repeats"):
        tk.load(broken)


def test_cli_train_from_config(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    config = tmp_path / "c.yaml"
    config.write_text((ROOT / "configs" / "goldens-gqa.yaml").read_text())
    run = subprocess.run(
        [sys.executable, "-m", "jaxmodel.tokenizer", "train", "--input", str(corpus(tmp_path / "d.txt")), "--config", str(config), "--out", str(tmp_path / "t")],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "t" / tk.CONFIG_FILE).read_text())["vocab_size"] == 320
    bad = subprocess.run([sys.executable, "-m", "jaxmodel.tokenizer", "train", "--input", str(tmp_path / "none.txt"), "--vocab-size", "300", "--out", str(tmp_path / "u")], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and "none.txt: no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_tokenizer_goldens_from_the_model_file():
    # The vocabulary as an engine sees it (read back from the GGUF file) gives the golden ids.
    from conftest import GOLDENS
    from jaxmodel.gguf_io import read_arrays, read_model

    golden = read_arrays(GOLDENS / "tokenizer.gguf").metadata
    enc = tk.encoding(read_model(GOLDENS / "gqa.gguf").vocab)
    assert golden["tokenizer.ggml.tokens"] == vocab_to_gguf(read_model(GOLDENS / "mha.gguf").vocab)[0]
    assert golden["tokenizer.count"] >= 10
    for k in range(golden["tokenizer.count"]):
        text, ids = golden[f"tokenizer.{k}.text"], golden[f"tokenizer.{k}.ids"]
        got = enc.encode(text, allowed_special="all") if golden[f"tokenizer.{k}.special"] else enc.encode_ordinary(text)
        assert got == ids, f"tokenizer case {k}: {text!r}"
        assert enc.decode(ids) == text


def test_every_format_trains_the_same_vocabulary(tmp_path, trained):
    # tokenizer train reads its inputs with data prepare's reader: the same documents, in
    # whatever format or directory, give the same vocabulary.
    import pyarrow as pa
    import pyarrow.parquet as pq

    vocab, _ = trained
    docs = list(iter_documents([corpus(tmp_path / "data.txt")]))
    pq.write_table(pa.table({"text": docs}), tmp_path / "data.parquet", row_group_size=50)
    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "a.txt").write_text("<|endoftext|>".join(docs[:100]), newline="")
    pq.write_table(pa.table({"text": docs[100:]}), tmp_path / "split" / "b.parquet")
    for inputs in ([tmp_path / "data.parquet"], [tmp_path / "data.jsonl"], [tmp_path / "split"]):
        assert tk.train(inputs, vocab_size=360, progress=False) == vocab, inputs


def test_cli_train_on_parquet_and_its_errors(tmp_path, trained):
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    from conftest import ROOT

    vocab, tok = trained
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"text": list(iter_documents([corpus(tmp_path / "d.txt")]))}), tmp_path / "data" / "d.parquet")
    cli = [sys.executable, "-m", "jaxmodel.tokenizer"]

    def run(*args):
        return subprocess.run([*cli, *map(str, args)], capture_output=True, text=True, cwd=ROOT)

    good = run("train", "--input", tmp_path / "data", "--vocab-size", 360, "--out", tmp_path / "t")
    assert good.returncode == 0, good.stderr
    assert tk.load(tmp_path / "t") == vocab
    for args, message in [
        (("train", "--input", tmp_path / "d.txt", "--vocab-size", 360, "--out", tmp_path / "d.txt"),
         "d.txt: a file, not a directory: the tokenizer is saved as a directory"),
        (("train", "--input", tmp_path / "d.txt", "--config", tmp_path / "data", "--out", tmp_path / "u"),
         "data: a directory, not a file: --config takes a model config file"),
        (("train", "--input", tmp_path / "nothing", "--vocab-size", 360, "--out", tmp_path / "u"),
         "nothing: no such file or directory"),
        (("encode", "--tokenizer", tok / tk.RANKS_FILE, "hello"), "a file, not a tokenizer directory"),
    ]:
        bad = run(*args)
        assert bad.returncode == 1 and bad.stderr.startswith("error: ") and message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
