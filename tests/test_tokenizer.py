"""The vocabulary's GGUF form: byte-to-unicode table, merges, the exact round trip."""

import pytest
from hypothesis import given, strategies as st

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
