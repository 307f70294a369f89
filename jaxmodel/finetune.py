"""Fine-tuning: instruction SFT in the LLaMA-3 chat format (spec/finetune.md).

    python -m jaxmodel.finetune sft --from SOURCE --data FILE --run-dir OUT
        [--config C] [--set train.KEY=VALUE ...] [--val-data FILE | --val-fraction F] [--truncate]
    python -m jaxmodel.finetune eval-qa --model chat.gguf --data heldout.jsonl   # answer in the greedy reply?

SOURCE is a training run directory (its newest checkpoint) or any model file in the
profile (F32, F16 or Q8_0, dequantized to float32). The tokenizer comes from the
source and is saved in OUT/tokenizer, so the run exports by itself.

The story of `sft`: load the source; read the conversations (chat JSONL, or Alpaca
JSON/JSONL), each checked and named by file:line; render them in the chat format
with a loss mask that counts only what the assistant says (`render`); hold out a
validation set; then train with the same loop as pretraining (`train.fit`): the
same checkpoints, resume, Ctrl-C and metrics. One conversation is one row, padded
(`batch_rows`), so no attention or loss crosses from one conversation to another.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np

from jaxmodel import cli
from jaxmodel import tokenizer as tk
from jaxmodel.config import ConfigError, ModelConfig, load_train_section

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
    from jaxmodel.gguf_io import read_model

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

        vocab = tk.load(saved["tokenizer"])
        return Source(mc, tensors, vocab, {"run": str(path.absolute()), "step": _open_run(path)[1]})
    if not path.is_file():
        raise FinetuneError(f"{path}: no such file or directory (--from takes a run directory or a .gguf model file)")
    model = read_model(path)
    return Source(model.config, model.tensors, model.vocab, {"file": str(path.absolute()), "sha256": _sha256(path)})


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


def read_conversations(path: Path) -> list[Conversation]:
    """Chat JSONL ({"messages": [...]}) or Alpaca JSON/JSONL ({"instruction", "input"?, "output"})."""
    if not path.is_file():
        raise FinetuneError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise FinetuneError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    if path.suffix == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise FinetuneError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(items, list):
            raise FinetuneError(f"{path}: expected a JSON list of examples, found {type(items).__name__}")
        found = [(f"{path}: item {k}", item) for k, item in enumerate(items)]
    else:
        found = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                found.append((f"{path}:{number}", json.loads(line)))
            except json.JSONDecodeError as err:
                raise FinetuneError(f"{path}:{number}: not valid JSON ({err.msg})") from None
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


def render(messages, encoding, vocab: tk.Vocabulary) -> tuple[list[int], list[int]]:
    """The conversation's ids in the chat format of spec/tokenizer.md §5, and for each id
    whether it is learned: 1 for assistant content and the <|eot_id|> that ends an
    assistant turn, 0 for BOS, headers, system and user text.

        <|begin_of_text|>{<|start_header_id|>ROLE<|end_header_id|>ENCODE("\\n\\n" + CONTENT)<|eot_id|>}...

    Each turn is encoded as "\\n\\n" + content, as goengine's ChatPrompt does, so the
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
        text = encoding.encode_ordinary("\n\n" + content)
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

    tc = load_train_section(config, overrides)
    tr.warn_schedule(tc)
    source = load_source(source_path)
    mc = source.config
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
    tr.say(f"data: {len(examples):,} training and {len(val):,} validation conversations, "
           f"{sum(int(f[1:].sum()) for f in examples.learned):,} learned tokens")

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
    else:
        tk.save(source.vocab, run_dir / "tokenizer")

    pad = source.vocab.eos_id

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        import jax

        indices = step_indices(len(examples), step, tc.batch_size, tc.seed)
        per = tc.batch_size // jax.process_count()
        mine = indices[jax.process_index() * per : (jax.process_index() + 1) * per]
        return batch_rows(examples, mine, mc.context_length, pad)

    def validate(eval_step, params) -> float:
        total = count = 0.0
        order = np.arange(min(len(val), tc.eval_batches * tc.batch_size))
        for first in range(0, len(order), tc.batch_size):
            chunk = order[first : first + tc.batch_size]
            tokens, mask = batch_rows(val, chunk, mc.context_length, pad)
            if len(chunk) < tc.batch_size:  # the last batch, padded with rows that count for nothing
                tokens = np.concatenate([tokens, np.full((tc.batch_size - len(chunk), tokens.shape[1]), pad, np.int32)])
                mask = np.concatenate([mask, np.zeros((tc.batch_size - len(chunk), mask.shape[1]), np.int32)])
            loss_sum, n = eval_step(params, tokens, mask)
            total, count = total + float(loss_sum), count + float(n)
        return total / max(count, 1.0)

    return tr.fit(mc, tc, run_dir, record, latest, batch, validate if tc.eval_every else None, tr.say, progress,
                  tensors=source.tensors)


# --- evaluation -------------------------------------------------------------------------------


def chat_prompt(messages, encoding, vocab: tk.Vocabulary) -> list[int]:
    """The ids a chat model is given to answer `messages`: their rendering and the header
    of the assistant turn to write, "\n\n" included (goengine's ChatPrompt)."""
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


def eval_qa(model_path: Path, data: Path, limit: int | None = None, show: int = 0) -> tuple[int, int, int]:
    """(contains, exact, total): a reply contains the answer when the line's "answer" string
    is in it, and is exact when it equals the conversation's last assistant message. Each
    conversation is answered from its messages before that last assistant turn."""
    from jaxmodel import reference

    model = reference.load_model(model_path, np.float32)
    encoding = tk.encoding(model.vocab)
    lines = [line for line in data.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    correct = exact = 0
    for number, line in enumerate(lines, start=1):
        item = json.loads(line)
        if not isinstance(item.get("answer"), str):
            raise FinetuneError(f'{data}:{number}: expected an "answer" string to check the reply against')
        conversation = _conversation(item, f"{data}:{number}")
        question = list(conversation.messages[:-1])
        reply = encoding.decode(greedy_reply(model, chat_prompt(question, encoding, model.vocab)))
        correct += item["answer"] in reply
        exact += reply.strip() == conversation.messages[-1][1].strip()
        if number <= show:
            print(f"Q: {question[-1][1].splitlines()[-1]}\nA: {reply}  [{'right' if item['answer'] in reply else 'wrong: ' + item['answer']}]")
    return correct, exact, len(lines)


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
    ev = commands.add_parser("eval-qa", help="held-out QA accuracy: is the answer in the model's greedy reply?")
    ev.add_argument("--model", type=Path, required=True, help="a chat model file (.gguf)")
    ev.add_argument("--data", type=Path, required=True, help="JSONL with messages and an answer (python -m jaxmodel.corpus qa)")
    ev.add_argument("--limit", type=int, help="only the first N conversations")
    ev.add_argument("--show", type=int, default=0, help="print the first N questions and replies")
    args = parser.parse_args(argv)
    from jaxmodel.gguf_io import GGUFError
    from jaxmodel.train import Stopped

    if args.command == "eval-qa":
        try:
            correct, exact, total = eval_qa(args.model, args.data, args.limit, args.show)
        except (FinetuneError, GGUFError, OSError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"held-out QA accuracy: {correct}/{total} = {correct / max(total, 1):.1%} (answer in the greedy reply); "
              f"exact match {exact}/{total} = {exact / max(total, 1):.1%}")
        return 0
    try:
        rows = sft(args.source, args.data, args.run_dir, args.config, args.overrides, args.val_data, args.val_fraction,
                   args.truncate, not args.no_progress)
    except (FinetuneError, ConfigError, GGUFError, tk.TokenizerError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Stopped as stopped:
        print(stopped, file=sys.stderr)
        return stopped.exit_code
    last = rows[-1] if rows else {}
    print(f"{args.run_dir}: step {last.get('step', 0)}, loss {last.get('loss', float('nan')):.4f}"
          + (f", validation loss {last['val_loss']:.4f}" if "val_loss" in last else ""))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
