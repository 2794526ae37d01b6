"""Tests for the built-in grammar corpus: exact log-probabilities, parsing, entropy and task sets."""

import json
import math
import re
from collections import Counter
from collections.abc import Iterator

import pytest

from wenlm.training.cli import main as cli_main
from wenlm.training.corpus import grammar as corpus
from wenlm.training.corpus import parsing, rules, vocabulary
from wenlm.training.data.sources import DEFAULT_BUILTIN_DOCS, builtin_entropy_floor, parse_builtin_spec

CJK = re.compile(r"[\u4e00-\u9fff]")
ASCII_LETTER = re.compile(r"[A-Za-z]")


@pytest.fixture(scope="module")
def story_docs():
    return list(corpus.generate_documents(1500, seed=7))


def test_every_choice_table_is_a_distribution():
    tables = corpus.all_choice_tables()
    names = [n for n in tables if n.startswith("name_after:")]
    assert len(names) == len(tables["name"].options)  # one conditional table per first name
    utterance_tables = [n for n in tables if n.startswith("template:utterance|")]
    assert len(utterance_tables) == len(rules.UTTERANCES) + 1  # one per previous turn, plus the start
    for name, table in tables.items():
        assert len(table.options) == len(table.probs), name
        assert all(p > 0 for p in table.probs), name
        assert math.isclose(math.fsum(table.probs), 1.0, abs_tol=1e-12), name
        assert len(set(table.options)) == len(table.options), name
    # B never repeats A.
    for name in names:
        assert name.split(":", 1)[1] not in tables[name].options


def test_choice_table_rejects_bad_weights():
    with pytest.raises(ValueError, match="non-positive"):
        corpus.ChoiceTable("t", [("a", 1.0), ("b", 0.0)])
    with pytest.raises(ValueError, match="twice"):
        corpus.ChoiceTable("t", [("a", 1.0), ("a", 2.0)])
    with pytest.raises(ValueError, match="not an option"):
        corpus.ChoiceTable("t", [("a", 1.0)]).logprob("b")


def test_vocabulary_surfaces_are_distinct_per_slot_and_language():
    # Building a trie raises GrammarAmbiguityError if two values of one slot share a surface form.
    for kind in vocabulary.FIELD_COMPONENTS:
        for spec in ("", "pl", "a", "past"):
            for lang in ("en", "zh"):
                trie = parsing._trie(kind, spec, lang)
                assert trie, (kind, spec, lang)
    for lang in ("en", "zh"):
        names = [vocabulary.render_value("name", "", lang, n) for n in vocabulary.NAMES]
        # No name is a prefix of another, so the speaker prefix of a dialogue turn is unambiguous.
        assert not [(a, b) for a in names for b in names if a != b and b.startswith(a)]


def test_generation_is_deterministic_and_streams():
    first = list(corpus.generate_documents(200, seed=3))
    again = list(corpus.generate_documents(200, seed=3))
    assert first == again
    stream = corpus.generate_documents(10**12, seed=3)
    assert isinstance(stream, Iterator)
    assert next(stream) == first[0]  # nothing is materialised up front


def test_different_seeds_differ():
    texts = {seed: [d["text"] for d in corpus.generate_documents(500, seed=seed)] for seed in (0, 1)}
    assert texts[0] != texts[1]
    assert len(set(texts[0]) & set(texts[1])) <= 2  # in practice disjoint
    for kind in corpus.TASK_KINDS:
        train = corpus.make_task_rows(kind, 50, seed=10)
        validation = corpus.make_task_rows(kind, 50, seed=10 + corpus.VALIDATION_SEED_OFFSET)
        assert train == corpus.make_task_rows(kind, 50, seed=10)
        assert train != validation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logprob_recomputed_from_text_equals_recorded(seed):
    count = 0
    for document in corpus.generate_documents(1200, seed=seed):
        recorded = document["logprob"]
        assert math.isfinite(recorded) and recorded < 0
        assert corpus.document_logprob(document["text"]) == pytest.approx(recorded, abs=1e-9)
        count += 1
    assert count == 1200


def test_parse_recovers_the_opening_facts(story_docs):
    for document in story_docs[:300]:
        parsed = corpus.parse_document(document["text"])
        first_line = document["text"].split("\n")[0]
        lang = "en" if parsed.doc_type in ("en_story", "en_dialogue", "parallel") else "zh"
        for kind, value in (("weather", parsed.weather), ("place", parsed.place), ("time", parsed.time)):
            assert vocabulary.render_value(kind, "", lang, value) in first_line
        a_name, b_name = (vocabulary.render_value("name", "", lang, n) for n in parsed.cast)
        assert a_name in first_line and b_name in first_line and a_name != b_name


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "",
        "One sunny morning.",
        "一个晴朗的早上，小明和小明去了公园。\n小明想吃饺子。\n小明想吃饺子。\n故事讲完了。",
    ],
)
def test_non_grammar_text_is_rejected(text):
    with pytest.raises(ValueError, match="not a wenlm grammar document"):
        corpus.document_logprob(text)


def test_one_altered_word_is_rejected(story_docs):
    english = next(d["text"] for d in story_docs if corpus.parse_document(d["text"]).doc_type == "en_story")
    place = corpus.parse_document(english).place
    lines = english.split("\n")
    altered = "\n".join([lines[0].replace(f"the {place}", "the spaceship"), *lines[1:]])
    assert altered != english
    with pytest.raises(ValueError, match="line 1"):
        corpus.document_logprob(altered)
    # A changed word on a later line is reported on that line.
    lines[2] = lines[2].replace(".", " quickly.")
    with pytest.raises(ValueError, match="line 3"):
        corpus.document_logprob("\n".join(lines))

    chinese = next(d["text"] for d in story_docs if corpus.parse_document(d["text"]).doc_type == "zh_story")
    with pytest.raises(ValueError):
        corpus.document_logprob(chinese.replace("。", "，", 1))


def test_story_missing_its_ending_or_extra_newline_is_rejected(story_docs):
    stories = [d["text"] for d in story_docs if corpus.parse_document(d["text"]).doc_type.endswith("story")]
    for text in stories[:50]:
        lines = text.split("\n")
        with pytest.raises(ValueError):
            corpus.document_logprob("\n".join(lines[:-1]))
        with pytest.raises(ValueError):
            corpus.document_logprob(text + "\n")


def test_parallel_document_with_wrong_translation_is_rejected(story_docs):
    parallel = next(d["text"] for d in story_docs if corpus.parse_document(d["text"]).doc_type == "parallel")
    lines = parallel.split("\n")
    lines[1], lines[3] = lines[3], lines[1]
    with pytest.raises(ValueError, match="translation"):
        corpus.document_logprob("\n".join(lines))


def test_non_string_and_bad_arguments_are_rejected():
    with pytest.raises(TypeError):
        corpus.document_logprob(b"bytes")
    with pytest.raises(ValueError, match="num_docs"):
        list(corpus.generate_documents(-1))
    with pytest.raises(ValueError, match="seed"):
        list(corpus.generate_documents(3, seed="zero"))
    with pytest.raises(ValueError, match="stories, qa, translate, classify"):
        corpus.make_task_rows("poems", 3)


def test_document_types_and_languages_in_intended_proportions(story_docs):
    types = Counter(corpus.parse_document(d["text"]).doc_type for d in story_docs)
    weights = dict(zip(corpus.DOC_TYPES, rules.DOC_TYPE_WEIGHTS))
    for doc_type, weight in weights.items():
        assert abs(types[doc_type] / len(story_docs) - weight) < 0.04, (doc_type, types)
    # The same split seen from the text alone: which scripts a document uses.
    scripts = Counter((bool(CJK.search(d["text"])), bool(ASCII_LETTER.search(d["text"]))) for d in story_docs)
    assert scripts[(True, False)] == types["zh_story"] + types["zh_dialogue"]
    assert scripts[(False, True)] == types["en_story"] + types["en_dialogue"]
    assert scripts[(True, True)] == types["parallel"]


def test_document_lengths_are_short(story_docs):
    sizes = [len(d["text"].encode("utf-8")) for d in story_docs]
    assert 60 <= min(sizes) and max(sizes) <= 800
    assert 150 <= sum(sizes) / len(sizes) <= 400


def test_entropy_estimates_agree_with_each_other_and_the_closed_form():
    first = corpus.entropy_bits_per_byte(num_docs=3000, seed=1)
    second = corpus.entropy_bits_per_byte(num_docs=3000, seed=2)
    exact = corpus.exact_entropy_bits_per_byte()
    for estimate in (first, second):
        assert math.isfinite(estimate["bits_per_byte"]) and estimate["bits_per_byte"] > 0
        assert 0 < estimate["stderr"] < 0.05 * estimate["bits_per_byte"]
        assert estimate["num_docs"] == 3000 and estimate["bytes"] > 3000 * 60
        assert abs(estimate["bits_per_byte"] - exact["bits_per_byte"]) < 4 * estimate["stderr"]
        assert abs(estimate["mean_doc_bytes"] / exact["mean_doc_bytes"] - 1) < 0.03
    combined = math.hypot(first["stderr"], second["stderr"])
    assert abs(first["bits_per_byte"] - second["bits_per_byte"]) < 4 * combined
    with pytest.raises(ValueError, match="at least 2"):
        corpus.entropy_bits_per_byte(num_docs=1)


def test_entropy_estimate_is_the_mean_of_recorded_logprobs():
    docs = list(corpus.generate_documents(400, seed=9))
    expected = -sum(d["logprob"] for d in docs) / sum(len(d["text"].encode()) for d in docs) / math.log(2)
    assert corpus.entropy_bits_per_byte(400, seed=9)["bits_per_byte"] == pytest.approx(expected, rel=1e-12)


def test_stories_task_rows_are_the_documents():
    assert corpus.make_task_rows("stories", 20, seed=4) == list(corpus.generate_documents(20, seed=4))


def test_qa_answers_are_copied_from_the_context():
    rows = corpus.make_task_rows("qa", 400, seed=0)
    langs = Counter(row["lang"] for row in rows)
    assert set(langs) == {"en", "zh"} and min(langs.values()) > 0.35 * len(rows)
    for row in rows:
        assert set(row) == {"context", "question", "answer", "prompt", "response", "lang"}
        assert row["answer"] and row["answer"] in row["context"]
        assert row["response"] == row["answer"]
        assert row["prompt"] == row["context"] + "\n" + row["question"]
        parsed = corpus.parse_document(row["context"])
        assert parsed.doc_type == f"{row['lang']}_story"
        has_cjk = bool(CJK.search(row["question"]))
        assert has_cjk == (row["lang"] == "zh")
        facts = {
            vocabulary.render_value(k, "", row["lang"], v)
            for k, v in (("place", parsed.place), ("weather", parsed.weather), ("time", parsed.time))
        }
        facts.add(vocabulary.render_value("name", "", row["lang"], parsed.cast[1]))
        assert row["answer"] in facts


def test_translate_pairs_come_from_the_same_choices():
    rows = corpus.make_task_rows("translate", 400, seed=0)
    directions = Counter(row["direction"] for row in rows)
    assert set(directions) == {"zh-en", "en-zh"} and min(directions.values()) > 0.35 * len(rows)
    for row in rows:
        source_lang, target_lang = row["direction"].split("-")
        prefix = "Translate to English: " if target_lang == "en" else "翻译成中文："
        assert row["prompt"] == prefix + row["source"] and row["response"] == row["target"]
        source = corpus.parse_sentence(row["source"], source_lang)
        target = corpus.parse_sentence(row["target"], target_lang)
        assert source == target
        _, _, values = source
        sides = {source_lang: row["source"], target_lang: row["target"]}
        for name, value in values.items():
            if name in "ABXYL":
                for lang in ("en", "zh"):
                    assert vocabulary.NAMES[value][lang] in sides[lang]
            if name.startswith("count_"):
                assert vocabulary.NUMBER_WORDS_EN[value[0]] in sides["en"]
                assert vocabulary.NUMBER_WORDS_ZH[value[0]] in sides["zh"]


def test_classify_labels_follow_from_the_text():
    rows = corpus.make_task_rows("classify", 1000, seed=0)
    labels = Counter(row["label"] for row in rows)
    assert set(labels) == set(corpus.all_choice_tables()["weather"].options)
    assert max(labels.values()) < 1.5 * min(labels.values())
    for row in rows:
        assert set(row) == {"text", "label"}
        assert corpus.parse_document(row["text"]).weather == row["label"]
        forms = vocabulary.SIMPLE_WORDS["weather"][row["label"]]
        assert forms["en"] in row["text"] or forms["zh"] in row["text"]


def test_write_jsonl_writes_rows_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "qa.jsonl"
    assert corpus.write_jsonl("qa", 25, 3, path) == 25
    content = path.read_text(encoding="utf-8")
    rows = [json.loads(line) for line in content.splitlines()]
    assert rows == corpus.make_task_rows("qa", 25, seed=3)
    if any(row["lang"] == "zh" for row in rows):
        assert CJK.search(content)  # ensure_ascii=False keeps Chinese readable
    with pytest.raises(FileExistsError, match="--overwrite true"):
        corpus.write_jsonl("classify", 5, 0, path)
    assert path.read_text(encoding="utf-8") == content
    assert corpus.write_jsonl("classify", 5, 0, path, overwrite=True) == 5
    assert len(path.read_text(encoding="utf-8").splitlines()) == 5
    with pytest.raises(FileNotFoundError, match="does not exist"):
        corpus.write_jsonl("stories", 2, 0, tmp_path / "missing" / "x.jsonl")
    with pytest.raises(ValueError, match="valid kinds"):
        corpus.write_jsonl("poems", 2, 0, tmp_path / "poems.jsonl")
    assert not (tmp_path / "poems.jsonl").exists()


def test_corpus_command_writes_the_file_and_keeps_an_existing_one(tmp_path, capsys):
    path = tmp_path / "stories.jsonl"
    assert cli_main(["corpus", "--output", str(path), "--num_docs", "4", "--seed", "2"]) == 0
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows == list(corpus.generate_documents(4, seed=2))
    assert f"wrote 4 stories rows to {path}" in capsys.readouterr().out
    assert cli_main(["corpus", "--output", str(path), "--kind", "qa"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (
        cli_main(["corpus", "--output", str(path), "--kind", "qa", "--num-docs", "3", "--overwrite", "true"])
        == 0
    )
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3
    assert cli_main(["corpus", "--output", str(path), "--kind", "poems", "--overwrite"]) == 2
    assert "valid kinds are stories, qa, translate, classify" in capsys.readouterr().err
    assert cli_main(["corpus", "--output", str(path), "--num_docs", "0"]) == 2
    assert "--num_docs must be at least 1" in capsys.readouterr().err


def test_corpus_command_reads_an_options_file(tmp_path):
    options = tmp_path / "corpus.yaml"
    output = tmp_path / "classify.jsonl"
    options.write_text(f"kind: classify\nnum_docs: 5\noutput: {output}\nseed: 9\n", encoding="utf-8")
    assert cli_main(["corpus", str(options), "--num_docs", "6"]) == 0  # a later flag wins over the file
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert rows == corpus.make_task_rows("classify", 6, seed=9)


@pytest.mark.parametrize("words", [2, 4])
def test_a_variant_with_fewer_words_has_an_exact_lower_floor(words):
    exact = corpus.exact_entropy_bits_per_byte(words)
    estimate = corpus.entropy_bits_per_byte(num_docs=3000, seed=3, words=words)
    assert abs(estimate["bits_per_byte"] - exact["bits_per_byte"]) < 4 * estimate["stderr"]
    assert exact["bits_per_byte"] < corpus.exact_entropy_bits_per_byte()["bits_per_byte"]
    # Only the first `words` entries of each word list appear; names keep their English and Chinese forms.
    names = rules.tables_for(words)["name"].options
    assert len(names) == words
    text = "\n".join(doc["text"] for doc in corpus.generate_documents(300, seed=4, words=words))
    others = [name for name in vocabulary.NAMES if name not in names]
    assert not any(re.search(rf"\b{name}\b", text) for name in others)
    assert all(name in text for name in names)


def test_builtin_sources_name_their_variant_and_its_floor():
    assert parse_builtin_spec("builtin") == (DEFAULT_BUILTIN_DOCS, None)
    assert parse_builtin_spec("builtin:500:words=4") == (500, 4)
    assert parse_builtin_spec("builtin:words=3") == (DEFAULT_BUILTIN_DOCS, 3)
    for bad in ("builtin:0", "builtin:words=1", "builtin:500:vocab=4", "builtins"):
        with pytest.raises(ValueError, match="builtin:40000:words=4"):
            parse_builtin_spec(bad)
    assert (
        builtin_entropy_floor(["builtin:100:words=4"])
        == corpus.exact_entropy_bits_per_byte(4)["bits_per_byte"]
    )
    assert builtin_entropy_floor(["builtin"]) == corpus.exact_entropy_bits_per_byte()["bits_per_byte"]
    # A mixture of variants, or any other text, has no known floor.
    assert builtin_entropy_floor(["builtin:words=4", "builtin"]) is None
    assert builtin_entropy_floor(["builtin", "poems.txt"]) is None
