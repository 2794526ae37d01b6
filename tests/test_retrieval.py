"""Embeddings from a model, the built-in retrieval set, and exact search with recall@k / MRR."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from wenlm.training.cli import main as cli_main
from wenlm.training.corpus.grammar import make_task_rows, parse_document
from wenlm.training.corpus.tasks import _RETRIEVAL_QUESTIONS
from wenlm.training.corpus.vocabulary import NAMES, SIMPLE_WORDS
from wenlm.training.retrieval import (
    embed_texts,
    gold_ranks,
    mean_reciprocal_rank,
    read_texts,
    recall_at_k,
    retrieval_metrics,
    score_collection,
    top_k,
)

TEXTS = [
    "One sunny morning, Tom and Anna went to the park.",
    "小明在公园玩。",
    "Hi",
    "一个下雨的下午，乐乐和杰克去了村子。",
]


@pytest.fixture(scope="module")
def model_and_tokenizer(wenlm_folder):
    return AutoModel.from_pretrained(wenlm_folder), AutoTokenizer.from_pretrained(wenlm_folder)


def one_by_one(model, tokenizer, pooling):
    """Reference vectors: each text alone, no padding at all."""
    vectors = []
    for text in TEXTS:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        with torch.no_grad():
            hidden = model(input_ids=ids).last_hidden_state[0]
        vector = hidden.mean(dim=0) if pooling == "mean" else hidden[-1]
        vectors.append(torch.nn.functional.normalize(vector, dim=-1).numpy())
    return np.stack(vectors)


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_left_and_right_padding_give_the_vectors_of_unpadded_texts(model_and_tokenizer, pooling):
    model, tokenizer = model_and_tokenizer
    right = embed_texts(model, tokenizer, TEXTS, pooling=pooling, batch_size=4, padding_side="right")
    left = embed_texts(model, tokenizer, TEXTS, pooling=pooling, batch_size=4, padding_side="left")
    assert right.shape == (len(TEXTS), model.config.hidden_size) and right.dtype == np.float32
    np.testing.assert_allclose(left, right, atol=2e-5)
    np.testing.assert_allclose(right, one_by_one(model, tokenizer, pooling), atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(right, axis=1), 1.0, atol=1e-5)


def test_mean_and_last_pooling_differ_and_normalize_false_keeps_lengths(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    mean = embed_texts(model, tokenizer, TEXTS, normalize=False)
    last = embed_texts(model, tokenizer, TEXTS, pooling="last", normalize=False)
    assert not np.allclose(mean, last, atol=1e-3)
    assert not np.allclose(np.linalg.norm(mean, axis=1), 1.0, atol=1e-3)


def test_a_causal_lm_embeds_like_its_base_model(wenlm_folder, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    causal = AutoModelForCausalLM.from_pretrained(wenlm_folder)
    np.testing.assert_allclose(
        embed_texts(causal, tokenizer, TEXTS), embed_texts(model, tokenizer, TEXTS), atol=1e-6
    )


def test_batching_and_truncation(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    whole = embed_texts(model, tokenizer, TEXTS, batch_size=4)
    np.testing.assert_allclose(embed_texts(model, tokenizer, TEXTS, batch_size=1), whole, atol=2e-5)
    cut = embed_texts(model, tokenizer, TEXTS, max_length=2)
    first_two = embed_texts(model, tokenizer, [tokenizer.decode(tokenizer(TEXTS[0])["input_ids"][:2])])
    np.testing.assert_allclose(cut[0], first_two[0], atol=2e-5)
    assert not np.allclose(cut[0], whole[0], atol=1e-3)


def test_embed_refuses_empty_text_and_unknown_pooling(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    with pytest.raises(ValueError, match="text 1 .* no tokens"):
        embed_texts(model, tokenizer, ["a", ""])
    with pytest.raises(ValueError, match="pooling 'max' is unknown"):
        embed_texts(model, tokenizer, ["a"], pooling="max")


def possible_questions(story):
    """Every question the retrieval set could ask about a story, re-derived from its text alone."""
    parsed = parse_document(story["text"])
    lang = story["lang"]
    words = {kind: SIMPLE_WORDS[kind][getattr(parsed, kind)][lang] for kind in ("place", "weather", "time")}
    first, second = (NAMES[name][lang] for name in parsed.cast)
    asked = [
        (_RETRIEVAL_QUESTIONS["place"][lang], first, second),
        (_RETRIEVAL_QUESTIONS["place"][lang], second, first),
        (_RETRIEVAL_QUESTIONS["companion"][lang], first, second),
        (_RETRIEVAL_QUESTIONS["companion"][lang], second, first),
    ]
    return {template.format(A=a, B=b, **words) for template, a, b in asked}


def test_retrieval_corpus_questions_have_one_right_story():
    rows = make_task_rows("retrieval", 400, seed=3)
    assert rows == make_task_rows("retrieval", 400, seed=3)
    stories = {row["id"]: row for row in rows if row["kind"] == "story"}
    questions = [row for row in rows if row["kind"] == "question"]
    assert len(stories) == 400 and 390 <= len(questions) <= 400
    assert {row["lang"] for row in stories.values()} == {"en", "zh"}
    assert len({row["id"] for row in questions}) == len(questions)
    askable = {story_id: possible_questions(story) for story_id, story in stories.items()}
    for question in questions:
        story = stories[question["story_id"]]
        assert question["lang"] == story["lang"] and question["answer"] in story["text"]
        # Only the right story could have been asked this question (up to the order of the two names).
        assert [sid for sid, texts in askable.items() if question["text"] in texts] == [question["story_id"]]


def test_corpus_command_writes_the_retrieval_set(tmp_path):
    path = tmp_path / "retrieval.jsonl"
    assert cli_main(["corpus", "--kind", "retrieval", "--num_docs", "30", "--output", str(path)]) == 0
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows == make_task_rows("retrieval", 30, seed=0)
    assert {row["kind"] for row in rows} == {"story", "question"}


def test_recall_and_mrr_on_a_hand_made_case():
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    queries = np.array([[2.0, 0.1], [0.1, 1.0], [1.0, -0.2]])
    # cosine order: query 0 -> 0, 2, 1, 3; query 1 -> 1, 2, 0, 3; query 2 -> 0, 2, 1, 3.
    gold = [0, 2, 1]  # right documents at ranks 1, 2 and 3
    assert gold_ranks(queries, docs, gold).tolist() == [1, 2, 3]
    assert recall_at_k(queries, docs, gold, ks=(1, 2, 3)) == pytest.approx(
        {"recall@1": 1 / 3, "recall@2": 2 / 3, "recall@3": 1.0}
    )
    assert mean_reciprocal_rank(queries, docs, gold) == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    by_id = retrieval_metrics(queries, docs, ["a", "c", "b"], ks=(1,), doc_ids=["a", "b", "c", "d"])
    assert by_id == pytest.approx({"recall@1": 1 / 3, "mrr": (1 + 1 / 2 + 1 / 3) / 3})
    indices, scores = top_k(queries, docs, k=2)
    assert indices.tolist() == [[0, 2], [1, 2], [0, 2]]
    assert scores[0, 0] == pytest.approx(2 / np.hypot(2, 0.1))


def test_ties_count_against_the_query_and_bad_ids_are_named():
    docs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert gold_ranks([[1.0, 0.0]], docs, [0]).tolist() == [2]
    with pytest.raises(ValueError, match="gold id 'x'"):
        recall_at_k([[1.0, 0.0]], docs, ["x"], doc_ids=["a", "b", "c"])
    with pytest.raises(ValueError, match="gold id 5 is not a document row"):
        recall_at_k([[1.0, 0.0]], docs, [5])
    with pytest.raises(ValueError, match="same model"):
        recall_at_k([[1.0, 0.0, 0.0]], docs, [0])


def test_read_texts_txt_and_jsonl(tmp_path):
    txt = tmp_path / "texts.txt"
    txt.write_text("first\n\nthird\n", encoding="utf-8")
    assert read_texts(txt) == [{"id": 1, "text": "first"}, {"id": 3, "text": "third"}]
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text('{"body": "a", "x": 1}\n{"body": "b"}\n', encoding="utf-8")
    assert read_texts(jsonl, text_column="body") == [{"id": 1, "body": "a", "x": 1}, {"id": 2, "body": "b"}]
    with pytest.raises(ValueError, match="line 1: expected an object with a non-empty text in 'text'"):
        read_texts(jsonl)
    jsonl.write_text('{"text": "a", "id": "k"}\n{"text": "b"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: no 'id' field"):
        read_texts(jsonl)
    csv = tmp_path / "texts.csv"
    csv.write_text("text\na\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a .txt"):
        read_texts(csv)
    with pytest.raises(FileNotFoundError, match="--input"):
        read_texts(tmp_path / "missing.txt")


def test_embed_command_on_the_retrieval_set(tmp_path, wenlm_folder, capsys):
    collection = tmp_path / "retrieval.jsonl"
    assert cli_main(["corpus", "--kind", "retrieval", "--num_docs", "20", "--output", str(collection)]) == 0
    output = tmp_path / "retrieval.parquet"
    argv = [
        "embed",
        "--model",
        str(wenlm_folder),
        "--input",
        str(collection),
        "--output",
        str(output),
        "--per_device_eval_batch_size",
        "8",
        "--pooling",
        "last",
    ]
    assert cli_main(argv) == 0
    table = pq.read_table(output).to_pydict()
    rows = make_task_rows("retrieval", 20, seed=0)
    assert table["id"] == [row["id"] for row in rows] and table["text"] == [row["text"] for row in rows]
    assert table["story_id"][0] is None and table["story_id"][-1] == rows[-1]["story_id"]
    assert pq.read_schema(output).field("embedding").type.value_type == "float"
    model, tokenizer = AutoModel.from_pretrained(wenlm_folder), AutoTokenizer.from_pretrained(wenlm_folder)
    expected = embed_texts(model, tokenizer, [row["text"] for row in rows], pooling="last")
    np.testing.assert_allclose(np.array(table["embedding"]), expected, atol=2e-5)
    metrics = score_collection(output, ks=(1, 20))
    assert set(metrics) == {"recall@1", "recall@20", "mrr"} and metrics["recall@20"] == 1.0
    assert 0 < metrics["mrr"] <= 1
    assert cli_main(argv) == 2  # the file is kept
    assert "already exists" in capsys.readouterr().err


def test_retrieval_qa_rows_ask_the_retrieval_questions_after_their_own_story():
    retrieval = make_task_rows("retrieval", 60, seed=4)
    stories = {row["id"]: row["text"] for row in retrieval if row["kind"] == "story"}
    questions = [row for row in retrieval if row["kind"] == "question"]
    reader_rows = make_task_rows("retrieval_qa", 60, seed=4)
    assert [row["question"] for row in reader_rows] == [row["text"] for row in questions]
    for row, question in zip(reader_rows, questions):
        assert row["context"] == stories[question["story_id"]]
        assert row["answer"] == row["response"] == question["answer"]
        assert row["prompt"] == row["context"] + "\n" + row["question"]
