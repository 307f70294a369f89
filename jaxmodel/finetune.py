"""Fine-tuning: instruction SFT in the LLaMA-3 chat format, and classification (spec/finetune.md).

    python -m jaxmodel.finetune sft --from SOURCE --data FILE --run-dir OUT
        [--config C] [--set train.KEY=VALUE ...] [--val-data FILE | --val-fraction F] [--truncate]
    python -m jaxmodel.finetune eval-qa --model chat.gguf --data heldout.jsonl   # answer in the greedy reply?
        [--goengine bin/goengine]   # answered by goengine serve on that file; or --server URL for a running one
    python -m jaxmodel.finetune classify --from SOURCE --data labelled.jsonl --run-dir OUT [--labels a,b,...]
        [--config C] [--set ...] [--val-data FILE | --val-fraction F] [--truncate]
    python -m jaxmodel.finetune eval-classify --model classifier.gguf --data heldout.jsonl   # accuracy, confusion

SOURCE is a training run directory (its newest checkpoint) or any model file in the
profile (F32, F16, Q8_0 or another of ggml's types, dequantized to float32). The tokenizer comes from the
source and is saved in OUT/tokenizer, so the run exports by itself.

The story of `sft`: load the source; read the conversations (chat JSONL, or Alpaca
JSON/JSONL), each checked and named by file:line; render them in the chat format
with a loss mask that counts only what the assistant says (`render`); hold out a
validation set; then train with the same loop as pretraining (`train.fit`): the
same checkpoints, resume, Ctrl-C and metrics. One conversation is one row, padded
(`batch_rows`), so no attention or loss crosses from one conversation to another.

The story of `classify`: the same source; labelled texts (JSONL, CSV or TSV), each
encoded as BOS + text; the classes fixed in head-row order (`choose_labels`); then
the same loop with a classifier head (n_classes) on the hidden state of each row's last
real token, training the last block, the final norm and the head by default. Validation
reports accuracy and a confusion matrix, drawn at the end as OUT/confusion.png.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import hashlib
import io
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from jaxmodel import cli
from jaxmodel import tokenizer as tk
from jaxmodel.config import ConfigError, ModelConfig, load_finetune_config

ROLES = ("system", "user", "assistant")
VAL_FRACTION = 0.05  # held-out conversations when no --val-data is given


class FinetuneError(ValueError):
    """Fine-tuning data or a source that cannot be used; the message names the file (and line)."""


# --- the source model -------------------------------------------------------------------------


@dataclasses.dataclass
class Source:
    config: ModelConfig
    tensors: dict[str, np.ndarray]  # spec tensor name -> float32 array
    vocab: tk.Vocabulary
    record: dict  # what config.json says it was


def load_source(path: Path) -> Source:
    """A run directory (its newest checkpoint and recorded tokenizer) or a model file."""
    from jaxmodel.gguf_io import CLASSIFIER_TENSOR, read_model

    if path.is_dir():
        from jaxmodel.export import ExportError, load_run

        try:
            mc, tensors, saved = load_run(path)
        except ExportError as err:
            raise FinetuneError(str(err)) from None
        if not saved.get("tokenizer"):
            raise FinetuneError(f"{path}: the run does not record its tokenizer (it was trained on a shard directory): "
                                "export it with --tokenizer and fine-tune the exported file")
        from jaxmodel.train import _open_run

        tensors.pop(CLASSIFIER_TENSOR, None)  # a classifier run: its body only, as for a file below
        vocab = tk.load(saved["tokenizer"])
        return Source(mc, tensors, vocab, {"run": str(path.absolute()), "step": _open_run(path)[1]})
    if not path.is_file():
        raise FinetuneError(f"{path}: no such file or directory (--from takes a run directory or a .gguf model file)")
    model = read_model(path)
    if "rope_freqs.weight" in model.tensors or model.rope_scale != 1.0:
        raise FinetuneError(f"{path}: its RoPE is scaled (rope_freqs.weight or linear scaling), "
                            "which the JAX model does not implement; goengine and the reference run it")
    tensors = {name: t for name, t in model.tensors.items() if name != CLASSIFIER_TENSOR}
    if model.labels:  # a classifier's body is a language model's; its head is not reused
        from jaxmodel.train import say

        say(f"{path}: a classifier ({', '.join(model.labels)}): fine-tuning its body, without its head")
    return Source(model.config, tensors, model.vocab, {"file": str(path.absolute()), "sha256": _sha256(path)})


def fine_tuned_config(source: Source, changes: dict, say) -> ModelConfig:
    """The source's config with what the fine-tuning config changes of it: its context.

    A longer context than the source's is trained like any other: RoPE turns each position
    into angles as it goes, with no table to outgrow, and the positions after the source's
    are learnt from the fine-tuning rows that reach them: room for more questions about one
    story in a row (spec/finetune.md, at its top)."""
    mc = dataclasses.replace(source.config, **changes)
    if mc.context_length > source.config.context_length:
        say(f"model: a context of {mc.context_length} tokens, beyond the {source.config.context_length} "
            "the source was trained at: the positions after those are learnt here")
    return mc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


# --- conversations --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Conversation:
    messages: tuple[tuple[str, str], ...]  # (role, content)
    where: str  # "file:line" (or "file: item N" in a JSON list), for errors


def json_lines(path: Path) -> list[tuple[str, object]]:
    """("file:line", value) for each non-blank line of a JSON Lines file (documents.json_lines)."""
    from jaxmodel import documents

    try:
        return [(f"{path}:{number}", item) for number, item in documents.json_lines(path)]
    except documents.DocumentError as err:
        raise FinetuneError(str(err)) from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise FinetuneError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from None


def read_conversations(path: Path) -> list[Conversation]:
    """Chat JSONL ({"messages": [...]}) or Alpaca JSON/JSONL ({"instruction", "input"?, "output"})."""
    if not path.is_file():
        raise FinetuneError(f"{path}: no such file")
    if path.suffix == ".json":
        text = _read_text(path)
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise FinetuneError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(items, list):
            raise FinetuneError(f"{path}: expected a JSON list of examples, found {type(items).__name__}")
        found = [(f"{path}: item {k}", item) for k, item in enumerate(items)]
    else:
        found = json_lines(path)
    conversations = [_conversation(item, where) for where, item in found]
    if not conversations:
        raise FinetuneError(f"{path}: no conversations in it")
    return conversations


def _conversation(item, where: str) -> Conversation:
    if not isinstance(item, dict):
        raise FinetuneError(f"{where}: expected a JSON object, found {type(item).__name__}")
    if "messages" in item:
        raw = item["messages"]
        if not isinstance(raw, list):
            raise FinetuneError(f'{where}: "messages" must be a list')
        messages = []
        for k, m in enumerate(raw):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise FinetuneError(f'{where}: message {k}: expected {{"role": ..., "content": ...}} with strings')
            messages.append((m["role"], m["content"]))
    elif "instruction" in item and "output" in item:  # Alpaca: one user turn and its answer
        for key in ("instruction", "input", "output"):
            if key in item and not isinstance(item[key], str):
                raise FinetuneError(f'{where}: "{key}" must be a string')
        user = item["instruction"] + (f"\n\n{item['input']}" if item.get("input") else "")
        messages = [("user", user), ("assistant", item["output"])]
    else:
        raise FinetuneError(f'{where}: expected "messages" (chat format) or "instruction" and "output" (Alpaca format)')
    _check_turns(messages, where)
    return Conversation(tuple(messages), where)


def _check_turns(messages: list[tuple[str, str]], where: str) -> None:
    """An optional system message, then user and assistant turns in alternation, ending with the assistant."""
    for k, (role, content) in enumerate(messages):
        if role not in ROLES:
            raise FinetuneError(f"{where}: message {k}: unknown role {role!r} (expected system, user or assistant)")
        if not content.strip():
            raise FinetuneError(f"{where}: message {k} ({role}): empty content")
    turns = messages[1:] if messages and messages[0][0] == "system" else messages
    for k, (role, _) in enumerate(turns):
        expected = "user" if k % 2 == 0 else "assistant"
        if role != expected:
            offset = len(messages) - len(turns)
            raise FinetuneError(f"{where}: message {k + offset}: roles out of order: expected {expected}, found {role} "
                                "(an optional system message, then user and assistant in turn)")
    if not any(role == "assistant" for role, _ in turns):
        raise FinetuneError(f"{where}: no assistant turn: nothing to learn from")
    if turns[-1][0] != "assistant":
        raise FinetuneError(f"{where}: ends with a user turn that has no answer")


# --- rendering with the loss mask -------------------------------------------------------------


# The white space the chat format trims from each message's ends: the C locale's, as
# llama.cpp does (its llama3 format, and the exported template's "| trim") and goengine.
TRIMMED = " \t\n\v\f\r"


def render(messages, encoding, vocab: tk.Vocabulary) -> tuple[list[int], list[int]]:
    """The conversation's ids in the chat format of spec/tokenizer.md §5, and for each id
    whether it is learned: 1 for assistant content and the <|eot_id|> that ends an
    assistant turn, 0 for BOS, headers, system and user text.

        <|begin_of_text|>{<|start_header_id|>ROLE<|end_header_id|>ENCODE("\\n\\n" + CONTENT)<|eot_id|>}...

    CONTENT is the message with the white space of TRIMMED cut from its ends. Each turn
    is encoded as "\\n\\n" + content, as goengine's Chat.Prompt does, so the
    prompt a model sees at inference is token for token a prefix of what it learned
    from; the "\\n\\n" ids that start an assistant turn belong to the prompt (goengine
    sends them), so they get 0 too.
    """
    s = vocab.special_tokens
    start, end, eot = s["<|start_header_id|>"], s["<|end_header_id|>"], s["<|eot_id|>"]
    blank = encoding.encode_ordinary("\n\n")
    ids, learned = [vocab.bos_id], [0]
    for role, content in messages:
        header = [start, *encoding.encode_ordinary(role), end]
        text = encoding.encode_ordinary("\n\n" + content.strip(TRIMMED))
        ids += header + text + [eot]
        if role == "assistant":
            lead = len(blank) if text[: len(blank)] == blank else 0
            learned += [0] * (len(header) + lead) + [1] * (len(text) - lead) + [1]
        else:
            learned += [0] * (len(header) + len(text) + 1)
    return ids, learned


@dataclasses.dataclass
class Examples:
    """Rendered conversations: ids and learned flags, each at most context_length + 1 ids."""

    ids: list[np.ndarray]
    learned: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)


def encode_all(conversations: list[Conversation], encoding, vocab, context_length: int, truncate: bool, say) -> Examples:
    """Renders every conversation; one longer than the context is an error naming it, or
    (with `truncate`) cut at the context and counted; one left with nothing to learn is dropped."""
    ids, learned, cut, dropped = [], [], 0, 0
    limit = context_length + 1  # a row holds T inputs and T targets: T + 1 ids
    for conversation in conversations:
        row, flags = render(conversation.messages, encoding, vocab)
        if len(row) > limit:
            if not truncate:
                raise FinetuneError(f"{conversation.where}: {len(row)} tokens, longer than the context of {context_length} + 1; "
                                    "shorten it, or pass --truncate to cut such conversations at the context")
            row, flags, cut = row[:limit], flags[:limit], cut + 1
            if not any(flags[1:]):
                dropped += 1
                continue
        ids.append(np.asarray(row, np.int32))
        learned.append(np.asarray(flags, np.int32))
    if cut:
        say(f"data: truncated {cut} conversation{'s' if cut != 1 else ''} to the context of {context_length} tokens"
            + (f"; dropped {dropped} left with no assistant token" if dropped else ""))
    return Examples(ids, learned)


def batch_rows(examples: Examples, indices: np.ndarray, seq_len: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows `indices` padded to seq_len + 1 ids: (tokens (b, seq_len + 1), target mask (b, seq_len)).

    mask[i, j] says whether predicting tokens[i, j + 1] counts. Padding comes after a
    conversation's last id and has mask 0; causal attention never lets a real position
    see it, so padding changes nothing but the compute spent on it.
    """
    tokens = np.full((len(indices), seq_len + 1), pad_id, np.int32)
    mask = np.zeros((len(indices), seq_len), np.int32)
    for row, k in enumerate(indices):
        n = len(examples.ids[k])
        tokens[row, :n] = examples.ids[k]
        mask[row, : n - 1] = examples.learned[k][1:]
    return tokens, mask


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The examples' order in `epoch`: a permutation that depends only on (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def step_indices(n: int, step: int, batch_size: int, seed: int) -> np.ndarray:
    """The example ids of global batch `step`: epochs of shuffled examples laid end to end."""
    positions = step * batch_size + np.arange(batch_size)
    epochs, offsets = positions // n, positions % n
    return np.array([epoch_order(n, seed, int(e))[o] for e, o in zip(epochs, offsets)], np.int64)


def my_rows(indices: np.ndarray) -> np.ndarray:
    """This process's share of a global batch's example ids (all of them on one host)."""
    import jax

    per = len(indices) // jax.process_count()
    return indices[jax.process_index() * per : (jax.process_index() + 1) * per]


def hold_out(conversations: list[Conversation], fraction: float) -> tuple[list[Conversation], list[Conversation]]:
    """(train, val): conversation k goes to val when ceil((k+1) f) > ceil(k f), as data prepare does."""
    if not 0 <= fraction < 1:
        raise FinetuneError(f"--val-fraction must be in [0, 1), found {fraction}")
    val = [c for k, c in enumerate(conversations) if math.ceil(round((k + 1) * fraction, 9)) > math.ceil(round(k * fraction, 9))]
    if fraction and not val and len(conversations) >= 2:
        val = [conversations[0]]
    taken = {id(c) for c in val}
    train = [c for c in conversations if id(c) not in taken]
    if not train:
        raise FinetuneError("no training conversations left after holding out the validation set")
    return train, val


# --- the run ------------------------------------------------------------------------------


def sft(source_path: Path, data: Path, run_dir: Path, config: Path | None, overrides: list[str], val_data: Path | None = None,
        val_fraction: float = VAL_FRACTION, truncate: bool = False, progress: bool = True) -> list[dict]:
    """Instruction fine-tuning of `source_path` on the conversations in `data`; returns every step's metrics."""
    from jaxmodel import train as tr

    tc, changes = load_finetune_config(config, overrides)
    tr.warn_schedule(tc)
    source = load_source(source_path)
    mc = fine_tuned_config(source, changes, tr.say)
    if tc.trainable_blocks > mc.n_layers:
        raise ConfigError(f"train.trainable_blocks ({tc.trainable_blocks}) is more than the model's {mc.n_layers} blocks")
    encoding = tk.encoding(source.vocab)
    conversations = read_conversations(data)
    if val_data is not None:
        train_set, val_set = conversations, read_conversations(val_data)
    else:
        train_set, val_set = hold_out(conversations, val_fraction)
    examples = encode_all(train_set, encoding, source.vocab, mc.context_length, truncate, tr.say)
    val = encode_all(val_set, encoding, source.vocab, mc.context_length, truncate, tr.say)
    if not len(examples):
        raise FinetuneError(f"{data}: no conversation fits the context, even cut")
    if tc.eval_every and not len(val):
        raise ConfigError("no validation conversations: pass --val-data FILE or --val-fraction F, "
                          "or --set train.eval_every=0 to train without validation")
    # Rows are padded to the longest conversation, not the context: attention and the FFN
    # cost what is there, and one length for every batch is one compiled step.
    seq_len = max(len(row) for row in examples.ids + val.ids) - 1
    tr.say(f"data: {len(examples):,} training and {len(val):,} validation conversations, "
           f"{sum(int(f[1:].sum()) for f in examples.learned):,} learned tokens, in rows of {seq_len} positions")

    record = {"kind": "sft", "model": dataclasses.asdict(mc), "train": dataclasses.asdict(tc), "from": source.record,
              "data": str(data.absolute()), "val_data": None if val_data is None else str(val_data.absolute()),
              # What decides the examples and the starting weights: a resume must see the same (train.check_resume).
              "input_files": {"data": _sha256(data), **({"val_data": _sha256(val_data)} if val_data else {})},
              "inputs": {**({} if val_data else {"val_fraction": val_fraction}), "from": json.dumps(source.record, sort_keys=True),
                         "truncate": truncate},
              "tokenizer": str((run_dir / "tokenizer").absolute()), "tokenizer_sha256": tk.vocab_fingerprint(source.vocab),
              "shards": [], "versions": tr._versions()}
    recorded, latest = tr._open_run(run_dir)
    if recorded is not None:
        tr.check_resume(run_dir, recorded, record, tr.say)
    elif tr.is_writer():
        tk.save(source.vocab, run_dir / "tokenizer")

    pad = source.vocab.eos_id

    def batch(step: int) -> dict[str, np.ndarray]:
        tokens, mask = batch_rows(examples, my_rows(step_indices(len(examples), step, tc.batch_size, tc.seed)), seq_len, pad)
        return {"tokens": tokens, "mask": mask}

    def validate(eval_step, params) -> float:
        total = count = 0.0
        order = np.arange(min(len(val), tc.eval_batches * tc.batch_size))
        for first in range(0, len(order), tc.batch_size):
            chunk = order[first : first + tc.batch_size]
            tokens, mask = batch_rows(val, chunk, seq_len, pad)
            if len(chunk) < tc.batch_size:  # the last batch, padded with rows that count for nothing
                tokens = np.concatenate([tokens, np.full((tc.batch_size - len(chunk), tokens.shape[1]), pad, np.int32)])
                mask = np.concatenate([mask, np.zeros((tc.batch_size - len(chunk), mask.shape[1]), np.int32)])
            loss_sum, n = eval_step(params, {"tokens": tokens, "mask": mask})
            total, count = total + float(loss_sum), count + float(n)
        return total / max(count, 1.0)

    return tr.fit(mc, tc, run_dir, record, latest, batch, validate if tc.eval_every else None, tr.say, progress,
                  tensors=source.tensors)


# --- classification (spec/finetune.md §6) ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Labelled:
    text: str
    label: str
    where: str  # "file:line", for errors


def read_labelled(path: Path) -> list[Labelled]:
    """Labelled texts: JSONL {"text", "label"}, or CSV/TSV with `text` and `label` columns."""
    import csv

    if not path.is_file():
        raise FinetuneError(f"{path}: no such file")
    found: list[tuple[str, object]] = []
    if path.suffix in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(_read_text(path), newline=""), delimiter="\t" if path.suffix == ".tsv" else ",")
        missing = {"text", "label"} - set(reader.fieldnames or [])
        if missing:
            raise FinetuneError(f"{path}:1: the header needs columns text and label (found {', '.join(reader.fieldnames or []) or 'none'})")
        try:
            for row in reader:
                found.append((f"{path}:{reader.line_num}", {k: row[k] for k in ("text", "label")}))
        except csv.Error as err:
            raise FinetuneError(f"{path}:{reader.line_num}: not valid {path.suffix[1:].upper()} ({err})") from None
    else:
        found = json_lines(path)
    examples = [_labelled(item, where) for where, item in found]
    if not examples:
        raise FinetuneError(f"{path}: no labelled texts in it")
    return examples


def _labelled(item, where: str) -> Labelled:
    if not isinstance(item, dict):
        raise FinetuneError(f"{where}: expected a JSON object, found {type(item).__name__}")
    for key in ("text", "label"):
        if not isinstance(item.get(key), str):
            raise FinetuneError(f'{where}: expected a "{key}" string')
    if not item["text"].strip():
        raise FinetuneError(f"{where}: empty text")
    if not item["label"].strip():
        raise FinetuneError(f"{where}: empty label")
    return Labelled(item["text"], item["label"], where)


def choose_labels(train: list[Labelled], given: list[str] | None, data: Path) -> list[str]:
    """The classes, in head-row order: --labels as given, else the training labels sorted.
    Every class needs training examples, and every training label must be a class."""
    seen = collections.Counter(e.label for e in train)
    if given is None:
        labels = sorted(seen)
    else:
        labels = given
        if len(set(labels)) != len(labels):
            raise FinetuneError(f"--labels: {next(x for x in labels if labels.count(x) > 1)!r} appears twice")
        stray = next((e for e in train if e.label not in labels), None)
        if stray is not None:
            raise FinetuneError(f"{stray.where}: label {stray.label!r} is not in --labels ({', '.join(labels)})")
        empty = [x for x in labels if not seen[x]]
        if empty:
            raise FinetuneError(f"{data}: class {empty[0]!r} has no training examples (--labels {','.join(labels)})")
    if len(labels) < 2:
        raise FinetuneError(f"{data}: only the label {labels[0]!r}: a classifier needs at least two classes")
    return labels


def check_known_labels(examples: list[Labelled], labels: list[str]) -> None:
    """Evaluation data may only use labels the classifier was trained on."""
    for e in examples:
        if e.label not in labels:
            raise FinetuneError(f"{e.where}: label {e.label!r} was not seen in training (labels: {', '.join(labels)})")


@dataclasses.dataclass
class LabelledIds:
    """Encoded texts (BOS + text, reference.classifier_tokens) and their class numbers."""

    ids: list[np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def encode_labelled(examples: list[Labelled], vocab, labels: list[str], context_length: int, truncate: bool, say) -> LabelledIds:
    """Encodes every text; one longer than the context is an error naming it, or (with
    `truncate`) cut to its first context_length ids and counted."""
    from jaxmodel.reference import classifier_tokens

    encoding = tk.encoding(vocab)
    ids, cut = [], 0
    for e in examples:
        row = classifier_tokens(e.text, vocab, encoding)
        if len(row) > context_length:
            if not truncate:
                raise FinetuneError(f"{e.where}: {len(row)} tokens, longer than the context of {context_length}; "
                                    "shorten it, or pass --truncate to cut such texts at the context")
            row, cut = row[:context_length], cut + 1
        ids.append(np.asarray(row, np.int32))
    if cut:
        say(f"data: truncated {cut} text{'s' if cut != 1 else ''} to the context of {context_length} tokens")
    index = {label: k for k, label in enumerate(labels)}
    return LabelledIds(ids, np.array([index[e.label] for e in examples], np.int32))


def classifier_rows(data: LabelledIds, indices: np.ndarray, seq_len: int, pad_id: int, rows: int | None = None) -> dict[str, np.ndarray]:
    """A classifier batch (train.BATCH_KEYS["classifier"]) of examples `indices`, padded to
    seq_len ids, and with `rows` > len(indices), to that many rows of weight 0 (count for nothing)."""
    rows = len(indices) if rows is None else rows
    tokens = np.full((rows, seq_len), pad_id, np.int32)
    last, label, weight = np.zeros(rows, np.int32), np.zeros(rows, np.int32), np.zeros(rows, np.float32)
    for row, k in enumerate(indices):
        n = len(data.ids[k])
        tokens[row, :n] = data.ids[k]
        last[row], label[row], weight[row] = n - 1, data.labels[k], 1.0
    return {"tokens": tokens, "last": last, "label": label, "weight": weight}


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[t, p]: examples of class t predicted as p."""
    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (true, predicted), 1)
    return counts


def format_confusion(counts: np.ndarray, labels: list[str]) -> str:
    """The confusion matrix as an aligned table: a row per true label, a column per prediction."""
    corner = "true \\ predicted"
    first = max(len(corner), *map(len, labels))
    widths = [max(len(label), len(str(counts.max()))) for label in labels]
    lines = [corner.ljust(first) + "".join(f"  {label:>{w}}" for label, w in zip(labels, widths))]
    for t, label in enumerate(labels):
        lines.append(label.ljust(first) + "".join(f"  {counts[t, p]:>{w}}" for p, w in enumerate(widths)))
    return "\n".join(lines)


def plot_confusion(counts: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.0 * len(labels) + 2))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for t in range(len(labels)):
        for p in range(len(labels)):
            ax.text(p, t, str(counts[t, p]), ha="center", va="center", color="white" if counts[t, p] > counts.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def accuracy_report(counts: np.ndarray, labels: list[str]) -> str:
    right, total = int(np.trace(counts)), int(counts.sum())
    return f"held-out accuracy: {right}/{total} = {right / max(total, 1):.1%}\n" + format_confusion(counts, labels)


CLASSIFY_DEFAULTS = {"trainable_blocks": 1}  # the book's choice: the last block, the final norm and the head


def classify(source_path: Path, data: Path, run_dir: Path, config: Path | None, overrides: list[str],
             labels: list[str] | None = None, val_data: Path | None = None, val_fraction: float = VAL_FRACTION,
             truncate: bool = False, progress: bool = True) -> tuple[list[dict], np.ndarray | None, list[str]]:
    """Classification fine-tuning of `source_path` on the labelled texts in `data`.

    Returns every step's metrics, the final validation confusion matrix (None without
    validation, or when the run was already complete) and the labels, in head-row order.
    """
    import jax
    from flax import nnx

    from jaxmodel import train as tr

    tc, changes = load_finetune_config(config, overrides, defaults=CLASSIFY_DEFAULTS)
    tr.warn_schedule(tc)
    source = load_source(source_path)
    mc = fine_tuned_config(source, changes, tr.say)
    if tc.trainable_blocks > mc.n_layers:
        raise ConfigError(f"train.trainable_blocks ({tc.trainable_blocks}) is more than the model's {mc.n_layers} blocks")
    examples = read_labelled(data)
    if val_data is not None:
        train_set, val_set = examples, read_labelled(val_data)
    else:
        train_set, val_set = hold_out(examples, val_fraction)
    labels = choose_labels(train_set, labels, data)
    check_known_labels(val_set, labels)
    train_ids = encode_labelled(train_set, source.vocab, labels, mc.context_length, truncate, tr.say)
    val_ids = encode_labelled(val_set, source.vocab, labels, mc.context_length, truncate, tr.say)
    if tc.eval_every and not len(val_ids):
        raise ConfigError("no validation texts: pass --val-data FILE or --val-fraction F, "
                          "or --set train.eval_every=0 to train without validation")
    # Rows are padded to the longest text, not the context: attention and the FFN cost what is there.
    seq_len = max(len(row) for row in train_ids.ids + val_ids.ids)
    counts = collections.Counter(e.label for e in train_set)
    tr.say(f"data: {len(train_ids):,} training and {len(val_ids):,} validation texts, up to {seq_len} tokens; "
           + ", ".join(f"{label} {counts[label]:,}" for label in labels))

    record = {"kind": "classify", "labels": labels, "model": dataclasses.asdict(mc), "train": dataclasses.asdict(tc),
              "from": source.record, "data": str(data.absolute()), "val_data": None if val_data is None else str(val_data.absolute()),
              "input_files": {"data": _sha256(data), **({"val_data": _sha256(val_data)} if val_data else {})},
              "inputs": {**({} if val_data else {"val_fraction": val_fraction}), "from": json.dumps(source.record, sort_keys=True),
                         "truncate": truncate, "labels": ",".join(labels)},
              "tokenizer": str((run_dir / "tokenizer").absolute()), "tokenizer_sha256": tk.vocab_fingerprint(source.vocab),
              "shards": [], "versions": tr._versions()}
    recorded, latest = tr._open_run(run_dir)
    if recorded is not None:
        tr.check_resume(run_dir, recorded, record, tr.say)
    elif tr.is_writer():
        tk.save(source.vocab, run_dir / "tokenizer")

    pad, n_classes = source.vocab.eos_id, len(labels)
    graphdef, _ = tr._abstract_model(mc, tc, n_classes)
    predict = jax.jit(lambda params, tokens, last: nnx.merge(graphdef, params).classify(tokens, last))
    final: dict[str, np.ndarray] = {}

    def batch(step: int) -> dict[str, np.ndarray]:
        return classifier_rows(train_ids, my_rows(step_indices(len(train_ids), step, tc.batch_size, tc.seed)), seq_len, pad)

    def validate(eval_step, params) -> dict[str, float]:
        logits = []
        for first in range(0, len(val_ids), tc.batch_size):
            chunk = np.arange(first, min(first + tc.batch_size, len(val_ids)))
            rows = classifier_rows(val_ids, chunk, seq_len, pad, rows=tc.batch_size)  # one compiled shape
            logits.append(np.asarray(predict(params, rows["tokens"], rows["last"]))[: len(chunk)])
        logits = np.concatenate(logits).astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_probs = logits - top - np.log(np.sum(np.exp(logits - top), axis=1, keepdims=True))  # log-softmax
        predicted = np.argmax(logits, axis=1)
        final["confusion"] = confusion_matrix(val_ids.labels, predicted, n_classes)
        return {"val_loss": float(-np.mean(log_probs[np.arange(len(val_ids)), val_ids.labels])),
                "val_accuracy": float(np.mean(predicted == val_ids.labels))}

    rows = tr.fit(mc, tc, run_dir, record, latest, batch, validate if tc.eval_every else None, tr.say, progress,
                  tensors=source.tensors, n_classes=n_classes)
    confusion = final.get("confusion")
    if confusion is not None and tr.is_writer():
        plot_confusion(confusion, labels, run_dir / "confusion.png", f"{run_dir.name}: validation, step {rows[-1]['step']}")
    return rows, confusion, labels


def eval_classify(model_path: Path, data: Path, limit: int | None = None) -> tuple[np.ndarray, list[str]]:
    """The confusion matrix of the NumPy reference classifying `data` (labelled texts) with a model file."""
    from jaxmodel import reference

    model = reference.load_model(model_path, np.float32)
    if not model.labels:
        raise FinetuneError(f"{model_path}: not a classifier (no llama.classifier.output_labels)")
    examples = read_labelled(data)[:limit]
    check_known_labels(examples, model.labels)
    encoding = tk.encoding(model.vocab)
    index = {label: k for k, label in enumerate(model.labels)}
    true, predicted = [], []
    for e in examples:
        ids = reference.classifier_tokens(e.text, model.vocab, encoding)
        if len(ids) > model.config.context_length:
            raise FinetuneError(f"{e.where}: {len(ids)} tokens, longer than the context of {model.config.context_length}")
        true.append(index[e.label])
        predicted.append(int(np.argmax(reference.classify(model, ids))))
    return confusion_matrix(np.array(true), np.array(predicted), len(model.labels)), model.labels


# --- evaluation -------------------------------------------------------------------------------


def chat_prompt(messages, encoding, vocab: tk.Vocabulary) -> list[int]:
    """The ids a chat model is given to answer `messages`: their rendering and the header
    of the assistant turn to write, "\n\n" included (goengine's Chat.Prompt)."""
    ids, _ = render(messages, encoding, vocab)
    s = vocab.special_tokens
    return ids + [s["<|start_header_id|>"], *encoding.encode_ordinary("assistant"), s["<|end_header_id|>"],
                  *encoding.encode_ordinary("\n\n")]


def greedy_reply(model, prompt: list[int], max_tokens: int = 64) -> list[int]:
    """The NumPy reference's greedy reply to `prompt`, up to <|eot_id|> or <|end_of_text|>."""
    from jaxmodel import reference

    stops = {model.vocab.special_tokens["<|eot_id|>"], model.vocab.eos_id}
    cache = reference.KVCache(model.config, model.weights["token_embd.weight"].dtype)
    logits = reference.forward(model, prompt, cache)[-1]
    reply = []
    while len(reply) < max_tokens and cache.length < model.config.context_length:
        token = int(np.argmax(logits))
        if token in stops:
            break
        reply.append(token)
        logits = reference.decode_step(model, cache, token)
    return reply


@dataclasses.dataclass
class QAResult:
    """What eval_qa counted: replies that contain the answer, that are exact, in all, and
    (for lines with a "kind", as jaxmodel.corpus qa writes) per kind of question."""

    correct: int = 0
    exact: int = 0
    total: int = 0
    by_kind: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # kind -> [correct, total]


def eval_qa(model_path: Path | None, data: Path, limit: int | None = None, show: int = 0, server: str | None = None,
            goengine: Path | None = None) -> QAResult:
    """A reply contains the answer when the line's "answer" string is in it, and is exact
    when it equals the conversation's last assistant message. Each conversation is answered
    from its messages before that last assistant turn, greedily: by the NumPy reference on
    `model_path`, by the OpenAI-compatible chat endpoint of `server` (goengine serve), or
    with `goengine` (its binary) by `goengine serve` on `model_path`, started for the purpose."""
    items = json_lines(data)[:limit]
    for where, item in items:  # every line checked before minutes of answering
        if not isinstance(item, dict) or not isinstance(item.get("answer"), str):
            raise FinetuneError(f'{where}: expected an "answer" string to check the reply against')
        _conversation(item, where)
    if goengine is not None:
        with served(goengine, model_path) as url:
            return _count_answers(items, server_answerer(url), show)
    return _count_answers(items, server_answerer(server) if server is not None else reference_answerer(model_path), show)


def _count_answers(items: list[tuple[str, object]], answer, show: int) -> QAResult:
    result = QAResult(total=len(items))
    for number, (where, item) in enumerate(items, start=1):
        conversation = _conversation(item, where)
        question = list(conversation.messages[:-1])
        reply = answer(question)
        right = item["answer"] in reply
        result.correct += right
        result.exact += reply.strip() == conversation.messages[-1][1].strip()
        if isinstance(item.get("kind"), str):
            counts = result.by_kind.setdefault(item["kind"], [0, 0])
            counts[0], counts[1] = counts[0] + right, counts[1] + 1
        if number <= show:
            print(f"Q: {question[-1][1].splitlines()[-1]}\nA: {reply}  [{'right' if right else 'wrong: ' + item['answer']}]")
    return result


QA_MAX_TOKENS = 64  # a reply longer than this is cut, by either answerer


def reference_answerer(model_path: Path):
    """messages -> the NumPy reference's greedy reply (spec/model.md's math)."""
    from jaxmodel import reference

    model = reference.load_model(model_path, np.float32)
    encoding = tk.encoding(model.vocab)
    return lambda messages: encoding.decode(greedy_reply(model, chat_prompt(messages, encoding, model.vocab), QA_MAX_TOKENS))


def server_answerer(url: str, max_tokens: int = QA_MAX_TOKENS):
    """messages -> the greedy reply of a running OpenAI-compatible server at `url`
    (POST /v1/chat/completions, temperature 0), as a user of `goengine serve` gets it."""
    import urllib.error
    import urllib.request

    endpoint = url.rstrip("/") + "/v1/chat/completions"

    def answer(messages) -> str:
        body = {"messages": [{"role": role, "content": content} for role, content in messages],
                "temperature": 0, "max_tokens": max_tokens}
        request = urllib.request.Request(endpoint, json.dumps(body).encode(), {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                reply = json.loads(response.read())
            return reply["choices"][0]["message"]["content"]
        except urllib.error.HTTPError as err:
            raise FinetuneError(f"{endpoint}: HTTP {err.code}: {err.read()[:300].decode('utf-8', 'replace')}") from None
        except urllib.error.URLError as err:
            raise FinetuneError(f"{endpoint}: cannot reach the server ({err.reason}); start it with "
                                "bin/goengine serve --model M.gguf") from None
        except (ValueError, KeyError, IndexError, TypeError):
            raise FinetuneError(f"{endpoint}: the reply is not an OpenAI chat completion") from None

    return answer


@contextlib.contextmanager
def served(goengine: Path, model_path: Path):
    """`goengine serve --model model_path` on a free loopback port, for as long as the block
    runs; yields its URL. The server prints its address as its first line (cmd/goengine/serve.go)."""
    import subprocess
    import tempfile

    if not Path(goengine).is_file():
        raise FinetuneError(f"{goengine}: no such program; build it with make build")
    command = [str(goengine), "serve", "--model", str(model_path), "--addr", "127.0.0.1:0"]
    # Its log (a line per request) goes to a file: a pipe nobody reads would fill and stall it.
    with tempfile.TemporaryFile("w+") as log, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True) as process:
        try:
            line = process.stdout.readline()
            found = re.search(r"on (http://\S+)/v1 ", line)
            if not found:  # it exited (a bad file), or printed something else: stop it, say what it said
                process.kill()
                process.wait()
                log.seek(0)
                raise FinetuneError(f"{goengine} serve did not start: {(line + log.read()).strip()[:500]}")
            yield found.group(1)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxmodel.finetune", description="Fine-tune a gollm model.")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("sft", help="instruction fine-tuning on conversations in the chat format")
    cmd.add_argument("--from", dest="source", type=Path, required=True, help="a training run directory or a .gguf model file")
    cmd.add_argument("--data", type=Path, required=True, help="chat JSONL ({\"messages\": [...]}) or Alpaca JSON/JSONL")
    cmd.add_argument("--run-dir", type=Path, required=True, help="checkpoints, metrics.jsonl, loss.png, tokenizer/")
    cmd.add_argument("--config", type=Path, help="a YAML file with a train: section")
    cmd.add_argument("--set", dest="overrides", action="append", default=[], metavar="train.KEY=VALUE")
    val = cmd.add_mutually_exclusive_group()
    val.add_argument("--val-data", type=Path, help="validation conversations (default: hold out --val-fraction)")
    val.add_argument("--val-fraction", type=float, default=VAL_FRACTION, help=f"conversations held out (default {VAL_FRACTION})")
    cmd.add_argument("--truncate", action="store_true", help="cut conversations longer than the context instead of refusing them")
    cmd.add_argument("--no-progress", action="store_true")
    cl = commands.add_parser("classify", help="classification fine-tuning: a head on the last token's hidden state")
    cl.add_argument("--from", dest="source", type=Path, required=True, help="a training run directory or a .gguf model file")
    cl.add_argument("--data", type=Path, required=True, help='labelled texts: JSONL {"text", "label"}, or CSV/TSV with text and label columns')
    cl.add_argument("--labels", help="the classes in order, comma-separated (default: the training labels, sorted)")
    cl.add_argument("--run-dir", type=Path, required=True, help="checkpoints, metrics.jsonl, loss.png, confusion.png, tokenizer/")
    cl.add_argument("--config", type=Path, help=f"a YAML file with a train: section (default trainable_blocks: {CLASSIFY_DEFAULTS['trainable_blocks']})")
    cl.add_argument("--set", dest="overrides", action="append", default=[], metavar="train.KEY=VALUE")
    val = cl.add_mutually_exclusive_group()
    val.add_argument("--val-data", type=Path, help="validation texts (default: hold out --val-fraction)")
    val.add_argument("--val-fraction", type=float, default=VAL_FRACTION, help=f"texts held out (default {VAL_FRACTION})")
    cl.add_argument("--truncate", action="store_true", help="cut texts longer than the context instead of refusing them")
    cl.add_argument("--no-progress", action="store_true")
    ec = commands.add_parser("eval-classify", help="held-out accuracy and confusion matrix of a classifier file (NumPy reference)")
    ec.add_argument("--model", type=Path, required=True, help="a classifier model file (.gguf)")
    ec.add_argument("--data", type=Path, required=True, help="labelled texts (JSONL, CSV or TSV)")
    ec.add_argument("--limit", type=int, help="only the first N texts")
    ec.add_argument("--confusion-png", type=Path, help="also draw the confusion matrix here")
    ev = commands.add_parser("eval-qa", help="held-out QA accuracy: is the answer in the model's greedy reply?")
    by = ev.add_mutually_exclusive_group(required=True)
    by.add_argument("--model", type=Path, help="a chat model file (.gguf), answered by the NumPy reference")
    by.add_argument("--server", metavar="URL", help="a running OpenAI-compatible server (bin/goengine serve), e.g. http://127.0.0.1:8080")
    ev.add_argument("--goengine", type=Path, metavar="BIN",
                    help="with --model: answer with BIN serve (goengine) on that file instead of the NumPy reference")
    ev.add_argument("--data", type=Path, required=True, help="JSONL with messages and an answer (python -m jaxmodel.corpus qa)")
    ev.add_argument("--limit", type=int, help="only the first N conversations")
    ev.add_argument("--show", type=int, default=0, help="print the first N questions and replies")
    args = parser.parse_args(argv)
    from jaxmodel.gguf_io import GGUFError
    from jaxmodel.train import Stopped, keep_freed_host_memory

    if args.command in ("sft", "classify"):
        keep_freed_host_memory()  # as jaxmodel.train does: the step's buffers stay mapped
    errors = (FinetuneError, ConfigError, GGUFError, tk.TokenizerError, OSError)
    # Evaluation only reads: any ValueError there is about the model or the data it was given.
    command, errors = {"sft": (_sft, errors), "classify": (_classify, errors),
                       "eval-qa": (_eval_qa, errors + (ValueError,)), "eval-classify": (_eval_classify, errors + (ValueError,))}[args.command]
    try:
        command(args)
    except errors as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Stopped as stopped:
        print(stopped, file=sys.stderr)
        import jax

        if jax.process_count() > 1:  # as a stopped multi-host pretraining run leaves
            from jaxmodel.train import leave_together

            leave_together(stopped.exit_code, args.run_dir)
        return stopped.exit_code
    return 0


def _sft(args) -> None:
    rows = sft(args.source, args.data, args.run_dir, args.config, args.overrides, args.val_data, args.val_fraction,
               args.truncate, not args.no_progress)
    last = rows[-1] if rows else {}
    print(f"{args.run_dir}: step {last.get('step', 0)}, loss {last.get('loss', float('nan')):.4f}"
          + (f", validation loss {last['val_loss']:.4f}" if "val_loss" in last else ""))


def _classify(args) -> None:
    labels = args.labels.split(",") if args.labels else None
    rows, confusion, labels = classify(args.source, args.data, args.run_dir, args.config, args.overrides, labels,
                                       args.val_data, args.val_fraction, args.truncate, not args.no_progress)
    last = rows[-1] if rows else {}
    print(f"{args.run_dir}: step {last.get('step', 0)}, loss {last.get('loss', float('nan')):.4f}"
          + (f", validation accuracy {last['val_accuracy']:.1%}" if "val_accuracy" in last else ""))
    if confusion is not None:
        print(accuracy_report(confusion, labels).replace("held-out", "validation"))
        print(f"confusion matrix: {args.run_dir / 'confusion.png'}")


def _eval_qa(args) -> None:
    if args.goengine is not None and args.model is None:
        raise FinetuneError("--goengine needs --model: the file it serves")
    r = eval_qa(args.model, args.data, args.limit, args.show, args.server, args.goengine)
    print(f"held-out QA accuracy: {r.correct}/{r.total} = {r.correct / max(r.total, 1):.1%} (answer in the greedy reply); "
          f"exact match {r.exact}/{r.total} = {r.exact / max(r.total, 1):.1%}")
    if r.by_kind:
        print("by kind of question: " + ", ".join(f"{kind} {right}/{n}" for kind, (right, n) in sorted(r.by_kind.items())))


def _eval_classify(args) -> None:
    counts, labels = eval_classify(args.model, args.data, args.limit)
    if args.confusion_png is not None:
        plot_confusion(counts, labels, args.confusion_png, f"{args.model.name} on {args.data.name}")
    print(accuracy_report(counts, labels))


if __name__ == "__main__":
    sys.exit(cli.run(main))
