"""Retrieval-augmented QA: `wenlm evaluate --task qa --context oracle|retrieved|none` builds the prompts."""

import json

import numpy as np
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from wenlm.training.commands.evaluate import main as evaluate_main
from wenlm.training.commands.evaluate import parse_args
from wenlm.training.corpus.grammar import make_task_rows
from wenlm.training.evaluation.evaluate import read_task_rows
from wenlm.training.evaluation.rag import rag_prompts
from wenlm.training.retrieval.bm25 import BM25Index

ROWS = make_task_rows("retrieval", 24, seed=2)
STORIES = [row for row in ROWS if row["kind"] == "story"]
QUESTIONS = [row for row in ROWS if row["kind"] == "question"]


@pytest.fixture(scope="module")
def model_and_tokenizer(wenlm_folder):
    return AutoModelForCausalLM.from_pretrained(wenlm_folder), AutoTokenizer.from_pretrained(wenlm_folder)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("rag_data") / "retrieval.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ROWS), encoding="utf-8")
    return path


def prompts_for(wenlm_folder, data, model_and_tokenizer, *options):
    source, parsed = parse_args(
        ["--model", str(wenlm_folder), "--task", "qa", "--validation_files", str(data), *options]
    )
    collection = read_task_rows([parsed.retrieve_from], None) if parsed.retrieve_from else None
    rows = read_task_rows(parsed.validation_files, None)
    return rag_prompts(source, parsed, rows, collection, *model_and_tokenizer)


def story_of(question):
    return next(story for story in STORIES if story["id"] == question["story_id"])


def test_oracle_and_none_prompts(wenlm_folder, data, model_and_tokenizer):
    prompts, references, metrics = prompts_for(wenlm_folder, data, model_and_tokenizer, "--context", "oracle")
    assert references == [question["answer"] for question in QUESTIONS]
    for prompt, question in zip(prompts, QUESTIONS, strict=True):
        # The form the QA model was fine-tuned on: its story, a newline, the question.
        assert prompt == story_of(question)["text"] + "\n" + question["text"]
    assert metrics == {"context": "oracle"}
    prompts, _, _ = prompts_for(
        wenlm_folder, data, model_and_tokenizer, "--context", "none", "--max_samples", "3"
    )
    assert prompts == [question["text"] for question in QUESTIONS[:3]]


def test_retrieved_prompts_hold_the_top_bm25_stories_best_first(wenlm_folder, data, model_and_tokenizer):
    index = BM25Index([story["text"] for story in STORIES], "jieba")
    best = [np.argsort(-index.scores(question["text"]), kind="stable") for question in QUESTIONS]
    options = ("--context", "retrieved", "--retriever", "bm25_jieba")
    prompts, _, metrics = prompts_for(wenlm_folder, data, model_and_tokenizer, *options, "--top_k", "1")
    assert prompts == [STORIES[order[0]]["text"] + "\n" + q["text"] for order, q in zip(best, QUESTIONS)]
    found = np.mean([STORIES[order[0]]["id"] == q["story_id"] for order, q in zip(best, QUESTIONS)])
    assert metrics["retrieval_recall@1"] == pytest.approx(100 * found) and found > 0.8
    prompts, _, _ = prompts_for(wenlm_folder, data, model_and_tokenizer, *options, "--top_k", "2")
    first, second = (STORIES[best[0][rank]]["text"] for rank in (0, 1))
    assert prompts[0] == f"{first}\n\n{second}\n{QUESTIONS[0]['text']}"


def test_retrieve_from_a_collection_of_id_text_rows(tmp_path, wenlm_folder, data, model_and_tokenizer):
    collection = tmp_path / "collection.jsonl"
    collection.write_text(
        "".join(json.dumps({"id": s["id"], "text": s["text"]}) + "\n" for s in STORIES), encoding="utf-8"
    )
    prompts, _, metrics = prompts_for(
        wenlm_folder,
        data,
        model_and_tokenizer,
        "--retrieve_from",
        str(collection),
        "--retriever",
        "bm25_char_ngrams",
        "--top_k",
        "24",
    )
    assert metrics["retrieval_recall@24"] == 100.0 and metrics["context"] == "retrieved"
    assert all(prompt.count("\n\n") == 23 for prompt in prompts)
    collection.write_text(json.dumps({"id": "elsewhere", "text": "小明在公园玩。"}) + "\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"story_id 's\d+' is not the id of any story row of --retrieve_from"
    ):
        prompts_for(
            wenlm_folder, data, model_and_tokenizer, "--retrieve_from", str(collection), "--context", "oracle"
        )


def test_context_runs_record_their_own_entries(tmp_path, wenlm_folder, data):
    base = [
        "--model",
        str(wenlm_folder),
        "--task",
        "qa",
        "--validation_files",
        str(data),
        "--max_samples",
        "4",
        "--max_new_tokens",
        "2",
    ]
    runs = {
        "qa_oracle": ["--context", "oracle"],
        "qa_none": ["--context", "none"],
        "qa_retrieved_bm25_char_ngrams_top1": [
            "--retrieve_from",
            str(data),
            "--retriever",
            "bm25_char_ngrams",
            "--top_k",
            "1",
        ],
        "qa_retrieved_dense_mean_top2": ["--context", "retrieved", "--top_k", "2"],
    }
    printed = {name: evaluate_main([*base, *options]) for name, options in runs.items()}
    results = json.loads((wenlm_folder / "eval_results.json").read_text(encoding="utf-8"))
    for name in runs:
        assert {"exact_match", "f1", "num_samples"} <= set(results[name]["metrics"])
        assert results[name]["task_type"] == "question-answering"
    assert "retrieval_recall@1" in results["qa_retrieved_bm25_char_ngrams_top1"]["metrics"]
    assert "retrieval_recall@2" in results["qa_retrieved_dense_mean_top2"]["metrics"]
    assert "retrieval_recall@1" not in results["qa_oracle"]["metrics"]
    # The generated examples were answered from the prompts built above.
    assert printed["qa_oracle"]["examples"][0]["prompt"].endswith("\n" + QUESTIONS[0]["text"])
    assert printed["qa_none"]["examples"][0]["prompt"] == QUESTIONS[0]["text"]
    assert printed["qa_retrieved_dense_mean_top2"]["retriever"] == "dense"


def test_rag_needs_question_rows(tmp_path, wenlm_folder):
    qa_file = tmp_path / "qa.jsonl"
    qa_file.write_text("".join(json.dumps(row) + "\n" for row in make_task_rows("qa", 3)), encoding="utf-8")
    base = ["--model", str(wenlm_folder), "--task", "qa", "--validation_files", str(qa_file)]
    with pytest.raises(ValueError, match="no rows with 'kind' 'story' or 'question'"):
        evaluate_main([*base, "--context", "none"])
    with pytest.raises(FileNotFoundError, match="--retrieve_from .*missing.jsonl: no such file"):
        evaluate_main([*base, "--retrieve_from", str(tmp_path / "missing.jsonl")])
