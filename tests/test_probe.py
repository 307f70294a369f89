"""The attribute probe (jaxmodel/probe.py): where it looks and how it counts."""

import random
import re
import types

import numpy as np
import pytest

from jaxmodel import corpus, probe, reference
from jaxmodel import tokenizer as tk


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    text = tmp_path_factory.mktemp("probe") / "stories.txt"
    corpus.write_corpus(text, 1000, seed=0)
    return tk.train([text], 1024, progress=False)


def test_sites_are_repeats_of_an_attribute_said_before():
    rng, seen = random.Random(7), set()
    for _ in range(200):
        story = corpus.make_story(rng)
        text, found = probe.sites(story)
        last = text.split("\n\n")[-1]
        for site in found:
            assert text[site.at] == " " and text[site.at + 1 :].startswith(site.word)
            assert site.word == story.fields[site.field]
            assert text.index(last) <= site.at  # in the last paragraph
            assert re.search(rf"\b{site.word}\b", text[: text.index(last)])  # said before it
            seen.add(site.field)
    assert seen == set(probe.ATTRIBUTES)  # every recalling template is probed somewhere


def test_token_starts_are_the_decoded_offsets(vocab):
    encoding = tk.encoding(vocab)
    text = corpus.generate_story(random.Random(3))
    ids = encoding.encode_ordinary(text)
    starts = probe.token_starts(ids, encoding)
    assert starts[0] == 0
    for k in range(1, len(ids)):
        assert text[starts[k] :].startswith(encoding.decode([ids[k]]))


def _model_that_predicts(vocab, choose):
    """A stand-in for reference.Model whose logits put all weight on choose(next_id)."""
    return types.SimpleNamespace(vocab=vocab, config=types.SimpleNamespace(context_length=512), choose=choose)


def _fake_forward(model, tokens):
    tokens = list(tokens)
    logits = np.zeros((len(tokens), model.vocab.size))
    for k in range(len(tokens) - 1):
        logits[k, model.choose(tokens[k + 1])] = 1.0
    return logits


def test_an_oracle_scores_every_site_and_a_constant_none(vocab, monkeypatch):
    monkeypatch.setattr(reference, "forward", _fake_forward)
    oracle = probe.probe(_model_that_predicts(vocab, lambda t: t), n_stories=30, seed=1)
    assert all(oracle.total[f] > 0 for f in probe.ATTRIBUTES), oracle.total
    assert oracle.right == oracle.total and not oracle.misses
    constant = probe.probe(_model_that_predicts(vocab, lambda t: 0), n_stories=30, seed=1)
    assert constant.total == oracle.total
    assert sum(constant.right.values()) == 0 and len(constant.misses) == sum(constant.total.values())
    assert "hero's kind" in probe.report(oracle)


def test_a_story_longer_than_the_context_is_refused(vocab, monkeypatch):
    monkeypatch.setattr(reference, "forward", _fake_forward)
    model = _model_that_predicts(vocab, lambda t: t)
    model.config.context_length = 64
    with pytest.raises(ValueError, match="does not fit the context of 64"):
        probe.probe(model, n_stories=1)


def test_cli_error_is_one_line(tmp_path, capsys):
    assert probe.main(["--model", str(tmp_path / "absent.gguf")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
