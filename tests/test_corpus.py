"""The generated story corpus: deterministic, coherent, small in vocabulary, in TinyStories' format."""

import hashlib
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jaxmodel import corpus
from jaxmodel.corpus import (
    ALL_NAMES,
    ENDING_STARTS,
    HE,
    IT,
    OPENING_STARTS,
    SEPARATOR,
    SHE,
    generate_corpus,
    make_story,
    read_corpus,
    words,
    write_corpus,
)
from conftest import ROOT

PRONOUN_WORDS = HE.words | SHE.words | (IT.words - {"it"})  # "it" also names the object, so it proves nothing


@pytest.fixture(scope="module")
def stories():
    rng = random.Random(123)
    return [make_story(rng) for _ in range(2000)]


def test_same_seed_same_text_other_seed_other_text():
    assert list(generate_corpus(50, seed=7)) == list(generate_corpus(50, seed=7))
    assert list(generate_corpus(50, seed=7)) != list(generate_corpus(50, seed=8))


def test_a_seed_names_the_same_bytes_as_ever():
    # make demo and its tests depend on these bytes: a change to the grammar or to the order of
    # the draws must be deliberate, and then this hash changes with it
    data = (SEPARATOR.join(generate_corpus(300, seed=0)) + "\n").encode("utf-8")
    assert hashlib.sha256(data).hexdigest() == "d268772f250e0d056e248b91d5975065bc49f674acb61b12cfb9b921a5b7b814"


def test_a_story_keeps_what_it_was_rendered_from(stories):
    for story in stories[:200]:
        slots = [slot for slot, _ in story.sentences]
        assert slots[:8] == ["opening", "likes", "gets", "problem", "meets", "asks", "offers", "fix"]
        assert " ".join(story.sentence(slot) for slot in slots) == story.text.replace("\n\n", " ")
        assert story.fields["N"] == story.hero.name and story.fields["obj"] == story.object
    assert stories[0].sentence("no such slot") is None


def test_stories_open_with_an_opening_and_close_with_an_ending(stories):
    for story in stories:
        text = story.text
        assert text.startswith(OPENING_STARTS), text[:60]
        last = re.split(r"(?<=[.!?\"]) ", text)[-1]
        assert last.startswith(ENDING_STARTS), f"last sentence {last!r}"


def test_most_stories_start_with_the_demo_prompt(stories):
    share = sum(s.text.startswith("Once upon a time") for s in stories) / len(stories)
    assert 0.85 <= share <= 0.95, share


def test_hero_name_is_kept_from_opening_to_end(stories):
    for story in stories:
        text = story.text
        opened = re.search(r"named (\w+)", text).group(1)
        assert opened == story.hero.name
        assert story.hero.name in story.paragraphs[-1], text
        names = {w for w in re.findall(r"[A-Z]\w+", text) if w in ALL_NAMES}
        assert names == {story.hero.name, story.helper.name}, text
        assert story.hero.pronouns != story.helper.pronouns


def test_the_object_runs_through_the_story(stories):
    for story in stories:
        assert story.object in story.paragraphs[0] and story.object in story.paragraphs[1], story.text


def test_pronouns_agree_with_the_characters(stories):
    for story in stories:
        text = story.text
        allowed = story.hero.pronouns.words | story.helper.pronouns.words
        used = set(words(text)) & PRONOUN_WORDS
        assert used <= allowed, f"{story.hero.name} ({story.hero.pronouns.subject}) and {story.helper.name} ({story.helper.pronouns.subject}) but found {used - allowed}: {text}"
        home = re.search(rf"(\w+),? (?:who )?lived (?:in .+? |there )?with (\w+) {story.hero.relative}\.", story.paragraphs[0])
        assert home.group(1) in (story.hero.name, story.hero.pronouns.subject.capitalize())
        assert home.group(2) == story.hero.pronouns.possessive, text[:160]


# (pattern, whose pronoun: the character named in group "name", or "other" than the one named, form)
AGREEMENT = [
    (r"(?P<name>[A-Z][a-z]+) put (?P<pronoun>\w+) nose", "name", "possessive"),
    (r"(?P<name>[A-Z][a-z]+) flapped (?P<pronoun>\w+) wings", "name", "possessive"),
    (r"(?P<name>[A-Z][a-z]+) was big and tall\. (?P<pronoun>\w+) stood", "name", "subject"),
    (r"(?P<name>[A-Z][a-z]+) had an idea\. (?P<pronoun>\w+) got", "name", "subject"),
    (r"thanked (?P<name>[A-Z][a-z]+) for (?P<pronoun>\w+) help", "name", "possessive"),
    (r'"Thank you, (?P<name>[A-Z][a-z]+)!" (?P<pronoun>\w+) said', "other", "subject"),
    (r"(?P<name>[A-Z][a-z]+) sat next to \w+ and told (?P<pronoun>\w+) a", "other", "object"),
]


def test_pronouns_point_at_the_right_character(stories):
    checked = 0
    for story in stories:
        by_name = {story.hero.name: story.hero, story.helper.name: story.helper}
        for pattern, whose, form in AGREEMENT:
            for match in re.finditer(pattern, story.text):
                named = by_name[match.group("name")]
                owner = named if whose == "name" else next(c for c in by_name.values() if c is not named)
                assert match.group("pronoun").lower() == getattr(owner.pronouns, form), f"{match.group(0)!r}: {owner.name} is {owner.pronouns.subject}"
                checked += 1
    assert checked > len(stories) // 2


def test_story_length_fits_the_demo_context(stories):
    lengths = [len(words(s.text)) for s in stories]
    assert 80 <= min(lengths) and max(lengths) <= 220, (min(lengths), max(lengths))


def test_vocabulary_is_small_but_not_trivial(stories):
    vocabulary = {w for s in stories for w in words(s.text)}
    assert 250 <= len(vocabulary) <= 400, len(vocabulary)


def test_plots_and_openings_all_occur(stories):
    assert {s.plot for s in stories} == {p.name for p in corpus.PLOTS}
    assert {start for s in stories for start in OPENING_STARTS if s.text.startswith(start)} == set(OPENING_STARTS)


def test_file_format_round_trips(tmp_path):
    path = tmp_path / "stories.txt"
    stats = write_corpus(path, 30, seed=3)
    raw = path.read_text(encoding="utf-8")
    assert stats.stories == 30 and stats.bytes == len(raw.encode("utf-8"))
    assert not raw.startswith("<|endoftext|>") and not raw.rstrip("\n").endswith("<|endoftext|>")
    assert raw.count("<|endoftext|>") == 29 == raw.count(SEPARATOR)
    assert all(line == "<|endoftext|>" for line in raw.splitlines() if "endoftext" in line)
    assert read_corpus(path) == list(generate_corpus(30, seed=3))
    assert [p.name for p in tmp_path.iterdir()] == ["stories.txt"]  # no temporary file left behind


def test_write_corpus_rejects_no_stories(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        write_corpus(tmp_path / "x.txt", 0)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "jaxmodel.corpus", *args], cwd=ROOT, capture_output=True, text=True)


def test_cli_writes_and_reports(tmp_path):
    out = tmp_path / "c.txt"
    result = _cli("--out", str(out), "--stories", "20", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "20 stories" in result.stdout and "distinct words" in result.stdout
    assert read_corpus(out) == list(generate_corpus(20, seed=1))


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--stories", "0"], 2, "--stories must be at least 1"),
        (["--stories", "ten"], 2, "invalid int value"),
        (["--stories", "5", "--out-dir-missing"], 2, "unrecognized arguments"),
    ],
)
def test_cli_usage_errors_are_one_line(tmp_path, args, code, message):
    result = _cli("--out", str(tmp_path / "c.txt"), *args)
    assert result.returncode == code
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_cli_creates_missing_folders(tmp_path):
    result = _cli("--out", str(tmp_path / "new" / "c.txt"), "--stories", "3")
    assert result.returncode == 0 and (tmp_path / "new" / "c.txt").is_file()


def test_cli_unwritable_path_is_one_line(tmp_path):
    (tmp_path / "file").write_text("a file where a folder should be")
    result = _cli("--out", str(tmp_path / "file" / "c.txt"), "--stories", "3")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


# --- fine-tuning sets ---------------------------------------------------------------------


def _story_part(example):
    return example["messages"][0]["content"].rsplit("\n\n", 1)[0]


def test_short_text_keeps_the_sentences_questions_are_asked_about(stories):
    for story in stories[:500]:
        short = corpus.short_text(story)
        for slot in ("opening", "gets", "problem", "meets", "fix", "ending"):
            assert story.sentence(slot) in short
        assert short.startswith(story.sentence("opening")) and short.endswith(story.sentence("ending"))
        assert len(words(short)) < len(words(story.text)) and short.count("\n\n") == 2


def test_every_templated_sentence_has_its_question():
    assert corpus.GETS_QUESTIONS.keys() == set(corpus.GETS_OBJECT)
    assert corpus.PROBLEM_QUESTIONS.keys() == {t for p in corpus.PLOTS for t in p.problems}
    assert corpus.FIX_QUESTIONS.keys() == {t for p in corpus.PLOTS for t, _ in p.fixes}
    assert corpus.ENDING_QUESTIONS.keys() == set(corpus.ENDINGS)


def _expected_answer(story, kind):
    """What each kind of question must be answered with, read from the Story, not from the tables."""
    hero, helper, fields = story.hero, story.helper, story.fields
    return {
        "hero": hero.name, "kind": hero.kind, "helper": helper.name, "helper_kind": helper.kind,
        "home": hero.home, "relative": f"{hero.pronouns.possessive} {hero.relative}", "adj": fields["adj"],
        "gets": story.object, "trait": re.search(r"an? (\w+) \w+ named", story.text).group(1),
    }.get(kind)


def test_answers_are_true_of_the_story_and_stand_in_the_text(stories):
    for story in stories:
        short = corpus.short_text(story)
        for kind in corpus.QUESTION_KINDS:
            for question, reply, answer in corpus.questions(story, kind):
                expected = _expected_answer(story, kind)
                if expected is not None:
                    assert answer == expected, f"{kind}: {question!r} answered {answer!r}, the story says {expected!r}"
                else:  # a question about one sentence is answered from that sentence
                    assert answer in story.sentence(kind), f"{kind}: {answer!r} not in {story.sentence(kind)!r}"
                assert answer in short and answer in reply, (question, reply, answer, short)
                assert set(re.findall(r"[A-Z]\w+", question)) & corpus.ALL_NAMES <= {story.hero.name, story.helper.name}


def test_color_questions_only_ask_about_colors(stories):
    for story in stories[:500]:
        asked = [q for q, _, _ in corpus.questions(story, "adj")]
        assert any("color" in q for q in asked) == (story.fields["adj"] in corpus.REAL_COLORS), asked


def test_qa_lines_fit_the_word_budget_and_carry_their_answer():
    examples = list(corpus.qa_examples(2000, seed=5))
    for example in examples:
        user, assistant = example["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant") and set(example) == {"messages", "answer", "kind"}
        assert corpus.example_words(example) <= corpus.MAX_WORDS, user["content"]
        assert example["answer"] in _story_part(example) and example["answer"] in assistant["content"]
        assert user["content"].endswith("?") and len(words(assistant["content"])) <= 12
    assert len({e["messages"][0]["content"].rsplit("\n\n", 1)[1] for e in examples}) >= 40  # the questions vary


def test_classify_labels_are_balanced_and_decidable_by_one_keyword():
    keyword = {"lost": r"was gone|was not there", "broken": r"\bbroke\b", "stuck": r"\bstuck\b", "afraid": r"\bafraid\b", "hungry": r"\bhungry\b"}
    assert tuple(keyword) == corpus.CLASSIFY_LABELS
    examples = list(corpus.classify_examples(2000, seed=5))
    for example in examples:
        found = [label for label, pattern in keyword.items() if re.search(pattern, example["text"])]
        assert found == [example["label"]], (found, example)
        assert len(words(example["text"])) <= corpus.MAX_WORDS
    counts = {label: sum(e["label"] == label for e in examples) for label in corpus.CLASSIFY_LABELS}
    assert all(300 <= n <= 500 for n in counts.values()), counts


@pytest.mark.parametrize("make", [corpus.qa_examples, corpus.classify_examples])
def test_finetune_seeds_name_their_sets(make):
    assert list(make(50, seed=3)) == list(make(50, seed=3))
    assert corpus.shared_stories(make(500, seed=3), make(500, seed=4)) == set()
    assert len(corpus.shared_stories(make(50, seed=3), make(80, seed=3))) == 50
    pretraining = {corpus.short_text(make_story(random.Random(3)))}  # the first story of generate_corpus(..., seed=3)
    assert corpus.story_of(next(make(1, seed=3))) not in pretraining


def test_qa_and_classify_draw_other_stories_for_the_same_seed():
    qa, labelled = corpus.qa_examples(200, seed=0), corpus.classify_examples(200, seed=0)
    assert corpus.shared_stories(qa, labelled) == set()


def test_a_conversation_fits_the_demo_context(tmp_path):
    from jaxmodel import tokenizer

    text = tmp_path / "stories.txt"
    write_corpus(text, 3000, seed=0)
    encoding = tokenizer.encoding(tokenizer.train([text], 1024, progress=False))

    def chat(messages):  # the LLaMA-3 format of goengine/tokenizer/chat.go
        turns = "".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>" for m in messages)
        return len(encoding.encode("<|begin_of_text|>" + turns, allowed_special="all"))

    longest = max(chat(e["messages"]) for e in corpus.qa_examples(2000, seed=9))
    assert longest <= 240, longest
    assert max(len(encoding.encode(e["text"])) for e in corpus.classify_examples(2000, seed=9)) <= 200


@pytest.mark.parametrize("command", ["qa", "classify"])
def test_finetune_cli_writes_the_same_bytes_for_a_seed(tmp_path, command):
    a, b, c = (tmp_path / f"{name}.jsonl" for name in "abc")
    for out, seed in ((a, "2"), (b, "2"), (c, "3")):
        result = _cli(command, "--stories", "40", "--seed", seed, "--out", str(out))
        assert result.returncode == 0, result.stderr
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    make = corpus.qa_examples if command == "qa" else corpus.classify_examples
    assert corpus.read_examples(a) == list(make(40, seed=2))
    assert "40 " in result.stdout and "words at most" in result.stdout and "on average" in result.stdout
    if command == "classify":
        assert all(label in result.stdout for label in corpus.CLASSIFY_LABELS)


def test_finetune_cli_usage_errors_are_one_line(tmp_path):
    for args in (["qa", "--stories", "0"], ["classify", "--stories", "ten"], ["qa", "--bogus"]):
        result = _cli(*args, "--out", str(tmp_path / "x.jsonl"))
        assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_stories_is_the_default_command_by_name_too(tmp_path):
    named, default = tmp_path / "named.txt", tmp_path / "default.txt"
    assert _cli("stories", "--out", str(named), "--stories", "10", "--seed", "4").returncode == 0
    assert _cli("--out", str(default), "--stories", "10", "--seed", "4").returncode == 0
    assert named.read_bytes() == default.read_bytes()


def test_qa_with_several_questions_asks_each_in_its_own_turn():
    from jaxmodel.corpus import QUESTION_KINDS, qa_examples

    for example in qa_examples(50, seed=4, n_questions=3):
        messages = example["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"] * 3
        story = messages[0]["content"].rsplit("\n\n", 1)[0]
        for user, reply in zip(messages[2::2], messages[3::2]):
            assert "\n\n" not in user["content"], "follow-ups ask about the story already given"
        assert example["answer"] in messages[-1]["content"] and example["answer"] in story
    assert len(QUESTION_KINDS) >= 3
    # One question is the form the held-out sets use, unchanged by the option.
    assert list(qa_examples(5, seed=4)) == list(qa_examples(5, seed=4, n_questions=1))


def test_chat_demo_input_is_two_messages_with_backslash_continuation():
    from jaxmodel.corpus import chat_demo_input

    text, answers = chat_demo_input(2)
    lines = text.split("\n")[:-1]
    assert all(line.endswith("\\") for line in lines[:-2]) and not lines[-2].endswith("\\"), "the story's lines continue"
    first, follow_up = "\n".join(lines[:-1]).replace("\\\n", "\n"), lines[-1]
    story = first.rsplit("\n\n", 1)[0]
    assert "\n\n" in story and all(answer in story for answer in answers)
    assert follow_up.endswith("?") and "\\" not in follow_up
    assert chat_demo_input(2) == (text, answers) and chat_demo_input(3)[0] != text


def test_out_dev_stdout_writes_through_and_reports_on_stderr():
    """A non-regular --out (/dev/stdout, a pipe) is written to, not replaced by a renamed file."""
    result = subprocess.run([sys.executable, "-m", "jaxmodel.corpus", "classify", "--stories", "3", "--out", "/dev/stdout"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["label"] for line in result.stdout.splitlines()] == [e["label"] for e in corpus.classify_examples(3)]
    assert "wrote /dev/stdout: 3 labelled stories" in result.stderr
    assert Path("/dev/stdout").is_symlink()  # still the link to fd 1, not a file renamed over it


def test_lookup_weight_draws_the_attribute_lookups_more_often():
    def share(examples):
        kinds = [e["kind"] for e in examples]
        return sum(k in corpus.LOOKUP_KINDS for k in kinds) / len(kinds)

    plain, weighted = list(corpus.qa_examples(600, seed=2)), list(corpus.qa_examples(600, seed=2, lookup_weight=3))
    # 7 of 12 kinds: 58 % when equally likely, 21/26 = 81 % when drawn 3 times as often
    assert 0.50 < share(plain) < 0.66 and 0.74 < share(weighted) < 0.88
    three = list(corpus.qa_examples(300, seed=2, n_questions=3, lookup_weight=3))
    assert all(len(e["messages"]) == 6 for e in three)
    assert plain == list(corpus.qa_examples(600, seed=2)), "the same seed and weight write the same set"
