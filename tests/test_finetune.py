"""Instruction fine-tuning: the chat rendering and its loss mask, the data checks, and a run end to end."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import ROOT
from jaxmodel import tokenizer as tk
from jaxmodel.finetune import (Conversation, FinetuneError, batch_rows, encode_all, hold_out, read_conversations, render, served,
                               step_indices)

VOCAB = tk.placeholder_vocabulary(320)
ENC = tk.encoding(VOCAB)
S = VOCAB.special_tokens


def test_render_is_the_chat_format_and_learns_only_the_assistant():
    messages = [("system", "Be brief."), ("user", "Who is it?"), ("assistant", "It is Tom."), ("user", "Where?"), ("assistant", "Home.")]
    ids, learned = render(messages, ENC, VOCAB)
    expected, flags = [VOCAB.bos_id], [0]
    for role, content in messages:
        header = [S["<|start_header_id|>"], *ENC.encode_ordinary(role), S["<|end_header_id|>"]]
        text = ENC.encode_ordinary("\n\n" + content)
        expected += header + text + [S["<|eot_id|>"]]
        blank = len(ENC.encode_ordinary("\n\n"))
        if role == "assistant":  # the "\n\n" after the header is the prompt's; the content and <|eot_id|> are learned
            flags += [0] * (len(header) + blank) + [1] * (len(text) - blank) + [1]
        else:
            flags += [0] * (len(header) + len(text) + 1)
    assert ids == expected and learned == flags
    # What is learned decodes to exactly the assistants' words and their end-of-turn tokens.
    taught = [i for i, f in zip(ids, learned) if f]
    eot = S["<|eot_id|>"]
    assert taught.count(eot) == 2
    assert ENC.decode([i for i in taught if i != eot]) == "It is Tom.Home."
    # The prompt goengine sends for the first reply is a prefix of the rendered conversation.
    prompt = [VOCAB.bos_id]
    for role, content in messages[:2]:
        prompt += [S["<|start_header_id|>"], *ENC.encode_ordinary(role), S["<|end_header_id|>"], *ENC.encode_ordinary("\n\n" + content), eot]
    prompt += [S["<|start_header_id|>"], *ENC.encode_ordinary("assistant"), S["<|end_header_id|>"], *ENC.encode_ordinary("\n\n")]
    assert ids[: len(prompt)] == prompt and not any(learned[: len(prompt)])


def test_batch_rows_align_the_mask_with_the_targets():
    ids, learned = render([("user", "hi"), ("assistant", "the turtle")], ENC, VOCAB)
    examples = encode_all([Conversation((("user", "hi"), ("assistant", "the turtle")), "x:1")], ENC, VOCAB, 64, False, print)
    tokens, mask = batch_rows(examples, np.array([0, 0]), 64, pad_id=VOCAB.eos_id)
    assert tokens.shape == (2, 65) and mask.shape == (2, 64)
    n = len(ids)
    assert tokens[0, :n].tolist() == ids and (tokens[0, n:] == VOCAB.eos_id).all()
    # mask[j] counts the prediction of tokens[j + 1]
    assert mask[0, : n - 1].tolist() == learned[1:] and not mask[0, n - 1 :].any()


def test_batches_are_a_pure_function_of_the_step_and_cover_each_epoch():
    first = [step_indices(10, s, 5, seed=3) for s in range(4)]
    again = [step_indices(10, s, 5, seed=3) for s in range(4)]
    assert all((a == b).all() for a, b in zip(first, again))
    assert sorted(np.concatenate(first[:2]).tolist()) == list(range(10)) == sorted(np.concatenate(first[2:]).tolist())
    assert not (np.concatenate(first[:2]) == np.concatenate(first[2:])).all(), "a new order every epoch"


def write_lines(path, items):
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def chat(*turns):
    return {"messages": [{"role": r, "content": c} for r, c in turns]}


def test_chat_and_alpaca_formats(tmp_path):
    conversations = read_conversations(write_lines(tmp_path / "a.jsonl", [
        chat(("system", "s"), ("user", "q"), ("assistant", "a")),
        {"instruction": "Add.", "input": "1 and 2", "output": "3"},
        {"instruction": "Say hi.", "output": "hi"},
    ]))
    assert [c.messages for c in conversations] == [
        (("system", "s"), ("user", "q"), ("assistant", "a")),
        (("user", "Add.\n\n1 and 2"), ("assistant", "3")),
        (("user", "Say hi."), ("assistant", "hi")),
    ]
    (tmp_path / "b.json").write_text(json.dumps([{"instruction": "Say hi.", "output": "hi"}]))
    assert read_conversations(tmp_path / "b.json")[0].where.endswith("b.json: item 0")


@pytest.mark.parametrize("item, message", [
    (chat(("user", "q")), r"bad\.jsonl:2: no assistant turn"),
    (chat(("user", "q"), ("user", "again"), ("assistant", "a")), r"bad\.jsonl:2: message 1: roles out of order: expected assistant, found user"),
    (chat(("assistant", "a")), r"bad\.jsonl:2: message 0: roles out of order"),
    (chat(("user", "q"), ("robot", "a")), r"bad\.jsonl:2: message 1: unknown role 'robot'"),
    (chat(("user", "q"), ("assistant", "  ")), r"bad\.jsonl:2: message 1 \(assistant\): empty content"),
    (chat(("user", "q"), ("assistant", "a"), ("user", "more")), r"bad\.jsonl:2: ends with a user turn"),
    ({"text": "plain"}, r'bad\.jsonl:2: expected "messages"'),
    ({"messages": [{"role": "user", "content": 3}]}, r"bad\.jsonl:2: message 0: expected"),
])
def test_bad_conversations_name_file_and_line(tmp_path, item, message):
    path = write_lines(tmp_path / "bad.jsonl", [chat(("user", "fine"), ("assistant", "ok")), item])
    with pytest.raises(FinetuneError, match=message):
        read_conversations(path)


def test_a_conversation_longer_than_the_context_is_refused_or_cut(tmp_path):
    long = Conversation((("user", "hi"), ("assistant", "the robot " * 40)), "f.jsonl:7")
    short = Conversation((("user", "hi"), ("assistant", "the robot")), "f.jsonl:8")
    with pytest.raises(FinetuneError, match=r"f\.jsonl:7: \d+ tokens, longer than the context of 32 \+ 1; .*--truncate"):
        encode_all([short, long], ENC, VOCAB, 32, False, print)
    said = []
    examples = encode_all([short, long], ENC, VOCAB, 32, True, said.append)
    assert len(examples) == 2 and len(examples.ids[1]) == 33 and said == ["data: truncated 1 conversation to the context of 32 tokens"]
    # Cut before the assistant speaks: nothing left to learn, so it is dropped, and said so.
    early = Conversation((("user", "the turtle " * 40), ("assistant", "x")), "f.jsonl:9")
    examples = encode_all([short, early], ENC, VOCAB, 32, True, said.append)
    assert len(examples) == 1 and "dropped 1 left with no assistant token" in said[-1]


def test_hold_out_is_spread_and_deterministic():
    conversations = [Conversation((("user", str(k)), ("assistant", "a")), f"f:{k}") for k in range(200)]
    train, val = hold_out(conversations, 0.05)
    assert [c.where for c in val] == [f"f:{k}" for k in range(0, 200, 20)] and len(train) == 190
    assert hold_out(conversations[:3], 0.05)[1] == [conversations[0]], "at least one when there are two or more"


# --- end to end --------------------------------------------------------------------------

MODEL = {"vocab_size": 1024, "dim": 32, "n_layers": 2, "n_heads": 2, "n_kv_heads": 1, "ffn_dim": 64,
         "context_length": 256, "rope_theta": 10000.0, "norm_eps": 1.0e-5, "tie_embeddings": True}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny model pretrained for a few steps on generated stories (raw text in one command)."""
    from jaxmodel.corpus import generate_corpus, qa_examples, write_examples

    root = tmp_path_factory.mktemp("sft")
    (root / "stories.txt").write_text("<|endoftext|>".join(generate_corpus(1000, seed=5)), encoding="utf-8")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": MODEL, "train": {"steps": 2, "batch_size": 4, "warmup_steps": 1, "eval_every": 0}}))
    run = subprocess.run([sys.executable, "-m", "jaxmodel.train", "--config", str(config), "--data", str(root / "stories.txt"),
                          "--run-dir", str(root / "base"), "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    write_examples(root / "qa.jsonl", qa_examples(40, seed=0))
    return root


def sft_cmd(source, data, run_dir, *extra):
    return [sys.executable, "-m", "jaxmodel.finetune", "sft", "--from", str(source), "--data", str(data), "--run-dir", str(run_dir),
            "--no-progress", "--set", "train.steps=3", "--set", "train.batch_size=4", "--set", "train.warmup_steps=1",
            "--set", "train.eval_every=3", "--set", "train.checkpoint_every=3", "--set", "train.eval_batches=1", *extra]


def test_sft_from_a_run_exports_a_chat_model_and_resumes_only_on_the_same_data(pretrained):
    root = pretrained
    run = subprocess.run(sft_cmd(root / "base", root / "qa.jsonl", root / "sft"), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "data: 38 training and 2 validation conversations" in run.stderr
    # Rows are as long as the longest conversation, not the context (256): a short set costs what it is.
    vocab = tk.load(root / "sft" / "tokenizer")
    encoding = tk.encoding(vocab)
    longest = max(len(render(c.messages, encoding, vocab)[0]) for c in read_conversations(root / "qa.jsonl"))
    assert longest - 1 < MODEL["context_length"] and f"in rows of {longest - 1} positions" in run.stderr, run.stderr
    rows = [json.loads(line) for line in (root / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and np.isfinite(rows[-1]["val_loss"])
    recorded = json.loads((root / "sft" / "config.json").read_text())
    assert recorded["kind"] == "sft" and recorded["from"]["step"] == 2

    out = root / "chat.gguf"
    export = subprocess.run([sys.executable, "-m", "jaxmodel.export", "--run-dir", str(root / "sft"), "--out", str(out), "--dtype", "q8_0"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert export.returncode == 0, export.stderr[-3000:]
    import gguf

    template = gguf.GGUFReader(out).fields["tokenizer.chat_template"].contents()
    assert "<|start_header_id|>" in template and "<|eot_id|>" in template and "add_generation_prompt" in template

    # eval-qa's greedy replies (the NumPy reference) are goengine chat's, token for token.
    from jaxmodel.finetune import chat_prompt, greedy_reply
    from jaxmodel.corpus import qa_examples, write_examples
    from jaxmodel import reference

    write_examples(root / "heldout.jsonl", qa_examples(3, seed=1))
    ev = subprocess.run([sys.executable, "-m", "jaxmodel.finetune", "eval-qa", "--model", str(out), "--data", str(root / "heldout.jsonl")],
                        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert ev.returncode == 0, ev.stderr[-3000:]
    lines = ev.stdout.splitlines()
    assert re.fullmatch(r"held-out QA accuracy: ([0-3])/3 = [\d.]+% \(answer in the greedy reply\); exact match ([0-3])/3 = [\d.]+%",
                        lines[0]), ev.stdout
    contains, exact = map(int, re.findall(r"(\d)/3", lines[0]))
    assert exact <= contains, "an exact reply is the gold reply, which contains the answer"
    # The same count per kind of question (corpus qa writes each line's "kind").
    by_kind = re.fullmatch(r"by kind of question: (.*)", lines[1]).group(1).split(", ")
    kinds = [example["kind"] for example in qa_examples(3, seed=1)]
    assert sorted(part.split()[0] for part in by_kind) == sorted(set(kinds)) and len(lines) == 2
    assert sum(int(part.split()[1].split("/")[0]) for part in by_kind) == contains
    # (F32, so that both compute the same numbers: goengine's Q8_0 kernels quantize activations too)
    f32 = root / "chat-f32.gguf"
    subprocess.run([sys.executable, "-m", "jaxmodel.export", "--run-dir", str(root / "sft"), "--out", str(f32)], check=True, cwd=ROOT,
                   capture_output=True)
    binary = root / "goengine"
    subprocess.run(["go", "build", "-o", str(binary), "./cmd/goengine"], cwd=ROOT / "goengine", check=True)
    model = reference.load_model(f32, np.float32)
    encoding = tk.encoding(model.vocab)
    lines, want = [], []
    for example in qa_examples(2, seed=1):
        message = example["messages"][0]["content"]
        want.append(encoding.decode(greedy_reply(model, chat_prompt([("user", message)], encoding, model.vocab), 16)))
        lines.append(message.replace("\n", "\\\n"))
    chat = subprocess.run([str(binary), "chat", "--model", str(f32), "--temperature", "0", "--max-tokens", "16"],
                          input="\n/reset\n".join(lines) + "\n", capture_output=True, text=True, timeout=120)
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout == "".join(w + "\n" for w in want)
    # And so are goengine serve's, through its OpenAI chat endpoint.
    with served(binary, f32) as url:
        assert serve_replies(url, [e["messages"][0]["content"] for e in qa_examples(2, seed=1)]) == want
        # eval-qa --server asks that endpoint instead of the reference, and counts the same; so does
        # --goengine, which starts its own server on the file.
        evals = [subprocess.run([sys.executable, "-m", "jaxmodel.finetune", "eval-qa", *by, "--data", str(root / "heldout.jsonl"),
                                 "--show", "3"], capture_output=True, text=True, cwd=ROOT, timeout=300)
                 for by in (("--model", str(f32)), ("--server", url), ("--model", str(f32), "--goengine", str(binary)))]
    assert [e.returncode for e in evals] == [0, 0, 0], [e.stderr[-2000:] for e in evals]
    assert evals[2].stdout == evals[1].stdout == evals[0].stdout and evals[0].stdout.count("\nA: ") == 3
    # A server that is not there is one clear error.
    gone = subprocess.run([sys.executable, "-m", "jaxmodel.finetune", "eval-qa", "--server", url, "--data", str(root / "heldout.jsonl")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert gone.returncode == 1 and "Traceback" not in gone.stderr and "cannot reach the server" in gone.stderr, gone.stderr
    # So is a file goengine cannot serve: its own message, passed on.
    bad = subprocess.run([sys.executable, "-m", "jaxmodel.finetune", "eval-qa", "--model", str(root / "heldout.jsonl"), "--goengine",
                          str(binary), "--data", str(root / "heldout.jsonl")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "serve did not start" in bad.stderr and "GGUF" in bad.stderr, bad.stderr

    # A changed data file under the run is refused before anything is written.
    changed = root / "qa2.jsonl"
    changed.write_text((root / "qa.jsonl").read_text().replace("rabbit", "robot"))
    refused = subprocess.run(sft_cmd(root / "base", changed, root / "sft"), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr and "data: the file changed" in refused.stderr, refused.stderr
    # So is another held-out fraction (it changes the training set) or another source.
    refused = subprocess.run(sft_cmd(root / "base", root / "qa.jsonl", root / "sft", "--val-fraction", "0.2"),
                             capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert refused.returncode == 1 and "val_fraction: run has 0.05, command has 0.2" in refused.stderr, refused.stderr
    refused = subprocess.run(sft_cmd(f32, root / "qa.jsonl", root / "sft"), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert refused.returncode == 1 and "from: run has" in refused.stderr, refused.stderr

    # The exported Q8_0 file is a source too (dequantized), with its own tokenizer.
    again = subprocess.run(sft_cmd(out, root / "qa.jsonl", root / "sft-from-file", "--set", "train.trainable_blocks=1"),
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert tk.fingerprint(root / "sft-from-file" / "tokenizer") == tk.fingerprint(root / "sft" / "tokenizer")


def serve_replies(url: str, messages: list[str]) -> list[str]:
    """Greedy replies of the server at `url` to one-message conversations (eval-qa's client)."""
    from jaxmodel.finetune import server_answerer

    answer = server_answerer(url, max_tokens=16)
    return [answer([("user", message)]) for message in messages]


@pytest.mark.parametrize("extra, message", [
    (("--set", "model.dim=64"), r"--set model\.dim=64: the model comes from --from"),
    (("--set", "train.trainable_blocks=3"), r"train\.trainable_blocks \(3\) is more than the model's 2 blocks"),
    (("--set", "train.stepz=1"), r"unknown key train\.stepz"),
])
def test_sft_errors_are_one_line(pretrained, extra, message):
    import re

    root = pretrained
    run = subprocess.run(sft_cmd(root / "base", root / "qa.jsonl", root / "err", *extra), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert re.search(message, run.stderr), run.stderr
    assert not (root / "err").exists()
