"""Task sets drawn from the built-in grammar (qa, translate, classify, retrieval) and JSONL writing."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterator

from wenlm.training.corpus.rules import START_TURN, TABLES, TEMPLATE_BY_ID, ChoiceTable
from wenlm.training.corpus.sampling import (
    check_count,
    check_seed,
    generate_documents,
    sample_document,
    sample_fields,
    seeded_rng,
)
from wenlm.training.corpus.vocabulary import NAMES, SIMPLE_WORDS

TASK_KINDS = ("stories", "qa", "translate", "classify", "retrieval", "retrieval_qa")


_QA_QUESTIONS = {
    "place": {"en": "Where were {A} and {B}?", "zh": "{A}和{B}在哪里？"},
    "weather": {"en": "What was the weather like?", "zh": "那天的天气怎么样？"},
    "companion": {"en": "Who was with {A}?", "zh": "谁和{A}在一起？"},
    "time": {"en": "What time of day was it?", "zh": "故事发生在一天中的什么时候？"},
}


def _qa_row(rng: random.Random) -> dict:
    lang = rng.choice(("en", "zh"))
    context, parsed = sample_document(rng, f"{lang}_story")
    topic = rng.choice(sorted(_QA_QUESTIONS))
    a_name, b_name = (NAMES[n][lang] for n in parsed.cast)
    question = _QA_QUESTIONS[topic][lang].format(A=a_name, B=b_name)
    answer = {
        "place": SIMPLE_WORDS["place"][parsed.place][lang],
        "weather": SIMPLE_WORDS["weather"][parsed.weather][lang],
        "companion": b_name,
        "time": SIMPLE_WORDS["time"][parsed.time][lang],
    }[topic]
    return {
        "context": context,
        "question": question,
        "answer": answer,
        "prompt": context + "\n" + question,
        "response": answer,
        "lang": lang,
    }


# Each question names enough of its story's opening facts to single it out; _retrieval_rows keeps a question only
# when no other story of the collection shares those facts, so its one right story is known.
_RETRIEVAL_QUESTIONS = {
    "place": {
        "en": "Where did {A} and {B} go one {weather} {time}?",
        "zh": "一个{weather}的{time}，{A}和{B}去了哪里？",
    },
    "companion": {
        "en": "Who went to the {place} with {A} one {weather} {time}?",
        "zh": "一个{weather}的{time}，谁和{A}一起去了{place}？",
    },
}


def _retrieval_key(parsed, topic: str, pair: tuple) -> tuple:
    """The facts a question names (`pair`: the named character first); two stories sharing them would both answer
    it."""
    if topic == "place":
        return topic, parsed.lang, frozenset(pair), parsed.weather, parsed.time
    return topic, parsed.lang, pair[0], parsed.weather, parsed.time, parsed.place


def _retrieval_question(rng: random.Random, parsed, counts: Counter) -> dict | None:
    options = [("place", parsed.cast), ("companion", parsed.cast), ("companion", parsed.cast[::-1])]
    rng.shuffle(options)
    for topic, pair in options:
        if counts[_retrieval_key(parsed, topic, pair)] != 1:
            continue
        lang = parsed.lang
        words = {
            kind: SIMPLE_WORDS[kind][getattr(parsed, kind)][lang] for kind in ("place", "weather", "time")
        }
        first, second = (NAMES[name][lang] for name in pair)
        text = _RETRIEVAL_QUESTIONS[topic][lang].format(A=first, B=second, **words)
        return {"text": text, "answer": words["place"] if topic == "place" else second, "lang": lang}
    return None


def _retrieval_rows(rng: random.Random, num_stories: int) -> Iterator[dict]:
    stories = [sample_document(rng, rng.choice(("en_story", "zh_story"))) for _ in range(num_stories)]
    counts = Counter(_retrieval_key(parsed, "place", parsed.cast) for _, parsed in stories)
    counts.update(
        _retrieval_key(parsed, "companion", pair)
        for _, parsed in stories
        for pair in (parsed.cast, parsed.cast[::-1])
    )
    for index, (text, parsed) in enumerate(stories):
        yield {"id": f"s{index}", "kind": "story", "text": text, "lang": parsed.lang}
    asked = 0
    for index, (_, parsed) in enumerate(stories):
        question = _retrieval_question(rng, parsed, counts)
        if question is not None:
            yield {"id": f"q{asked}", "kind": "question", "story_id": f"s{index}", **question}
            asked += 1


def _retrieval_qa_rows(rng: random.Random, num_stories: int) -> Iterator[dict]:
    """A reader's training rows for retrieval-augmented QA: each question of a retrieval set asked after its own
    story, so the question forms are the ones `wenlm evaluate --task qa --context ...` asks."""
    rows = list(_retrieval_rows(rng, num_stories))
    story_text = {row["id"]: row["text"] for row in rows if row["kind"] == "story"}
    for row in rows:
        if row["kind"] == "question":
            context = story_text[row["story_id"]]
            yield {
                "context": context,
                "question": row["text"],
                "answer": row["answer"],
                "prompt": context + "\n" + row["text"],
                "response": row["answer"],
                "lang": row["lang"],
            }


_TRANSLATE_ROLES = ChoiceTable(
    "translate_role", (("opening", 1.0), ("body", 4.0), ("ending", 1.0), ("utterance", 3.0))
)


def _translate_row(rng: random.Random) -> dict:
    role, _ = _TRANSLATE_ROLES.sample(rng)
    first, _ = TABLES["name"].sample(rng)
    second, _ = TABLES[f"name_after:{first}"].sample(rng)
    context = {"A": first, "B": second, "S": rng.choice((first, second))}
    if role == "utterance":
        template_id, _ = TABLES[f"template:utterance|{START_TURN}"].sample(rng)
    else:
        template_id, _ = TABLES[f"template:{role}"].sample(rng)
    template = TEMPLATE_BY_ID[(role, template_id)]
    values, _ = sample_fields(rng, template, context)
    english, chinese = template.render("en", values), template.render("zh", values)
    if rng.random() < 0.5:
        return {
            "source": chinese,
            "target": english,
            "direction": "zh-en",
            "prompt": f"Translate to English: {chinese}",
            "response": english,
        }
    return {
        "source": english,
        "target": chinese,
        "direction": "en-zh",
        "prompt": f"翻译成中文：{english}",
        "response": chinese,
    }


def _iter_task_rows(kind: str, num_rows: int, seed: int) -> Iterator[dict]:
    if kind not in TASK_KINDS:
        raise ValueError(f"unknown task kind {kind!r}; valid kinds are {', '.join(TASK_KINDS)}")
    check_count("num_rows", num_rows)
    check_seed(seed)
    if kind == "stories":
        yield from generate_documents(num_rows, seed)
        return
    # retrieval_qa draws the retrieval set's stories, so its questions are that set's, with the same seed.
    rng = seeded_rng("retrieval" if kind == "retrieval_qa" else kind, seed)
    for _ in range(num_rows):
        if kind == "qa":
            yield _qa_row(rng)
        elif kind == "translate":
            yield _translate_row(rng)
        elif kind == "retrieval":
            yield from _retrieval_rows(rng, num_rows)
            return
        elif kind == "retrieval_qa":
            yield from _retrieval_qa_rows(rng, num_rows)
            return
        else:
            text, parsed = sample_document(rng)
            yield {"text": text, "label": parsed.weather}


def make_task_rows(kind: str, num_rows: int, seed: int = 0) -> list[dict]:
    """Deterministic rows of one fine-tuning task; `kind` is one of TASK_KINDS.

    - ``stories``: ``{"text", "logprob"}``, identical to :func:`generate_documents`.
    - ``qa``: a Chinese or English story and a question whose answer is copied from it:
      ``{"context", "question", "answer", "prompt", "response", "lang"}``.
    - ``translate``: one sentence and its translation, rendered from the same choices:
      ``{"source", "target", "direction", "prompt", "response"}`` with direction ``zh-en``/``en-zh``.
    - ``classify``: ``{"text", "label"}`` where label is the story's weather (5 balanced classes).
    - ``retrieval``: a collection of `num_rows` Chinese and English stories ``{"id": "s0", "kind": "story", "text",
      "lang"}``, then one question per story ``{"id": "q0", "kind": "question", "text", "story_id", "answer",
      "lang"}`` naming facts of its opening that no other story of the collection shares, so ``story_id`` is the
      one right story (a story whose facts all recur in another gets no question and stays a distractor).
    - ``retrieval_qa``: the questions of a ``retrieval`` set of `num_rows` stories (same seed, same questions) as qa
      rows with their own story as context ``{"context", "question", "answer", "prompt", "response", "lang"}``:
      training rows for the model that answers after retrieval.

    Use `seed` for training rows and ``seed + VALIDATION_SEED_OFFSET`` for validation rows.
    """
    return list(_iter_task_rows(kind, num_rows, seed))


def write_jsonl(kind: str, num_rows: int, seed: int, path, overwrite: bool = False) -> int:
    """Write task rows as JSON lines (UTF-8, non-ASCII kept) and return how many were written.

    Refuses to replace an existing file unless ``overwrite`` (`--overwrite true`).
    """
    rows = _iter_task_rows(kind, num_rows, seed)  # validates arguments before touching the file
    first = next(rows, None)
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"cannot write {path}: directory {parent} does not exist; create it first")
    try:
        handle = open(path, "w" if overwrite else "x", encoding="utf-8")
    except FileExistsError:
        raise FileExistsError(
            f"{path} already exists; pass --overwrite true to replace it, or choose another --output"
        ) from None
    written = 0
    with handle:
        for row in [] if first is None else [first]:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
    return written
