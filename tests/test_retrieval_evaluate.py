"""BM25 and dense retrieval behind one interface, the retrieval metric, and `wenlm evaluate --task retrieval`."""

import json
import sys

import numpy as np
import pytest
from transformers import AutoModel, AutoTokenizer

from wenlm.training.args import EvaluateArguments
from wenlm.training.cli import main as cli_main
from wenlm.training.commands.evaluate import main as evaluate_main
from wenlm.training.corpus.grammar import make_task_rows
from wenlm.training.evaluation.metrics import compute_metric
from wenlm.training.retrieval import embed_texts, gold_ranks, retrieval_metrics, top_k
from wenlm.training.retrieval.bm25 import analyzer, char_ngram_terms
from wenlm.training.retrieval.retrievers import RETRIEVERS, build_retriever

ROWS = make_task_rows("retrieval", 60, seed=0)
STORIES = [row for row in ROWS if row["kind"] == "story"]
QUESTIONS = [row for row in ROWS if row["kind"] == "question"]
GOLD = [[story["id"] for story in STORIES].index(question["story_id"]) for question in QUESTIONS]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("method", ["bm25_jieba", "bm25_char_ngrams"])
def test_bm25_finds_the_right_story_for_most_questions(method):
    retriever = build_retriever(method, [story["text"] for story in STORIES])
    texts = [question["text"] for question in QUESTIONS]
    ranks = retriever.ranks(texts, GOLD)
    assert len(QUESTIONS) >= 55 and np.mean(ranks == 1) >= 0.85  # chance: 1/60
    hits = retriever.search(texts, k=3)
    assert all(len(rows) == 3 for rows in hits)
    # search and ranks agree: a question whose story ranks first finds it first.
    assert all(rows[0] == gold for rows, gold, rank in zip(hits, GOLD, ranks) if rank == 1)
    assert retriever.search(texts[:1], k=1000) and len(retriever.search(texts[:1], k=1000)[0]) == len(STORIES)


def test_analyzers_split_chinese_and_english():
    sentence = "小明在公园玩。"
    assert analyzer("jieba")(sentence) == ["小明", "在", "公园", "玩"]
    assert char_ngram_terms(sentence) == [
        "小",
        "明",
        "在",
        "公",
        "园",
        "玩",
        "小明",
        "明在",
        "在公",
        "公园",
        "园玩",
    ]
    # Latin words stay whole and lower-cased; a bigram never spans a Latin word or punctuation.
    assert char_ngram_terms("GPT-4模型，很好 Leo") == [
        "gpt",
        "4",
        "模",
        "型",
        "模型",
        "很",
        "好",
        "很好",
        "leo",
    ]
    assert analyzer("jieba")("Leo去了ＺＯＯ！") == ["leo", "去", "了", "zoo"]
    with pytest.raises(ValueError, match="analyzer 'words' is unknown"):
        analyzer("words")


def test_the_jieba_analyzer_names_the_install_when_jieba_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)  # import jieba now raises ImportError
    with pytest.raises(ImportError, match=r"pip install jieba .*wenlm\[zh\]"):
        build_retriever("bm25_jieba", ["小明在公园玩。"])
    assert build_retriever("bm25_char_ngrams", ["小明在公园玩。"]).search(["公园"], 1) == [[0]]


def test_bm25_ties_count_against_the_query_and_bad_input_is_named():
    retriever = build_retriever("bm25_char_ngrams", ["小明在公园玩。", "小明在公园玩。", "Leo went home."])
    assert retriever.ranks(["公园", "home", "火车"], [0, 2, 0]).tolist() == [2, 1, 3]
    with pytest.raises(ValueError, match="gold row 7"):
        retriever.ranks(["公园"], [7])
    with pytest.raises(ValueError, match="dense retriever embeds with a model"):
        build_retriever("dense", ["a"])
    with pytest.raises(ValueError, match="retriever 'tfidf' is unknown"):
        build_retriever("tfidf", ["a"])
    assert RETRIEVERS == ("dense", "bm25_jieba", "bm25_char_ngrams")


def test_the_dense_retriever_is_exact_cosine_search_over_embed_texts(wenlm_folder):
    model, tokenizer = AutoModel.from_pretrained(wenlm_folder), AutoTokenizer.from_pretrained(wenlm_folder)
    stories, texts = [story["text"] for story in STORIES], [question["text"] for question in QUESTIONS[:10]]
    retriever = build_retriever("dense", stories, model, tokenizer, pooling="last", batch_size=8)
    queries, docs = (embed_texts(model, tokenizer, items, pooling="last") for items in (texts, stories))
    np.testing.assert_array_equal(retriever.ranks(texts, GOLD[:10]), gold_ranks(queries, docs, GOLD[:10]))
    assert retriever.search(texts, 4) == top_k(queries, docs, 4)[0].tolist()


def test_the_metric_module_equals_search_retrieval_metrics():
    rng = np.random.default_rng(0)
    queries, docs = rng.normal(size=(40, 8)), rng.normal(size=(30, 8))
    gold = rng.integers(0, 30, size=40).tolist()
    ranks = gold_ranks(queries, docs, gold).tolist()
    languages = ["zh" if index % 3 else "en" for index in range(40)]
    scores = compute_metric("retrieval", ranks, languages, ks=[1, 5, 10])
    expected = retrieval_metrics(queries, docs, gold)
    assert {name: scores[name] / 100 for name in expected} == pytest.approx(expected)
    chinese = [index for index, lang in enumerate(languages) if lang == "zh"]
    expected_zh = retrieval_metrics(queries[chinese], docs, [gold[index] for index in chinese])
    assert {name: scores[f"{name}_zh"] / 100 for name in expected_zh} == pytest.approx(expected_zh)
    assert set(scores) == {f"{name}{suffix}" for name in expected for suffix in ("", "_en", "_zh")}
    assert set(compute_metric("retrieval", ranks, [""] * 40)) == {"recall@1", "recall@5", "recall@10", "mrr"}
    with pytest.raises(ValueError, match=r"predictions\[1\] is 0"):
        compute_metric("retrieval", [1, 0], ["", ""])


@pytest.mark.parametrize("method", ["dense", "bm25_char_ngrams"])
def test_evaluate_retrieval_command_records_scores_per_language(tmp_path, wenlm_folder, method):
    data = write_rows(tmp_path / "retrieval.jsonl", ROWS)
    argv = ["evaluate", "--model", str(wenlm_folder), "--task", "retrieval", "--validation_files", str(data)]
    assert cli_main([*argv, "--retriever", method]) == 0
    entry = json.loads((wenlm_folder / "eval_results.json").read_text(encoding="utf-8"))[
        "retrieval_dense_mean" if method == "dense" else f"retrieval_{method}"
    ]
    metrics = entry["metrics"]
    assert entry["task_type"] == "text-retrieval" and entry["num_samples"] == len(QUESTIONS)
    for name in ("recall@1", "recall@5", "recall@10", "mrr"):
        assert {name, f"{name}_zh", f"{name}_en"} <= set(metrics)
        assert 0 <= metrics[f"{name}_zh"] <= 100
    assert metrics["recall@1"] <= metrics["recall@5"] <= metrics["recall@10"] <= 100
    if method != "dense":
        assert metrics["recall@1"] > 80
    printed = evaluate_main(
        [*argv[1:], "--retriever", method, "--max_samples", "5", "--save_results", "false"]
    )
    assert printed["num_samples"] == 5 and printed["documents"] == len(STORIES)


def test_bad_retrieval_files_give_clear_errors(tmp_path, wenlm_folder):
    def run(rows, *extra):
        path = write_rows(tmp_path / "bad.jsonl", rows)
        argv = ["--model", str(wenlm_folder), "--task", "retrieval", "--validation_files", str(path)]
        return evaluate_main([*argv, "--retriever", "bm25_char_ngrams", "--save_results", "false", *extra])

    qa_rows = make_task_rows("qa", 3)
    with pytest.raises(ValueError, match="bad.jsonl: no rows with 'kind' 'story' or 'question'"):
        run(qa_rows)
    with pytest.raises(ValueError, match="no question rows"):
        run(STORIES)
    with pytest.raises(ValueError, match="no story rows"):
        run(QUESTIONS)
    orphan = {**QUESTIONS[0], "story_id": "s999"}
    with pytest.raises(
        ValueError, match=r"bad.jsonl row/line 61: story_id 's999' is not the id of any story"
    ):
        run([*STORIES, orphan])
    with pytest.raises(ValueError, match=r"row/line 2: story id 's0' is also the id of .*line 1"):
        run([STORIES[0], {**STORIES[1], "id": "s0"}, QUESTIONS[0]])
    with pytest.raises(ValueError, match=r"row/line 2: needs a non-empty string 'text'"):
        run([STORIES[0], {**QUESTIONS[0], "text": ""}])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"task": "retrieval", "retrieve_from": "x.jsonl"}, "--context and --retrieve_from build"),
        ({"task": "lm", "retriever": "dense"}, "--retriever is used by --task retrieval"),
        ({"task": "qa", "context": "none", "retrieve_from": "x.jsonl"}, "--context none puts no story"),
        (
            {"task": "retrieval", "retriever": "bm25_jieba", "embedding_model": "m"},
            "only by --retriever dense",
        ),
        ({"task": "qa", "context": "retrieved", "top_k": 0}, "--top_k must be at least 1"),
        ({"task": "retrieval", "pooling": "max"}, "--pooling 'max' is unknown"),
    ],
)
def test_retrieval_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        EvaluateArguments(validation_files=["d.jsonl"], **options)


def test_result_names_keep_methods_and_context_sources_apart():
    def name(**options):
        return EvaluateArguments(validation_files=["d.jsonl"], **options).result_name()

    assert name(task="retrieval") == "retrieval_dense_mean"
    assert name(task="retrieval", retriever="bm25_jieba") == "retrieval_bm25_jieba"
    assert name(task="qa", retrieve_from="c.jsonl", retriever="bm25_jieba") == "qa_retrieved_bm25_jieba_top3"
    assert name(task="qa", context="retrieved", pooling="last", top_k=1) == "qa_retrieved_dense_last_top1"
    assert name(task="qa", context="oracle") == "qa_oracle"
    assert name(task="qa") == "qa" and name(task="lm") == "lm"
