"""`wenlm finetune --task embedding`: contrastive (InfoNCE) fine-tuning on query/document pairs lowers the loss and
raises recall@1 of a tiny model; both row formats, bad rows, LoRA and checkpoint resume."""

import json
import math

import pytest
import torch
from helpers import cli_flags
from safetensors.torch import load_file
from test_finetune import write_lines
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from wenlm.training import finetuning
from wenlm.training.commands import finetune as finetune_cli
from wenlm.training.corpus.grammar import make_task_rows
from wenlm.training.data.tasks import raise_or_count_bad_rows
from wenlm.training.retrieval import (
    PairCollator,
    embed_texts,
    info_nce_loss,
    read_pair_files,
    retrieval_metrics,
)
from wenlm.training.retrieval.contrastive import embed_batch, encode_pairs

NUM_STORIES = 32
# Stories are cut to their opening, which holds every fact a question names; short texts keep the steps fast.
BLOCK_SIZE = 48
QUICK = [
    "--disable_tqdm",
    "true",
    "--eval_strategy",
    "no",
    "--logging_steps",
    "4",
    "--per_device_train_batch_size",
    "16",
    "--block_size",
    str(BLOCK_SIZE),
]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """A `wenlm corpus --kind retrieval` file: NUM_STORIES stories, then one question per story."""
    return write_lines(
        tmp_path_factory.mktemp("data") / "retrieval.jsonl", make_task_rows("retrieval", NUM_STORIES, seed=0)
    )


def finetune(base, output, train, *extra):
    return finetune_cli.main(
        [*cli_flags(model=base, task="embedding", train_files=train, output_dir=output), *QUICK, *extra]
    )


def loss_and_recall(folder, split) -> tuple[float, float]:
    """The InfoNCE loss with every training pair in one batch (every other story a negative), and recall@1 of
    the questions searched among all stories."""
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    examples, _ = encode_pairs(split, tokenizer, BLOCK_SIZE)
    batch = PairCollator(tokenizer.pad_token_id)(examples)
    with torch.no_grad():
        vectors = embed_batch(model, batch["input_ids"], batch["attention_mask"], "mean")
        queries = len(batch["labels"])
        loss = info_nce_loss(vectors[:queries], vectors[queries:], batch["labels"], 0.05)[0].item()
    questions = embed_texts(model, tokenizer, [pair["query"] for pair in split.pairs], max_length=BLOCK_SIZE)
    stories = embed_texts(model, tokenizer, split.documents, max_length=BLOCK_SIZE)
    return loss, retrieval_metrics(questions, stories, split.gold, ks=(1,))["recall@1"]


@pytest.mark.slow
def test_training_lowers_the_loss_and_raises_recall(tmp_path, wenlm_folder, collection):
    output = tmp_path / "tuned"
    validation = write_lines(tmp_path / "validation.jsonl", make_task_rows("retrieval", 8, seed=1))
    report = finetune(
        wenlm_folder,
        output,
        collection,
        "--validation_files",
        str(validation),
        "--max_steps",
        "12",
        "--learning_rate",
        "3e-3",
    )
    split, _ = read_pair_files([str(collection)])
    (before, recall_before), (after, recall_after) = (
        loss_and_recall(wenlm_folder, split),
        loss_and_recall(output, split),
    )
    assert after < 0.6 * before, (before, after)
    assert recall_after >= recall_before + 0.3, (recall_before, recall_after)

    assert report["task"] == "embedding"
    section = report["embedding"]
    assert section["pooling"] == "mean" and section["temperature"] == 0.05
    assert section["train_pairs"] == NUM_STORIES and section["validation_pairs"] == 8
    assert section["train"]["files"][0]["format"] == "retrieval"
    retrieval = section["validation_retrieval"]
    assert set(retrieval["after"]) == {"recall@1", "recall@10", "mrr", "queries", "documents"}
    assert retrieval["after"]["documents"] == 8 and retrieval["after"]["recall@10"] == 1.0  # only 8 to rank
    assert report["results"]["eval_recall@1"] == retrieval["after"]["recall@1"]
    assert report["results"]["eval_mrr"] > retrieval["before"]["mrr"]
    assert math.isfinite(report["results"]["eval_loss"])
    saved = json.loads((output / "training_report.json").read_text(encoding="utf-8"))
    assert saved["embedding"]["validation_retrieval"] == retrieval

    # A plain wenlm folder: it loads as a causal LM and as a base model, and card and ST files are there.
    assert type(AutoModelForCausalLM.from_pretrained(output)).__name__ == "WenLMForCausalLM"
    assert type(AutoModel.from_pretrained(output)).__name__ == "WenLMModel"
    assert "sentence-similarity" in (output / "README.md").read_text(encoding="utf-8")
    assert json.loads((output / "modules.json").read_text())[1]["path"] == "1_Pooling"


def test_retrieval_file_and_pair_rows_give_the_same_pairs(tmp_path, collection):
    rows = [json.loads(line) for line in collection.read_text(encoding="utf-8").splitlines()]
    stories = {row["id"]: row["text"] for row in rows if row["kind"] == "story"}
    questions = [row for row in rows if row["kind"] == "question"]
    # A story no question asks about is a document to search among, but no training pair.
    lonely = {"id": "extra", "kind": "story", "text": "One quiet night, nobody went anywhere.", "lang": "en"}
    with_lonely = write_lines(tmp_path / "retrieval.jsonl", [lonely, *rows])
    pairs = write_lines(
        tmp_path / "pairs.jsonl",
        [{"query": q["text"], "positive": stories[q["story_id"]], "id": q["id"]} for q in questions],
    )
    from_collection, _ = read_pair_files([str(with_lonely)])
    from_pairs, _ = read_pair_files([str(pairs)])
    assert from_collection.pairs == from_pairs.pairs and len(from_pairs.pairs) == NUM_STORIES
    assert len(from_collection.documents) == NUM_STORIES + 1 and len(from_pairs.documents) == NUM_STORIES
    assert [from_collection.documents[g] for g in from_collection.gold] == [
        p["positive"] for p in from_pairs.pairs
    ]
    assert [from_pairs.documents[g] for g in from_pairs.gold] == [p["positive"] for p in from_pairs.pairs]


def test_collator_puts_each_document_once_after_the_queries():
    features = [
        {"query_ids": [5, 6, 7], "positive_ids": [10, 11], "negative_ids": [12]},
        {"query_ids": [8], "positive_ids": [10, 11], "negative_ids": []},  # the same positive
        {"query_ids": [9, 9], "positive_ids": [12], "negative_ids": [13, 14, 15]},  # the first's negative
    ]
    batch = PairCollator(pad_token_id=0)(features)
    assert batch["labels"].tolist() == [0, 0, 1]  # document rows: [10, 11], [12], [13, 14, 15]
    assert batch["input_ids"].tolist() == [
        [5, 6, 7],
        [8, 0, 0],
        [9, 9, 0],
        [10, 11, 0],
        [12, 0, 0],
        [13, 14, 15],
    ]
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 1, 2, 2, 1, 3]


def test_info_nce_is_cross_entropy_of_scaled_cosines():
    queries = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    documents = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    loss, scores = info_nce_loss(queries, documents, torch.tensor([0, 1]), temperature=0.5)
    cosines = torch.tensor([[1.0, 0.5**0.5, 0.0], [0.0, 0.5**0.5, -1.0]])
    torch.testing.assert_close(scores, cosines / 0.5)
    expected = [-torch.log_softmax(cosines[row] / 0.5, dim=0)[target] for row, target in ((0, 0), (1, 1))]
    assert loss.item() == pytest.approx(sum(expected).item() / 2, abs=1e-6)


def test_bad_rows_are_named_by_file_and_line(tmp_path, wenlm_folder, collection):
    pairs = write_lines(
        tmp_path / "pairs.jsonl",
        [
            {"query": "Where?", "positive": "In the park."},
            {"query": "Who?"},
            {"query": 3, "positive": "x"},
            "not json",
            {"query": "Why?", "positive": "Because.", "negative": "Because."},
            {"question": "What?", "answer": "That."},
        ],
    )
    stories = write_lines(
        tmp_path / "stories.jsonl",
        [
            {"id": "s0", "kind": "story", "text": "A story."},
            {"id": "s0", "kind": "story", "text": "Another story."},
            {"id": "q0", "kind": "question", "text": "Which?", "story_id": "s9"},
            {"id": "q1", "kind": "answer", "text": "This."},
        ],
    )
    with pytest.raises(ValueError) as error:
        finetune(wenlm_folder, tmp_path / "out", pairs, "--validation_files", str(stories))
    message = str(error.value)
    assert "8 bad row(s)" in message
    for expected in (
        f"{pairs} line 2: missing field 'positive'",
        f"{pairs} line 3: 'query' must be a string",
        f"{pairs} line 4: invalid JSON",
        f"{pairs} line 5: 'negative' is the same text",
        f"{pairs} line 6: missing field 'query'",
        f"{stories} line 2: story id 's0' repeats the story of line 1",
        f"{stories} line 3: story_id 's9' names no story row",
        f"{stories} line 4: 'kind' must be 'story' or 'question'",
    ):
        assert expected in message, expected
    assert not (tmp_path / "out").exists()

    split, row_sets = read_pair_files([str(stories)])
    assert "story_id 's9' names no story row of this file" in str(row_sets[0].bad_rows[-1])
    counted = raise_or_count_bad_rows(row_sets, skip_bad_rows=True)
    assert counted["total"] == 3 and split.pairs == [] and split.documents == ["A story."]
    with pytest.raises(ValueError, match="--temperature must be positive"):
        finetune(wenlm_folder, tmp_path / "out", collection, "--temperature", "0")


@pytest.mark.slow
def test_lora_saves_a_plain_merged_model(tmp_path, wenlm_folder, collection):
    output = tmp_path / "lora"
    report = finetune(
        wenlm_folder,
        output,
        collection,
        "--max_steps",
        "3",
        "--lora_r",
        "4",
        "--pooling",
        "last",
        "--save_strategy",
        "no",
    )
    assert (
        report["lora"]["merged"] and report["model"]["trained_parameters"] < report["model"]["parameters"] / 4
    )
    assert (output / finetuning.ADAPTER_DIR / "adapter_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(output)  # no peft needed
    assert type(merged).__name__ == "WenLMForCausalLM"
    tuned, original = load_file(output / "model.safetensors"), load_file(wenlm_folder / "model.safetensors")
    assert any(not torch.equal(tuned[name], original[name]) for name in original), "training changed nothing"
    pooling = json.loads((output / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_lasttoken"] and not pooling["pooling_mode_mean_tokens"]
    vectors = embed_texts(
        AutoModel.from_pretrained(output), AutoTokenizer.from_pretrained(output), ["Hi"], "last"
    )
    assert vectors.shape == (1, 32)


@pytest.mark.slow
def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, wenlm_folder, collection):
    steps = ["--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1", "--save_total_limit", "3"]
    whole = tmp_path / "whole"
    finetune(wenlm_folder, whole, collection, *steps)
    resumed = tmp_path / "resumed"
    report = finetune(
        wenlm_folder, resumed, collection, *steps, "--resume_from_checkpoint", str(whole / "checkpoint-1")
    )
    assert report["training"]["steps"] == 2
    assert not (resumed / "checkpoint-1").exists()  # step 1 came from the checkpoint, not run again
    halfway, expected = (
        load_file(whole / "checkpoint-1" / "model.safetensors"),
        load_file(whole / "model.safetensors"),
    )
    got = load_file(resumed / "model.safetensors")
    assert any(not torch.equal(got[name], halfway[name]) for name in halfway)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, atol=1e-5, rtol=0)
