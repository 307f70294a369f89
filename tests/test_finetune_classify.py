"""Classification fine-tuning: labelled data and its checks, the head on the last real token, and a run end to end."""

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from conftest import GOLDENS, ROOT
from jaxmodel import tokenizer as tk
from jaxmodel.finetune import (FinetuneError, Labelled, check_known_labels, choose_labels, classifier_rows, confusion_matrix,
                               encode_labelled, format_confusion, read_labelled)

VOCAB = tk.placeholder_vocabulary(320)


def test_jsonl_csv_and_tsv_read_alike(tmp_path):
    texts = ["a, quoted \"comma\" text", "two\nlines", "a U+2028\u2028inside"]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t, "label": f"l{k}", "extra": 1}, ensure_ascii=False) + "\n\n"
                                              for k, t in enumerate(texts)), encoding="utf-8")
    import csv

    for suffix, delimiter in ((".csv", ","), (".tsv", "\t")):
        with open(tmp_path / f"d{suffix}", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter=delimiter)
            writer.writerow(["id", "label", "text"])
            writer.writerows([k, f"l{k}", t] for k, t in enumerate(texts))
    for name in ("d.jsonl", "d.csv", "d.tsv"):
        found = read_labelled(tmp_path / name)
        assert [(e.text, e.label) for e in found] == [(t, f"l{k}") for k, t in enumerate(texts)], name
    assert [e.where for e in read_labelled(tmp_path / "d.jsonl")] == [f"{tmp_path / 'd.jsonl'}:{n}" for n in (1, 3, 5)]
    assert read_labelled(tmp_path / "d.csv")[2].where.endswith("d.csv:5")  # the line a record ends on: 2 spans lines 3-4


@pytest.mark.parametrize("name, content, message", [
    ("d.jsonl", '{"text": "ok", "label": "a"}\n{"text": "no label"}\n', r'd\.jsonl:2: expected a "label" string'),
    ("d.jsonl", '{"text": "ok", "label": "a"}\n{"text": 3, "label": "a"}\n', r'd\.jsonl:2: expected a "text" string'),
    ("d.jsonl", '{"text": "  ", "label": "a"}\n', r"d\.jsonl:1: empty text"),
    ("d.jsonl", '{"text": "x", "label": ""}\n', r"d\.jsonl:1: empty label"),
    ("d.jsonl", '{"text": "x", "label": "a"}\n{oops\n', r"d\.jsonl:2: not valid JSON"),
    ("d.jsonl", '["text", "label"]\n', r"d\.jsonl:1: expected a JSON object, found list"),
    ("d.jsonl", "\n\n", r"d\.jsonl: no labelled texts in it"),
    ("d.csv", "text,category\nhello,a\n", r"d\.csv:1: the header needs columns text and label \(found text, category\)"),
    ("d.csv", "text,label\nhello,a\n,b\n", r"d\.csv:3: empty text"),
])
def test_bad_labelled_data_names_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(FinetuneError, match=message):
        read_labelled(tmp_path / name)


def test_invalid_utf8_names_the_line(tmp_path):
    (tmp_path / "d.jsonl").write_bytes(b'{"text": "ok", "label": "a"}\n{"text": "\xff", "label": "a"}\n')
    with pytest.raises(FinetuneError, match=r"d\.jsonl:2: not valid UTF-8"):
        read_labelled(tmp_path / "d.jsonl")


def test_labels_are_sorted_or_as_given_and_every_class_has_examples():
    train = [Labelled("x", label, f"f:{k}") for k, label in enumerate(["b", "a", "b", "c"])]
    assert choose_labels(train, None, "f") == ["a", "b", "c"]
    assert choose_labels(train, ["c", "a", "b"], "f") == ["c", "a", "b"]
    with pytest.raises(FinetuneError, match=r"f:0: label 'b' is not in --labels \(a, c\)"):
        choose_labels(train, ["a", "c"], "f")
    with pytest.raises(FinetuneError, match=r"class 'd' has no training examples"):
        choose_labels(train, ["a", "b", "c", "d"], "f")
    with pytest.raises(FinetuneError, match=r"--labels: 'a' appears twice"):
        choose_labels(train, ["a", "a", "b", "c"], "f")
    with pytest.raises(FinetuneError, match=r"only the label 'a': a classifier needs at least two classes"):
        choose_labels(train[1:2], None, "f")
    with pytest.raises(FinetuneError, match=r"v:7: label 'z' was not seen in training \(labels: a, b, c\)"):
        check_known_labels([Labelled("x", "a", "v:6"), Labelled("x", "z", "v:7")], ["a", "b", "c"])


def test_texts_are_bos_plus_text_and_longer_ones_are_refused_or_cut():
    examples = [Labelled("hello", "a", "f:1"), Labelled("x" * 100, "b", "f:2")]
    with pytest.raises(FinetuneError, match=r"f:2: \d+ tokens, longer than the context of 64; .*--truncate"):
        encode_labelled(examples, VOCAB, ["a", "b"], 64, False, print)
    said = []
    data = encode_labelled(examples, VOCAB, ["a", "b"], 64, True, said.append)
    assert data.ids[0].tolist() == [VOCAB.bos_id, *tk.encoding(VOCAB).encode_ordinary("hello")]
    assert len(data.ids[1]) == 64 and data.labels.tolist() == [0, 1]
    assert said == ["data: truncated 1 text to the context of 64 tokens"]
    rows = classifier_rows(data, np.array([0]), 70, VOCAB.eos_id, rows=3)
    assert rows["tokens"].shape == (3, 70) and rows["last"].tolist() == [len(data.ids[0]) - 1, 0, 0]
    assert rows["weight"].tolist() == [1, 0, 0] and (rows["tokens"][0, len(data.ids[0]):] == VOCAB.eos_id).all()


def test_confusion_matrix_rows_are_the_truth():
    counts = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert format_confusion(counts, ["a", "bb", "c"]).splitlines() == [
        "true \\ predicted  a  bb  c",
        "a                 1   1  0",
        "bb                0   1  0",
        "c                 0   1  0",
    ]


def test_jax_head_reads_the_last_real_token_of_a_padded_batch():
    """The JAX classifier on the golden classifier equals the goldens, with every case padded to 64 ids."""
    import jax
    from flax import nnx

    from jaxmodel.gguf_io import read_arrays, read_model
    from jaxmodel.goldens import ATOL, RTOL
    from jaxmodel.model import Transformer, load_tensors

    file = read_model(GOLDENS / "classifier.gguf")
    cases = read_arrays(GOLDENS / "classifier.cases.gguf")
    model = Transformer(file.config, nnx.Rngs(0), n_classes=len(file.labels))
    load_tensors(model, file.tensors)
    n = cases.metadata["classifier.count"]
    tokens = np.full((n, 64), file.vocab.eos_id, np.int32)
    last = np.zeros(n, np.int32)
    for k in range(n):
        ids = cases.arrays[f"classifier.{k}.tokens"]
        tokens[k, : len(ids)], last[k] = ids, len(ids) - 1
    with jax.default_matmul_precision("highest"):
        logits = np.asarray(model.classify(tokens, last))
    for k in range(n):
        np.testing.assert_allclose(logits[k], cases.arrays[f"classifier.{k}.logits"], atol=ATOL, rtol=RTOL, err_msg=f"case {k}")


# --- end to end --------------------------------------------------------------------------

COLOURS = ("red", "green", "blue")


def colour_texts(n: int, seed: int) -> list[dict]:
    """Short texts whose label is the colour word in them, somewhere in the middle."""
    rng = random.Random(seed)
    things, places = ["cat", "box", "hat", "cup", "kite"], ["at home", "in the park", "by the sea", "on the hill"]
    rows = []
    for _ in range(n):
        colour = rng.choice(COLOURS)
        rows.append({"text": f"a {rng.choice(things)} that is {colour} sat {rng.choice(places)}", "label": colour})
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def classify_cmd(source, data, run_dir, *extra):
    return [sys.executable, "-m", "jaxmodel.finetune", "classify", "--from", str(source), "--data", str(data), "--run-dir", str(run_dir),
            "--no-progress", "--set", "train.steps=40", "--set", "train.batch_size=8", "--set", "train.warmup_steps=2",
            "--set", "train.learning_rate=1e-2", "--set", "train.eval_every=20", "--set", "train.checkpoint_every=20", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    write_jsonl(root / "train.jsonl", colour_texts(400, seed=0))
    run = subprocess.run(classify_cmd(GOLDENS / "gqa.gguf", root / "train.jsonl", root / "run"), capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return root, run


def test_classify_trains_the_last_block_and_the_head_and_exports_a_classifier(trained):
    from jaxmodel.gguf_io import read_model

    root, run = trained
    assert "data: 380 training and 20 validation texts" in run.stderr
    assert "validation accuracy:" in run.stdout and "true \\ predicted  blue  green  red" in run.stdout
    assert (root / "run" / "confusion.png").stat().st_size > 0
    rows = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 41)) and 0 <= rows[-1]["val_accuracy"] <= 1
    assert rows[-1]["loss"] < rows[0]["loss"]
    recorded = json.loads((root / "run" / "config.json").read_text())
    assert recorded["kind"] == "classify" and recorded["labels"] == ["blue", "green", "red"]
    assert recorded["train"]["trainable_blocks"] == 1  # the classifier's default

    out = root / "classifier.gguf"
    export = subprocess.run([sys.executable, "-m", "jaxmodel.export", "--run-dir", str(root / "run"), "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert export.returncode == 0, export.stderr[-2000:]
    model, source = read_model(out), read_model(GOLDENS / "gqa.gguf")
    assert model.labels == ["blue", "green", "red"] and model.tensors["cls.output.weight"].shape == (3, 64)
    for name, value in source.tensors.items():  # frozen: the embedding and block 0; trained: block 1, the final norm, the head
        changed = not np.array_equal(model.tensors[name], value)
        assert changed == (name.startswith("blk.1.") or name == "output_norm.weight"), name


def test_the_exported_classifier_agrees_in_the_reference_and_goengine(trained):
    root, _ = trained
    out = root / "classifier.gguf"
    held = write_jsonl(root / "heldout.jsonl", colour_texts(20, seed=1))
    ev = subprocess.run([sys.executable, "-m", "jaxmodel.finetune", "eval-classify", "--model", str(out), "--data", str(held),
                         "--confusion-png", str(root / "held.png")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert ev.stdout.startswith("held-out accuracy: ") and "/20 = " in ev.stdout and (root / "held.png").exists()
    ref = subprocess.run([sys.executable, "-m", "jaxmodel.reference", "classify", "--model", str(out), "--jsonl", str(held)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    binary = root / "goengine"
    subprocess.run(["go", "build", "-o", str(binary), "./cmd/goengine"], cwd=ROOT / "goengine", check=True)
    go = subprocess.run([str(binary), "classify", "--model", str(out), "--jsonl", str(held)], capture_output=True, text=True, timeout=120)
    assert ref.returncode == 0 and go.returncode == 0, ref.stderr + go.stderr
    ref_rows, go_rows = ([json.loads(line) for line in r.stdout.splitlines()] for r in (ref, go))
    assert [r["label"] for r in go_rows] == [r["label"] for r in ref_rows]
    for a, b in zip(go_rows, ref_rows):
        assert list(a["probs"]) == list(b["probs"])
        np.testing.assert_allclose(list(a["probs"].values()), list(b["probs"].values()), atol=1e-5)
    right = sum(r["label"] == e["label"] for r, e in zip(go_rows, colour_texts(20, seed=1)))
    assert f"accuracy: {right}/20" in go.stderr and f"held-out accuracy: {right}/20" in ev.stdout


def test_classify_refuses_bad_runs_and_data(trained):
    root, _ = trained
    train = root / "train.jsonl"
    # Resuming with other classes is another run.
    refused = subprocess.run(classify_cmd(GOLDENS / "gqa.gguf", train, root / "run", "--labels", "red,green,blue"),
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert refused.returncode == 1 and "labels: run has blue,green,red, command has red,green,blue" in refused.stderr, refused.stderr
    val = write_jsonl(root / "val.jsonl", colour_texts(5, seed=2) + [{"text": "a purple cat", "label": "purple"}])
    for extra, message in [
        (("--val-data", str(val)), "val.jsonl:6: label 'purple' was not seen in training (labels: blue, green, red)"),
        (("--labels", "red,green,blue,purple"), "class 'purple' has no training examples"),
        (("--set", "train.trainable_blocks=3"), "train.trainable_blocks (3) is more than the model's 2 blocks"),
    ]:
        bad = subprocess.run(classify_cmd(GOLDENS / "gqa.gguf", train, root / "bad", *extra), capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-2000:]
        assert not (root / "bad").exists()
    ev = subprocess.run([sys.executable, "-m", "jaxmodel.finetune", "eval-classify", "--model", str(root / "classifier.gguf"), "--data", str(val)],
                        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert ev.returncode == 1 and "val.jsonl:6: label 'purple' was not seen in training" in ev.stderr and ev.stdout == ""
    lm = subprocess.run([sys.executable, "-m", "jaxmodel.finetune", "eval-classify", "--model", str(GOLDENS / "gqa.gguf"), "--data", str(val)],
                        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert lm.returncode == 1 and "gqa.gguf: not a classifier" in lm.stderr


def test_a_classifier_file_is_a_source_without_its_head(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", colour_texts(40, seed=3))
    run = subprocess.run(classify_cmd(GOLDENS / "classifier.gguf", data, tmp_path / "run", "--set", "train.steps=2", "--set", "train.eval_every=0"),
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "a classifier (alpha, beta, gamma, δέλτα): fine-tuning its body, without its head" in run.stderr
