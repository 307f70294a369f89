"""A classifier model file: its head and labels in GGUF, and the NumPy reference classifying with it."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import CONFIGS, GOLDENS, ROOT
from jaxmodel import reference as ref
from jaxmodel.config import load_config
from jaxmodel.goldens import ATOL, CLASSIFIER_LABELS, RTOL, random_weights
from jaxmodel.gguf_io import CLASSIFIER_TENSOR, GGUFError, read_arrays, read_model, write_model
from jaxmodel.tokenizer import placeholder_vocabulary

CONFIG = load_config(CONFIGS / "goldens-classifier.yaml")
VOCAB = placeholder_vocabulary(CONFIG.vocab_size)
LABELS = ["no", "yes", "maybe"]


def test_round_trip_keeps_the_labels_and_an_f32_head_whatever_the_dtype(tmp_path):
    weights = random_weights(CONFIG, 1, n_classes=3)
    for dtype in ("f32", "q8_0"):
        write_model(tmp_path / f"{dtype}.gguf", CONFIG, weights, VOCAB, dtype=dtype, labels=LABELS)
        model = read_model(tmp_path / f"{dtype}.gguf")
        assert model.labels == LABELS and model.dtypes[CLASSIFIER_TENSOR] == "F32"
        np.testing.assert_array_equal(model.tensors[CLASSIFIER_TENSOR], weights[CLASSIFIER_TENSOR])
    assert read_model(GOLDENS / "gqa.gguf").labels == []  # a language model has none


@pytest.mark.parametrize("labels, message", [
    (["only"], "at least two labels, found 1"),
    (["a", "a", "b"], "label 'a' appears twice"),
    (["a", "", "b"], "a label is empty"),
])
def test_bad_labels_are_refused(tmp_path, labels, message):
    weights = random_weights(CONFIG, 1, n_classes=len(labels))
    with pytest.raises(GGUFError, match=message):
        write_model(tmp_path / "m.gguf", CONFIG, weights, VOCAB, labels=labels)


def test_a_head_and_labels_come_together(tmp_path):
    with pytest.raises(GGUFError, match=f"{CLASSIFIER_TENSOR} .a classifier head. without llama.classifier.output_labels"):
        write_model(tmp_path / "m.gguf", CONFIG, random_weights(CONFIG, 1, n_classes=3), VOCAB)
    with pytest.raises(GGUFError, match=f"missing tensor {CLASSIFIER_TENSOR}"):
        write_model(tmp_path / "m.gguf", CONFIG, random_weights(CONFIG, 1), VOCAB, labels=LABELS)
    with pytest.raises(GGUFError, match=rf"tensor {CLASSIFIER_TENSOR}: expected shape \(3, 32\), found \(2, 32\)"):
        write_model(tmp_path / "m.gguf", CONFIG, random_weights(CONFIG, 1, n_classes=2), VOCAB, labels=LABELS)


def test_reference_reproduces_the_golden_cases():
    """The golden file read back gives the golden numbers: ids exactly, logits within §5's tolerance."""
    model = ref.load_model(GOLDENS / "classifier.gguf")
    cases = read_arrays(GOLDENS / "classifier.cases.gguf")
    assert model.labels == list(CLASSIFIER_LABELS)
    for k in range(cases.metadata["classifier.count"]):
        tokens = ref.classifier_tokens(cases.metadata[f"classifier.{k}.text"], model.vocab)
        np.testing.assert_array_equal(tokens, cases.arrays[f"classifier.{k}.tokens"])
        logits = ref.classify(model, tokens)
        np.testing.assert_allclose(logits, cases.arrays[f"classifier.{k}.logits"], atol=ATOL, rtol=RTOL)
        np.testing.assert_allclose(ref.softmax(logits), cases.arrays[f"classifier.{k}.probs"], atol=ATOL, rtol=RTOL)
        assert model.labels[int(np.argmax(logits))] == cases.metadata[f"classifier.{k}.label"]
    labels = {cases.metadata[f"classifier.{k}.label"] for k in range(cases.metadata["classifier.count"])}
    assert len(labels) >= 3  # the cases do not all land on one class


def test_the_last_real_token_decides():
    """Only the last position's hidden state is read, and it sees every earlier token."""
    model = ref.load_model(GOLDENS / "classifier.gguf")
    base = ref.classify(model, [model.vocab.bos_id, 5, 6, 7])
    assert not np.allclose(base, ref.classify(model, [model.vocab.bos_id, 9, 6, 7]))  # an early token matters
    np.testing.assert_allclose(base, model.weight(CLASSIFIER_TENSOR) @ ref.hidden_states(model, [model.vocab.bos_id, 5, 6, 7])[3])
    with pytest.raises(ValueError, match="no classifier head"):
        ref.classify(ref.load_model(GOLDENS / "gqa.gguf"), [1, 2])


def test_cli_classifies_text_and_jsonl(tmp_path):
    cli = [sys.executable, "-m", "jaxmodel.reference", "classify", "--model", str(GOLDENS / "classifier.gguf")]
    cases = read_arrays(GOLDENS / "classifier.cases.gguf")
    texts = [cases.metadata[f"classifier.{k}.text"] for k in range(cases.metadata["classifier.count"])]
    data = tmp_path / "texts.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": "ignored"}) + "\n" for t in texts))
    run = subprocess.run([*cli, "--jsonl", str(data)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["label"] for r in rows] == [cases.metadata[f"classifier.{k}.label"] for k in range(len(texts))]
    assert all(list(r["probs"]) == list(CLASSIFIER_LABELS) and abs(sum(r["probs"].values()) - 1) < 1e-9 for r in rows)
    one = subprocess.run([*cli, "--text", texts[2]], capture_output=True, text=True, cwd=ROOT)
    assert json.loads(one.stdout) == rows[2]

    data.write_text('{"text": "fine"}\n{"txt": "oops"}\n')
    bad = subprocess.run([*cli, "--jsonl", str(data)], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and 'texts.jsonl:2: expected an object with a "text" string' in bad.stderr
    lm = subprocess.run([*cli[:-1], str(GOLDENS / "gqa.gguf"), "--text", "hi"], capture_output=True, text=True, cwd=ROOT)
    assert lm.returncode == 1 and "gqa.gguf: not a classifier" in lm.stderr and "Traceback" not in lm.stderr
