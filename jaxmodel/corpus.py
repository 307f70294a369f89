"""The demo's training text: short children's stories generated from a small grammar.

    python -m jaxmodel.corpus --out data/stories.txt [--stories 20000] [--seed 0]
    python -m jaxmodel.corpus qa --out qa.jsonl [--stories 2000] [--seed 0]
    python -m jaxmodel.corpus classify --out labelled.jsonl [--stories 2000] [--seed 0]

`make demo` trains a ~1M-parameter model (vocab 2048, context 256) for a few minutes on
two CPU cores and asks it to continue "Once upon a time". Real prose is too varied for
that budget, and copying someone's stories is not ours to do, so the text is generated
here from word lists and templates written for this file. The grammar is shaped by
what such a model can learn in minutes:

- Coherence is the lesson. Each story picks a hero (name, kind, pronouns, home), a
  helper and one object, and every sentence reuses them: the hero's name appears from
  the opening to the last line, the object is lost, sought and found by name. A model
  that copies the name and object forward has learnt the long-range structure; one that
  does not visibly mixes characters.
- Every attribute a question asks about recurs. A character's kind and trait and the
  object's colour are written before the name or noun they belong to ("a happy girl
  named Rosa", "a shiny bucket"). Said once, nothing in a story needs them again, and
  neither pretraining nor make demo-chat's few hundred steps of fine-tuning reliably
  teach the model to tie them to their owner: it answers "What color was the bucket?"
  with a colour, not the bucket's. So the characters' words repeat them ("I lost my
  shiny bucket", "She was very happy"), every thanking sentence names the hero with its
  kind and every offer of help the helper ("Rosa the girl smiled a big smile", "said Sam
  the bear": said in one of three such sentences, the tie of kind to name was a draw of
  pretraining; said in all, it came fully in five draws of six), and a sentence near the
  end names everyone again (RECALLS: "Rosa the happy girl took the shiny bucket home to
  her grandpa"). spec/finetune.md §7 has the runs.
- Pronouns are never ambiguous. The helper's pronouns (he/she/it) always differ from
  the hero's, and relatives are never referred to by a pronoun, so every he/she/his/her
  in a story points at exactly one character — a rule the tests check.
- A small vocabulary: about 300 distinct words, so a 2048-token BPE gives almost every
  word its own token and the model spends its capacity on order, not spelling.
- Enough variety not to be one template: several openings (about 90% start "Once upon a
  time", the demo's prompt), five plots (lost, broken, stuck, afraid, hungry) with a
  few wordings for each step, and several endings.
- Stories are 80-220 words, about one context window of tokens.
- Deterministic: one `random.Random(seed)` drives everything, so a seed names a corpus
  byte for byte. Another seed is another corpus (use one for a separate val file).

The file format is TinyStories' plain text: stories separated by a line
`<|endoftext|>`, which jaxmodel.tokenizer and jaxmodel.shards split on.

Fine-tuning sets (`qa`, `classify`; `qa_examples`, `classify_examples`) are JSON Lines about
the same stories, retold in seven of their sentences (`short_text`: opening, object,
problem, helper, their words, fix, ending) so that an example fits the demo's 256-token
context: at most MAX_WORDS = 170 words are read, which the demo's 1,024-token tokenizer makes
at most ~185 tokens for a labelled text and ~220 for a whole conversation with its chat headers.

- `qa`: `{"messages": [user, assistant], "answer": A, "kind": K}`. The user asks one question after the
  story (who it is about, what the hero is, where it lives and with whom, what it got and
  what that was like, who helped and what it is, what went wrong, how it was fixed, how it
  ended); the assistant answers in one short sentence that contains A, and A is a phrase of
  the story. Answers come from the Story's fields, or from the very sentence asked about.
- `classify`: `{"text": STORY, "label": L}`, L the plot, one of CLASSIFY_LABELS: lost,
  broken, stuck, afraid, hungry. Plots are drawn uniformly, so the classes are balanced, and
  the problem sentence decides the label: only a lost story says "was gone" or "was not
  there", only a broken one "broke", a stuck one "stuck", an afraid one "afraid", a hungry
  one "hungry".

Seeds: each set draws its stories from a stream of its own (`random.Random("qa-3")` for
`qa --seed 3`), apart from the pretraining corpus's and from each other's; the same seed
writes the same bytes. Train on one seed and hold out another (train `--seed 0`, evaluate
`--seed 1`): a story repeats across seeds only by chance (none among 20,000 of seed 0 and
20,000 of seed 1), and `shared_stories(a, b)` lists the stories two sets have in common.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
import random
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from jaxmodel.documents import json_lines
from jaxmodel.tokenizer import DOCUMENT_SEPARATOR

SEPARATOR = f"\n{DOCUMENT_SEPARATOR}\n"  # between two stories; never before the first or after the last


# --- characters ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pronouns:
    """The three forms a story needs: "she ran", "hugged her", "her ball"."""

    subject: str
    object: str
    possessive: str

    @property
    def words(self) -> frozenset[str]:
        return frozenset((self.subject, self.object, self.possessive))


HE = Pronouns("he", "him", "his")
SHE = Pronouns("she", "her", "her")
IT = Pronouns("it", "it", "its")

NAMES = {
    SHE: ("Lily", "Mia", "Lucy", "Emma", "Anna", "Sara", "Zoe", "Ruby", "Ella", "Rosa", "Daisy", "Molly"),
    HE: ("Tom", "Max", "Ben", "Sam", "Leo", "Jack", "Tim", "Finn", "Oscar", "Hugo", "Toby", "Ollie"),
    IT: ("Beep", "Bolt", "Zip", "Dot"),
}
ALL_NAMES = frozenset(name for names in NAMES.values() for name in names)

PEOPLE_HOMES = ("a small house", "a big house", "a little village", "a quiet town", "a farm", "a house by the sea")
ANIMAL_HOMES = ("a big forest", "a green forest", "a farm", "a little hole under a tree", "a quiet village", "a garden")
FAMILY = ("mom", "dad", "grandma", "grandpa")


@dataclasses.dataclass(frozen=True)
class Kind:
    """What a character is, which pronouns fit it, and where and with whom it can live."""

    name: str
    pronouns: tuple[Pronouns, ...]
    homes: tuple[str, ...]
    relatives: tuple[str, ...] = FAMILY


KINDS = (
    Kind("girl", (SHE,), PEOPLE_HOMES),
    Kind("boy", (HE,), PEOPLE_HOMES),
    Kind("robot", (IT,), ("a small workshop", "a quiet town"), ("maker",)),
    *(Kind(animal, (HE, SHE), ANIMAL_HOMES) for animal in ("cat", "dog", "rabbit", "bear", "fox", "mouse", "duck", "bird")),
)


@dataclasses.dataclass(frozen=True)
class Character:
    """One character of a story: every mention of it is rendered from these fields."""

    name: str
    kind: str
    pronouns: Pronouns
    home: str
    relative: str


# --- the plot grammar ---------------------------------------------------------------------
# Templates are str.format strings over the fields of `_fields`: N/F are the hero's and
# the helper's names; he/him/his (and He/His at a sentence start) the hero's pronouns,
# fhe/fhim/fhis/fHe the helper's; obj the object, a_obj "a red ball".

OPENINGS = (  # (weight, template); "Once upon a time" is the demo's prompt
    (3, "Once upon a time, there was {a_trait} {kind} named {N}. {N} lived in {home} with {his} {rel}."),
    (3, "Once upon a time, {a_trait} {kind} named {N} lived in {home} with {his} {rel}."),
    (3, "Once upon a time, in {home}, there lived {a_trait} {kind} named {N}. {He} lived there with {his} {rel}."),
    (1 / 3, "Long ago, there was {a_trait} {kind} named {N}. {N} lived in {home} with {his} {rel}."),
    (1 / 3, "There was once {a_trait} {kind} named {N}, who lived in {home} with {his} {rel}."),
    (1 / 3, "One sunny morning, {a_trait} {kind} named {N} woke up in {home}. {N} lived there with {his} {rel}."),
)
OPENING_STARTS = ("Once upon a time", "Long ago", "There was once", "One sunny morning")
TRAITS = ("little", "small", "happy", "kind", "brave", "curious", "shy", "funny", "clever")
HOBBIES = ("play in the grass", "run and jump", "sing songs", "look at the stars", "draw pictures",
           "play games", "dance in the sun", "read books", "build things")
LIKES = (
    "{N} loved to {hobby}.",
    "Every day, {N} liked to {hobby}.",
    "{He} was very {trait}, and {he} loved to {hobby}.",
)
GETS_OBJECT = (
    "One day, {N} found {a_obj} in the {place}. {He} loved it very much.",
    "One day, {his} {rel} gave {him} {a_obj}. {N} loved the {obj} and took it everywhere.",
    "{N} had {a_obj}. It was {his} favorite thing in the whole world.",
    "One morning, {N} saw {a_obj} next to the door. {He} picked it up and smiled.",
)
PLACES = ("park", "garden", "meadow", "yard")
COLORS = ("red", "blue", "yellow", "green", "pink", "shiny", "pretty", "new", "old", "big", "little")
SPOTS = ("bush", "tree", "rock", "bench", "log", "flowers", "leaves", "fence")

MEETS_HELPER = (
    "Just then, {a_fkind} named {F} came by.",
    "Then {N} met {a_fkind} named {F}.",
    "Soon, {N} heard a voice. It was {F}, a friendly {fkind}.",
    "Just then, {N}'s friend {F} the {fkind} came to play.",
)
OFFERS_HELP = (
    '"Do not worry. I will help you," said {F} the {fkind}.',
    '"I can help you," said {F} the {fkind}.',
    '"Let\'s do it together," said {F} the {fkind}.',
)


@dataclasses.dataclass(frozen=True)
class Plot:
    """A problem, the hero's words for it, and ways the helper solves it."""

    name: str
    objects: tuple[str, ...]  # the objects this problem makes sense for
    problems: tuple[str, ...]
    asks: tuple[str, ...]  # the helper asks, the hero answers
    fixes: tuple[tuple[str, tuple[str, ...]], ...]  # (template, helper kinds it needs, or () for any)


PLOTS = (
    Plot(
        "lost",
        ("ball", "kite", "hat", "boat", "teddy bear", "toy car", "drum", "book", "shell", "key", "cup"),
        (
            "{N} took the {obj} to the {place} to play. {He} played all morning. But when {he} looked again, the {obj} was gone! {N} was very sad.",
            "One afternoon, {N} played with the {obj} in the {place}. Then {he} went to drink some water. When {he} came back, the {obj} was not there! {N} started to cry.",
        ),
        (
            '"Why are you sad, {N}?" asked {F}. "I lost my {adj} {obj}," said {N}.',
            '"What is wrong?" asked {F}. "I can not find my {adj} {obj}," {N} said.',
        ),
        (
            ("{F} and {N} looked under the {spot1} and behind the {spot2}. They looked everywhere. At last, {F} saw something {adj} next to the {spot3}. It was the {obj}!", ()),
            ("They looked in the grass and near the {spot1}, but the {obj} was not there. Then {N} looked behind the {spot2}. There was the {adj} {obj}!", ()),
            ("{F} put {fhis} nose to the ground and sniffed. Sniff, sniff! {fHe} ran to the {spot1} and found the {obj} there.", ("dog", "fox", "bear", "mouse")),
        ),
    ),
    Plot(
        "broken",
        ("kite", "boat", "toy car", "drum", "cup", "lamp", "box", "basket"),
        (
            "One day, {N} dropped the {obj}, and it broke. Now the {obj} had a big crack. {N} started to cry.",
            "One day, {N} was playing with the {obj} when it fell and broke into two pieces. {N} was very sad.",
        ),
        (
            '"Why are you crying?" asked {F}. "My {adj} {obj} is broken," said {N}.',
            '"What is wrong, {N}?" asked {F}. "I broke my {adj} {obj}," said {N}.',
        ),
        (
            ("{F} had an idea. {fHe} got some glue and some tape. Together, they fixed the {obj} piece by piece. Soon the {obj} looked as good as new.", ()),
            ('{F} said, "My {frel} can fix anything." They took the {obj} to {fhis} {frel}, who fixed it with glue. When they were done, the {obj} was like new again.', ()),
        ),
    ),
    Plot(
        "stuck",
        ("kite", "ball", "hat", "balloon", "blanket"),
        (
            "One windy day, {N} played with the {obj} in the {place}. A big wind came and blew the {obj} up into a tall tree. It was stuck! {N} could not reach it.",
            "One day, {N} threw the {obj} up high. It went up and up and got stuck in a tall tree. {N} jumped, but {he} could not reach it.",
        ),
        (
            '"What is wrong?" asked {F}. "My {adj} {obj} is stuck in the tree," said {N}.',
            '"Why are you sad, {N}?" asked {F}. "My {adj} {obj} is up in the tree, and I can not get it," said {N}.',
        ),
        (
            ("{F} tried to climb the tree, but it was too tall. Then {fhe} had an idea. {fHe} got a long stick and pushed the {obj} off the branch. It fell down into {N}'s arms.", ()),
            ("{F} flapped {fhis} wings and flew up to the branch. {fHe} took the {obj} and brought it down to {N}.", ("bird",)),
            ("{F} was big and tall. {fHe} stood on {fhis} back legs and pulled the {obj} down.", ("bear",)),
            ("{N} stood on a big box, and {F} held the box so it did not fall. {N} reached up and got the {obj}.", ()),
        ),
    ),
    Plot(
        "afraid",
        ("lamp", "blanket", "teddy bear", "book"),
        (
            "One night, there was a big storm. The wind was loud, and the sky was dark. {N} was afraid. {He} held {his} {obj} and did not move.",
            "One night, the lights went out, and the house was very dark. {N} was afraid of the dark. {He} held {his} {obj} close.",
        ),
        (
            '"Are you okay, {N}?" asked {F}. "I am scared," said {N}.',
            '"What is wrong?" asked {F}. "It is so dark, and I am afraid," said {N}.',
        ),
        (
            ("{F} sat next to {N} and told {him} a funny story. {N} laughed. Soon {he} was not afraid anymore, and the night did not seem so dark.", ()),
            ('{F} held the {obj} with {N} and said, "Let\'s be brave together." They sang a happy song until the morning came.', ()),
        ),
    ),
    Plot(
        "hungry",
        ("basket", "bucket", "box", "hat", "cup"),
        (
            "One day, {N} was very hungry, but there was no food at home. {N} felt sad.",
            "One morning, {N} woke up very hungry. {His} tummy made a loud noise, but the kitchen was empty.",
        ),
        (
            '"What is wrong?" asked {F}. "I am so hungry," said {N}.',
            '"Why are you sad, {N}?" asked {F}. "There is no food, and I am hungry," said {N}.',
        ),
        (
            ('{F} said, "I know where to find berries!" {N} took {his} {obj}, and they went to the woods together. They picked many red berries and put them in the {obj}. Then they ate until they were full.', ()),
            ("{F} took {N} to a big apple tree. They picked apples and carried them home in {N}'s {obj}. That night, they ate apples together.", ()),
        ),
    ),
)

THANKS = (
    '{N} the {kind} was so happy. "Thank you, {F}!" {he} said.',
    "{N} the {kind} smiled a big smile. {He} gave {F} a big hug.",
    "{N} the {kind} felt happy again. {He} thanked {F} for {fhis} help.",
)
AFTERWARDS = (
    '{F} smiled too. "That is what friends are for," {fhe} said.',
    "That evening, {N} told {his} {rel} all about {F}.",
    "{N} ran home and showed the {adj} {obj} to {his} {rel}.",
)
# Near the end, a sentence that names again who everyone is and what the object looked like
# (see the module docstring: every attribute a question asks about recurs).
RECALLS = (
    "{N} the {trait} {kind} took the {adj} {obj} home to {his} {rel}.",
    "{F} the {fkind} walked the {trait} {kind} home to {home} with the {adj} {obj}.",
    "That night, the {trait} {kind} told {his} {rel} about {F} the {fkind} and the {adj} {obj}.",
)
ENDINGS = (
    "From that day on, {N} and {F} were best friends.",
    "From that day on, {N} always kept {his} {obj} close.",
    "From that day on, {N} knew that friends help each other.",
    "After that day, {N} and {F} played together every day.",
    "After that day, {N} learned that it is good to ask for help.",
)
ENDING_STARTS = ("From that day on,", "After that day,", "The end.")


# --- the story ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Story:
    """One generated story: who and what it is about, and its paragraphs."""

    hero: Character
    helper: Character
    object: str
    plot: str
    paragraphs: tuple[str, ...]
    # What the paragraphs were rendered from, so that a shorter telling (`short_text`) and
    # questions about the story can be made from the same choices: (slot, template) per
    # sentence in order, and the values the templates were filled with.
    sentences: tuple[tuple[str, str], ...] = ()
    fields: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)

    def template(self, slot: str) -> str | None:
        """The template of the story's sentence in `slot` ("opening", "gets", ...), or None."""
        return next((t for s, t in self.sentences if s == slot), None)

    def sentence(self, slot: str) -> str | None:
        """The rendered sentence in `slot`, or None if the story has none there."""
        template = self.template(slot)
        return None if template is None else template.format_map(self.fields)


def _article(phrase: str) -> str:
    """'a red ball', 'an old key'."""
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _character(rng: random.Random, kinds: Iterable[Kind], pronouns: Iterable[Pronouns]) -> Character:
    """A character of one of `kinds` whose pronouns are one of `pronouns`."""
    pronouns = tuple(pronouns)
    kind = rng.choice([k for k in kinds if any(p in pronouns for p in k.pronouns)])
    chosen = rng.choice([p for p in kind.pronouns if p in pronouns])
    return Character(rng.choice(NAMES[chosen]), kind.name, chosen, rng.choice(kind.homes), rng.choice(kind.relatives))


def _fields(hero: Character, helper: Character, obj: str, rng: random.Random) -> dict[str, str]:
    """Every value a template may name; the random extras (places, spots) are fixed per story."""
    h, f = hero.pronouns, helper.pronouns
    adj = rng.choice(COLORS)
    spots = rng.sample(SPOTS, 3)
    return {
        "N": hero.name, "kind": hero.kind, "home": hero.home, "rel": hero.relative,
        "he": h.subject, "He": h.subject.capitalize(), "him": h.object, "his": h.possessive, "His": h.possessive.capitalize(),
        "F": helper.name, "fkind": helper.kind, "a_fkind": _article(helper.kind), "frel": helper.relative,
        "fhe": f.subject, "fHe": f.subject.capitalize(), "fhim": f.object, "fhis": f.possessive,
        "obj": obj, "adj": adj, "a_obj": _article(f"{adj} {obj}"),
        # trait2 is no template's any more; its draw stays so that a seed still names the corpus
        # that make demo-chat was measured on (spec/finetune.md §7).
        "a_trait": _article(trait := rng.choice(TRAITS)), "trait": trait, "trait2": rng.choice(TRAITS[2:]), "hobby": rng.choice(HOBBIES),
        "place": rng.choice(PLACES), "spot1": spots[0], "spot2": spots[1], "spot3": spots[2],
    }


def _weighted(rng: random.Random, options: tuple[tuple[float, str], ...]) -> str:
    return rng.choices([text for _, text in options], weights=[w for w, _ in options])[0]


def make_story(rng: random.Random) -> Story:
    """One story as a `Story`: a hero, a helper with other pronouns, an object and a plot."""
    hero_kind = rng.choice(KINDS)
    hero = _character(rng, [hero_kind], hero_kind.pronouns)
    helper = _character(rng, [k for k in KINDS if k.name != hero.kind], [p for p in (HE, SHE, IT) if p != hero.pronouns])
    plot = rng.choice(PLOTS)
    obj = rng.choice(plot.objects)
    fields = _fields(hero, helper, obj, rng)
    fixes = [text for text, needs in plot.fixes if not needs or helper.kind in needs]
    # The draws below are in the order that names a corpus byte for byte: do not reorder them.
    setup = [("opening", _weighted(rng, OPENINGS)), ("likes", rng.choice(LIKES)), ("gets", rng.choice(GETS_OBJECT))]
    middle = [("problem", rng.choice(plot.problems)), ("meets", rng.choice(MEETS_HELPER)), ("asks", rng.choice(plot.asks)),
              ("offers", rng.choice(OFFERS_HELP)), ("fix", rng.choice(fixes))]
    end = [("thanks", rng.choice(THANKS)), *(("afterwards", t) for t in rng.sample(AFTERWARDS, rng.randint(0, 1))),
           ("recall", rng.choice(RECALLS)), ("ending", rng.choice(ENDINGS))]
    if rng.random() < 0.3:
        end.append(("the_end", "The end."))
    paragraphs = tuple(" ".join(t.format_map(fields) for _, t in part) for part in (setup, middle, end))
    return Story(hero, helper, obj, plot.name, paragraphs, tuple(setup + middle + end), fields)


def generate_story(rng: random.Random) -> str:
    """The text of one story drawn from `rng`."""
    return make_story(rng).text


def generate_corpus(n_stories: int, seed: int = 0) -> Iterator[str]:
    """`n_stories` story texts, the same for the same seed."""
    rng = random.Random(seed)
    for _ in range(n_stories):
        yield generate_story(rng)


def words(text: str) -> list[str]:
    """The words of a text as the vocabulary counts them: lowercase runs of letters."""
    return re.findall(r"[a-z]+", text.lower())


# --- the file -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CorpusStats:
    """What `write_corpus` wrote."""

    stories: int
    bytes: int
    distinct_words: int


def write_corpus(path: str | os.PathLike, n_stories: int, seed: int = 0) -> CorpusStats:
    """Writes `n_stories` stories to `path`, separated by `<|endoftext|>` lines.

    The file is written beside its destination and renamed into place, so a reader never
    sees half a corpus. It is the stories joined by SEPARATOR plus a final newline.
    """
    if n_stories <= 0:
        raise ValueError(f"n_stories must be at least 1, got {n_stories}")
    path = Path(path)
    stories = list(generate_corpus(n_stories, seed))
    data = (SEPARATOR.join(stories) + "\n").encode("utf-8")
    vocabulary = set(words(" ".join(stories)))
    _write_atomically(path, data)
    return CorpusStats(n_stories, len(data), len(vocabulary))


def _write_atomically(path: Path, data: bytes) -> None:
    if path.exists() and not path.is_file():  # /dev/stdout, a pipe: write through, never replace it
        with open(path, "wb") as f:
            f.write(data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_corpus(path: str | os.PathLike) -> list[str]:
    """The stories of a file written by `write_corpus` (the exact inverse)."""
    text = Path(path).read_text(encoding="utf-8")
    return text.removesuffix("\n").split(SEPARATOR)


# --- fine-tuning sets ---------------------------------------------------------------------
# Both sets retell each story in SHORT_SLOTS only, so that a story, a question and its answer
# fit the demo's 256-token context with room to spare. The sentences kept include every one
# that a question below is answered from.

SHORT_SLOTS = (("opening", "gets"), ("problem", "meets", "asks", "fix"), ("ending",))  # three paragraphs
MAX_WORDS = 170  # words of a QA user message (story and question) or of a labelled text, at most


def short_text(story: Story) -> str:
    """The story in the sentences of SHORT_SLOTS: opening, object, problem, helper, their words, fix, ending."""
    return "\n\n".join(" ".join(story.sentence(slot) for slot in part) for part in SHORT_SLOTS)


# Questions are (question, reply, answer) templates over the story's fields plus `_qa_fields`.
# The answer is a phrase of the short text and of the reply, so a reply can be checked by
# looking for it. Questions about one sentence are keyed by that sentence's template: the
# question then asks about exactly what the story says.
QUESTIONS = {
    "hero": (
        ("Who is the story about?", "The story is about {N}.", "{N}"),
        ("Who is this story about?", "This story is about {N}.", "{N}"),
        ("What is the name of the {kind} in the story?", "The {kind} is named {N}.", "{N}"),
    ),
    "kind": (
        ("What is {N}?", "{N} is {a_kind}.", "{kind}"),
        ("What kind of character is {N}?", "{N} is {a_kind}.", "{kind}"),
    ),
    "trait": (("What was {N} like?", "{N} was {trait}.", "{trait}"),),
    "home": (
        ("Where does {N} live?", "{N} lives in {home}.", "{home}"),
        ("Where did {N} live?", "{N} lived in {home}.", "{home}"),
    ),
    "relative": (("Who did {N} live with?", "{N} lived with {his} {rel}.", "{his} {rel}"),),
    "adj": (
        ("What color was the {obj}?", "The {obj} was {adj}.", "{adj}"),
        ("What color was {N}'s {obj}?", "It was {adj}.", "{adj}"),
    ),
    "adj_other": (("What was the {obj} like?", "The {obj} was {adj}.", "{adj}"),),  # for the adjectives that are not colors
    "helper": (
        ("Who helped {N}?", "{F} helped {N}.", "{F}"),
        ("Who came to help {N}?", "{F} came to help.", "{F}"),
        ("What is the name of the {fkind} in the story?", "The {fkind} is named {F}.", "{F}"),
    ),
    "helper_kind": (
        ("What is {F}?", "{F} is {a_fkind}.", "{fkind}"),
        ("What kind of character helped {N}?", "{a_fkind_cap} helped {N}.", "{fkind}"),
    ),
}
REAL_COLORS = ("red", "blue", "yellow", "green", "pink")
GETS_QUESTIONS = dict(zip(GETS_OBJECT, (
    ("What did {N} find in the {place}?", "{N} found {a_obj}.", "{obj}"),
    ("What did {N}'s {rel} give {him}?", "{His} {rel} gave {him} {a_obj}.", "{obj}"),
    ("What was {N}'s favorite thing?", "{N}'s favorite thing was the {adj} {obj}.", "{obj}"),
    ("What did {N} see next to the door?", "{N} saw {a_obj}.", "{obj}"),
)))
PROBLEM_QUESTIONS = dict(zip([t for plot in PLOTS for t in plot.problems], (
    ("What happened to the {obj}?", "The {obj} was gone.", "gone"),  # lost
    ("What happened to the {obj} when {N} came back?", "The {obj} was not there.", "not there"),
    ("What happened to the {obj}?", "{N} dropped the {obj}, and it broke.", "broke"),  # broken
    ("What happened to the {obj}?", "It broke into two pieces.", "two pieces"),
    ("Where did the {obj} get stuck?", "The {obj} was stuck in a tall tree.", "a tall tree"),  # stuck
    ("Where did the {obj} get stuck?", "The {obj} got stuck in a tall tree.", "a tall tree"),
    ("Why was {N} afraid?", "There was a big storm.", "a big storm"),  # afraid
    ("What was {N} afraid of?", "{N} was afraid of the dark.", "the dark"),
    ("How did {N} feel?", "{N} was very hungry.", "hungry"),  # hungry
    ("How did {N} feel that morning?", "{N} was very hungry.", "hungry"),
), strict=True))
FIX_QUESTIONS = dict(zip([t for plot in PLOTS for t, _ in plot.fixes], (
    ("Where was the {obj}?", "The {obj} was next to the {spot3}.", "{spot3}"),  # lost
    ("Where did {N} find the {obj}?", "{N} found it behind the {spot2}.", "{spot2}"),
    ("Where did {F} find the {obj}?", "{F} found it at the {spot1}.", "{spot1}"),
    ("How did they fix the {obj}?", "They fixed it with some glue and some tape.", "glue"),  # broken
    ("Who fixed the {obj}?", "{F}'s {frel} fixed it.", "{frel}"),
    ("How did {F} get the {obj} down?", "{F} pushed it off the branch with a long stick.", "a long stick"),  # stuck
    ("How did {F} get the {obj}?", "{F} flew up to the branch.", "flew"),
    ("How did {F} reach the {obj}?", "{F} stood on {fhis} back legs.", "back legs"),
    ("What did {N} stand on?", "{N} stood on a big box.", "a big box"),
    ("What did {F} tell {N}?", "{F} told {N} a funny story.", "a funny story"),  # afraid
    ("What did {N} and {F} sing?", "They sang a happy song.", "a happy song"),
    ("What did they pick?", "They picked many red berries.", "berries"),  # hungry
    ("What did they pick?", "They picked apples.", "apples"),
), strict=True))
ENDING_QUESTIONS = dict(zip(ENDINGS, (
    ("How does the story end?", "{N} and {F} became best friends.", "best friends"),
    ("How does the story end?", "From that day on, {N} always kept {his} {obj} close.", "kept {his} {obj} close"),
    ("What did {N} learn?", "{N} learned that friends help each other.", "friends help each other"),
    ("What did {N} and {F} do after that day?", "They played together every day.", "played together every day"),
    ("What did {N} learn?", "{N} learned that it is good to ask for help.", "it is good to ask for help"),
), strict=True))
QUESTION_KINDS = ("hero", "kind", "trait", "home", "relative", "adj", "helper", "helper_kind", "gets", "problem", "fix", "ending")
# The kinds whose answer is an attribute written once in the story (the hero's kind, trait,
# home and family, the object's look, the helper's kind, where or how it was fixed). A
# small model learns these lookups last and suddenly; the others (names, and sentences
# each plot template decides) it gets right within a few hundred steps. `qa --lookup-weight
# W` draws these W times as often for a training set (the demo: 3); a held-out set keeps
# every kind equally likely.
LOOKUP_KINDS = frozenset({"kind", "trait", "home", "relative", "adj", "helper_kind", "fix"})


def _qa_fields(story: Story) -> dict[str, str]:
    fields = dict(story.fields)
    fields["a_kind"] = _article(story.hero.kind)
    fields["a_fkind_cap"] = fields["a_fkind"].capitalize()
    return fields


def questions(story: Story, kind: str) -> tuple[tuple[str, str, str], ...]:
    """The (question, reply, answer) choices of one QUESTION_KINDS kind, filled in for `story`."""
    if kind == "adj" and story.fields["adj"] not in REAL_COLORS:
        kind = "adj_other"
    by_sentence = {"gets": GETS_QUESTIONS, "problem": PROBLEM_QUESTIONS, "fix": FIX_QUESTIONS, "ending": ENDING_QUESTIONS}
    templates = (by_sentence[kind][story.template(kind)],) if kind in by_sentence else QUESTIONS[kind]
    fields = _qa_fields(story)
    return tuple(tuple(t.format_map(fields) for t in triple) for triple in templates)


def qa_example(story: Story, rng: random.Random, n_questions: int = 1, lookup_weight: float = 1.0) -> dict:
    """One conversation about `story`: a question of a kind drawn from `rng` and its answer,
    then (n_questions > 1) follow-up questions of other kinds, each a turn of its own; a kind
    of LOOKUP_KINDS is drawn `lookup_weight` times as often as another.
    "answer" is the last question's: the one a model answers from the turns before it, and
    "kind" that question's kind (QUESTION_KINDS), so an evaluation can say which fail."""
    if lookup_weight == 1.0:  # the draws of the sets written before weights existed
        kinds = [rng.choice(QUESTION_KINDS)] if n_questions == 1 else rng.sample(QUESTION_KINDS, n_questions)
    else:
        weights = [lookup_weight if k in LOOKUP_KINDS else 1.0 for k in QUESTION_KINDS]
        kinds = []
        while len(kinds) < n_questions:  # without replacement: each question of another kind
            kind = rng.choices(QUESTION_KINDS, weights=weights)[0]
            if kind not in kinds:
                kinds.append(kind)
    messages, answer = [], None
    for k, kind in enumerate(kinds):
        question, reply, answer = rng.choice(questions(story, kind))
        content = f"{short_text(story)}\n\n{question}" if k == 0 else question
        messages += [{"role": "user", "content": content}, {"role": "assistant", "content": reply}]
    return {"messages": messages, "answer": answer, "kind": kinds[-1]}


def qa_examples(n: int, seed: int = 0, n_questions: int = 1, lookup_weight: float = 1.0) -> Iterator[dict]:
    """`n` reading-comprehension conversations (of `n_questions` questions each), the same for the same seed.

    The stories come from their own stream, `random.Random(f"qa-{seed}")`, so they are not
    the stories of `generate_corpus(..., seed)` nor of `classify_examples(..., seed)`.
    """
    rng = random.Random(f"qa-{seed}")
    for _ in range(n):
        yield qa_example(make_story(rng), rng, n_questions, lookup_weight)


def chat_demo_input(seed: int, kinds: tuple[str, str] = ("kind", "home")) -> tuple[str, list[str]]:
    """Input for `goengine chat` on stdin asking two questions about one new story, and
    their answers: the first message is the story, a blank line and a question, its lines
    joined by chat's trailing-backslash continuation; the second a follow-up question in
    the same conversation (as in `qa --questions N`)."""
    story = make_story(random.Random(f"chat-{seed}"))
    lines, answers = [], []
    for k, kind in enumerate(kinds):
        question, _, answer = questions(story, kind)[0]
        message = f"{short_text(story)}\n\n{question}" if k == 0 else question
        lines.append(message.replace("\n", "\\\n"))
        answers.append(answer)
    return "\n".join(lines) + "\n", answers


CLASSIFY_LABELS = tuple(plot.name for plot in PLOTS)  # ("lost", "broken", "stuck", "afraid", "hungry")


def classify_examples(n: int, seed: int = 0) -> Iterator[dict]:
    """`n` stories labelled with their plot (one of CLASSIFY_LABELS), the same for the same seed.

    Stories come from `random.Random(f"classify-{seed}")`, a stream of their own as in `qa_examples`.
    """
    rng = random.Random(f"classify-{seed}")
    for _ in range(n):
        story = make_story(rng)
        yield {"text": short_text(story), "label": story.plot}


def story_of(example: dict) -> str:
    """The story an example is about: its "text", or its user message without the question."""
    if "text" in example:
        return example["text"]
    return example["messages"][0]["content"].rsplit("\n\n", 1)[0]


def shared_stories(a: Iterable[dict], b: Iterable[dict]) -> set[str]:
    """The stories that occur in both sets of examples: check a held-out set with it."""
    return {story_of(e) for e in a} & {story_of(e) for e in b}


def example_words(example: dict) -> int:
    """Words the model reads: a QA user message (story and question) or a labelled text."""
    return len(words(example["text"] if "text" in example else example["messages"][0]["content"]))


@dataclasses.dataclass(frozen=True)
class ExampleStats:
    """What `write_examples` wrote; words as `example_words` counts them."""

    examples: int
    bytes: int
    max_words: int
    mean_words: float


def write_examples(path: str | os.PathLike, examples: Iterable[dict]) -> ExampleStats:
    """Writes `examples` to `path` as JSON Lines, one example a line, atomically as `write_corpus` does."""
    examples = list(examples)
    if not examples:
        raise ValueError("no examples to write: ask for at least 1")
    data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples).encode("utf-8")
    _write_atomically(Path(path), data)
    lengths = [example_words(e) for e in examples]
    return ExampleStats(len(examples), len(data), max(lengths), sum(lengths) / len(lengths))


def read_examples(path: str | os.PathLike) -> list[dict]:
    """The examples of a file written by `write_examples`."""
    return [item for _, item in json_lines(Path(path))]


# --- command line -------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, no usage dump: the project's error style."""
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


FINETUNE_COMMANDS = {"qa": (qa_examples, "conversations"), "classify": (classify_examples, "labelled stories")}


def main(argv: list[str]) -> int:
    if argv and argv[0] in FINETUNE_COMMANDS:
        return _finetune_main(argv[0], argv[1:])
    if argv and argv[0] == "chat-demo":  # make demo-chat: stdin for goengine chat
        parser = _Parser(prog="python -m jaxmodel.corpus chat-demo", description=chat_demo_input.__doc__.splitlines()[0])
        parser.add_argument("--seed", type=int, default=2)
        args = parser.parse_args(argv[1:])
        text, answers = chat_demo_input(args.seed)
        sys.stdout.write(text)
        print("(the answers: " + "; ".join(answers) + ")", file=sys.stderr)
        return 0
    if argv and argv[0] == "stories":  # the default command, also by name
        argv = argv[1:]
    parser = _Parser(
        prog="python -m jaxmodel.corpus",
        description="Write the demo's generated story corpus (the default command, or 'stories'); "
        "'qa' and 'classify' write fine-tuning sets as JSON Lines (see their --help).",
    )
    parser.add_argument("--out", type=Path, required=True, help="text file to write (stories separated by <|endoftext|> lines)")
    parser.add_argument("--stories", type=int, default=20000, help="number of stories (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same file")
    args = parser.parse_args(argv)
    if args.stories <= 0:
        print(f"error: --stories must be at least 1, got {args.stories}", file=sys.stderr)
        return 2
    try:
        stats = write_corpus(args.out, args.stories, args.seed)
    except OSError as err:
        print(f"error: {args.out}: {err.strerror or err}", file=sys.stderr)
        return 1
    _report(args.out, f"wrote {args.out}: {stats.stories} stories, {stats.bytes:,} bytes, {stats.distinct_words} distinct words")
    return 0


def _finetune_main(command: str, argv: list[str]) -> int:
    make, what = FINETUNE_COMMANDS[command]
    parser = _Parser(
        prog=f"python -m jaxmodel.corpus {command}",
        description="Write reading-comprehension conversations about generated stories (messages and answer per line)."
        if command == "qa" else f"Write generated stories labelled with their plot ({', '.join(CLASSIFY_LABELS)}; text and label per line).",
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON Lines file to write")
    parser.add_argument("--stories", type=int, default=2000, help="number of examples, one story each (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same file, so hold out with a seed never trained on")
    if command == "qa":
        parser.add_argument("--questions", type=int, default=1,
                            help=f"questions per story, each a turn of the conversation (1 to {len(QUESTION_KINDS)}; default 1)")
        parser.add_argument("--lookup-weight", type=float, default=1.0,
                            help="draw the attribute lookups (kind, trait, home, relative, adj, helper_kind, fix) this many "
                                 "times as often as the other kinds: for a training set (default 1: all equally likely)")
    args = parser.parse_args(argv)
    if args.stories <= 0:
        print(f"error: --stories must be at least 1, got {args.stories}", file=sys.stderr)
        return 2
    if command == "qa" and not 1 <= args.questions <= len(QUESTION_KINDS):
        print(f"error: --questions must be in 1..{len(QUESTION_KINDS)}, got {args.questions}", file=sys.stderr)
        return 2
    if command == "qa" and not (math.isfinite(args.lookup_weight) and args.lookup_weight > 0):
        print(f"error: --lookup-weight must be a positive number, got {args.lookup_weight}", file=sys.stderr)
        return 2
    examples = list(make(args.stories, args.seed, args.questions, args.lookup_weight) if command == "qa"
                    else make(args.stories, args.seed))
    try:
        stats = write_examples(args.out, examples)
    except OSError as err:
        print(f"error: {args.out}: {err.strerror or err}", file=sys.stderr)
        return 1
    read = "story and question" if command == "qa" else "text"
    line = f"wrote {args.out}: {stats.examples} {what}, {stats.bytes:,} bytes; {read} {stats.max_words} words at most, {stats.mean_words:.1f} on average"
    if command == "classify":
        counts = collections.Counter(e["label"] for e in examples)
        line += "; labels " + ", ".join(f"{label} {counts[label]}" for label in CLASSIFY_LABELS)
    _report(args.out, line)
    return 0


def _report(out: Path, line: str) -> None:
    """What was written: on stdout, unless the data itself went there (--out /dev/stdout)."""
    print(line, file=sys.stdout if out.is_file() else sys.stderr)


if __name__ == "__main__":
    from jaxmodel import cli

    sys.exit(cli.run(main))
