"""Has a pretrained model tied each attribute to its owner? A next-word probe on the corpus.

    python -m jaxmodel.probe --model demo/model.gguf [--stories 40] [--seed 12345]

The demo's stories state an attribute early ("a small duck named Molly", "a shiny ball",
"with her mom") and name it again near the end ("Molly the small duck took the shiny ball
home to her mom", jaxmodel/corpus.py). A model that has learnt to tie the attribute to
its owner predicts the word there; one that has not guesses from the name and pronouns.
Fine-tuning for questions about stories (make demo-chat) learns the ties it has to in a
few hundred steps, and which ones is a draw, so this probe says how much of that work
pretraining has already done (spec/finetune.md §7).

For each of `--stories` stories of the pretraining grammar, the model reads the whole story
(after the <|end_of_text|> that separates documents in pretraining) once, and at every
place in its last paragraph where the story repeats the hero's kind, trait or relative,
the object's look, or the helper's kind, already said earlier, the model's most likely next
token is compared with the first token of that word. A line per attribute gives the count right.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import re
import string
import sys
from pathlib import Path

import numpy as np

from jaxmodel import corpus
from jaxmodel import tokenizer as tk

ATTRIBUTES = ("kind", "trait", "adj", "fkind", "rel")  # the fields of jaxmodel.corpus._fields probed
NAMES = {"kind": "hero's kind", "trait": "hero's trait", "adj": "object's look", "fkind": "helper's kind",
         "rel": "hero's relative"}
END_SLOTS = frozenset({"thanks", "afterwards", "recall", "ending", "the_end"})  # the last paragraph's slots


@dataclasses.dataclass(frozen=True)
class Site:
    """One place to probe: the word `field`'s value begins at character `at` of `text` (its space)."""

    field: str
    at: int
    word: str
    context: str  # the sentence up to the word, for a reader of the misses


def sites(story: corpus.Story) -> tuple[str, list[Site]]:
    """The story's text and every place in its last paragraph that repeats a probed attribute."""
    text, found, offset = story.text, [], 0
    for slot, template in story.sentences:
        sentence = template.format_map(story.fields)
        start = text.index(sentence, offset)
        offset = start + len(sentence)
        if slot not in END_SLOTS:
            continue
        for _, name, _, _ in string.Formatter().parse(template):
            if name not in ATTRIBUTES:
                continue
            head = template[: template.index("{" + name + "}")].format_map(story.fields)
            at, word = start + len(head) - 1, story.fields[name]  # at: the space before the word
            said = re.search(rf"\b{re.escape(word)}\b", text[:start]) is not None
            if said and text[at] == " ":
                found.append(Site(name, at, word, head.rstrip()))
    return text, found


def token_starts(ids: list[int], encoding) -> list[int]:
    """The character offset where each token of `ids` begins in their decoded text (the
    corpus is ASCII, so a token's bytes are its characters)."""
    starts, position = [], 0
    for token in ids:
        starts.append(position)
        position += len(encoding.decode_single_token_bytes(token))
    return starts


@dataclasses.dataclass
class Tally:
    right: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(ATTRIBUTES, 0))
    total: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(ATTRIBUTES, 0))
    misses: list[str] = dataclasses.field(default_factory=list)


def probe(model, n_stories: int = 40, seed: int = 12345) -> Tally:
    """Counts, per attribute, the probed places where `model` (a reference.Model) predicts the word."""
    from jaxmodel import reference

    encoding, vocab = tk.encoding(model.vocab), model.vocab
    rng, tally = random.Random(seed), Tally()
    for _ in range(n_stories):
        text, found = sites(corpus.make_story(rng))
        ids = encoding.encode_ordinary(text)
        if len(ids) + 1 > model.config.context_length:
            raise ValueError(f"a probe story of {len(ids)} tokens does not fit the context of {model.config.context_length}")
        logits = reference.forward(model, [vocab.eos_id, *ids])  # logits[k] predicts ids[k]
        where = {start: k for k, start in enumerate(token_starts(ids, encoding))}
        for site in found:
            k = where.get(site.at)
            if k is None:  # the word's space is inside another token: nothing to compare
                continue
            tally.total[site.field] += 1
            guess = int(np.argmax(logits[k]))
            if guess == ids[k]:
                tally.right[site.field] += 1
            else:
                said = encoding.decode([guess])
                tally.misses.append(f"{NAMES[site.field]}: {site.context!r} -> {said.strip()!r}, not {site.word!r}")
    return tally


def report(tally: Tally) -> str:
    lines = [f"{NAMES[f]:<14} {tally.right[f]:>4} / {tally.total[f]:<4}" for f in ATTRIBUTES if tally.total[f]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from jaxmodel import reference

    parser = argparse.ArgumentParser(prog="python -m jaxmodel.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a GGUF model file trained on jaxmodel.corpus stories")
    parser.add_argument("--stories", type=int, default=40, help="stories to probe (default 40)")
    parser.add_argument("--seed", type=int, default=12345, help="the stories' seed (default 12345)")
    parser.add_argument("--misses", type=int, default=0, help="print this many wrong guesses")
    args = parser.parse_args(argv)
    if args.stories < 1:
        parser.error("--stories must be at least 1")
    try:
        model = reference.load_model(args.model, np.float32)
    except (OSError, ValueError) as e:
        print(f"error: {args.model}: {e}", file=sys.stderr)
        return 1
    if model.vocab is None:
        print(f"error: {args.model}: the file has no tokenizer", file=sys.stderr)
        return 1
    try:
        tally = probe(model, args.stories, args.seed)
    except ValueError as e:  # a model whose context is shorter than a story
        print(f"error: {args.model}: {e}", file=sys.stderr)
        return 1
    print(report(tally))
    for line in tally.misses[: args.misses]:
        print("  miss:", line)
    return 0


if __name__ == "__main__":
    from jaxmodel import cli

    sys.exit(cli.run(main))
