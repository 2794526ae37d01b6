"""Contrastive fine-tuning of embeddings (`wenlm finetune --task embedding`): pair reading, the collator, the
InfoNCE loss and the Trainer that computes it.

Training rows are ``{"query", "positive"[, "negative"]}`` objects, or a `wenlm corpus --kind retrieval` file used as
it is (each question paired with its story through ``story_id``). Each query is scored against every distinct
document of its micro-batch (all positives and hard negatives there): cosine similarities divided by the
temperature, cross-entropy with the query's own positive as the target. The other documents are the negatives, so
they come from the same micro-batch only: per process under DDP (no gathering across processes) and per
gradient-accumulation step, so ``--per_device_train_batch_size`` sets how many negatives each query sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import datasets
import torch
import torch.nn.functional as F

from wenlm.training.data.tasks import RowSet, raise_or_count_bad_rows, read_rows
from wenlm.training.retrieval.embed import embed_texts, pad_batch, pool
from wenlm.training.retrieval.search import retrieval_metrics
from wenlm.training.trainer import CompleteCheckpointsTrainer

QUERY, POSITIVE, NEGATIVE = "query", "positive", "negative"
# Fields of a `wenlm corpus --kind retrieval` row (training/corpus/tasks.py).
KIND, STORY, QUESTION = "kind", "story", "question"
RETRIEVAL_KS = (1, 10)


@dataclass
class PairSplit:
    """The training pairs of some files, and the collection their queries are searched in at evaluation."""

    pairs: list[dict] = field(default_factory=list)  # {"query", "positive"[, "negative"]}
    documents: list[str] = field(default_factory=list)  # every story, or every distinct positive and negative
    gold: list[int] = field(default_factory=list)  # each pair's positive as an index into documents
    files: list[dict] = field(default_factory=list)  # per file: path, format, rows, pairs, bad rows

    def add_document(self, text: str, index_of: dict[str, int]) -> int:
        if text not in index_of:
            index_of[text] = len(self.documents)
            self.documents.append(text)
        return index_of[text]


def text_problem(row: dict, name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return f"missing field {name!r}"
    if not isinstance(value, str):
        return f"{name!r} must be a string, got {type(value).__name__}"
    return None if value.strip() else f"empty {name!r}"


def is_retrieval_file(row_set: RowSet) -> bool:
    """A `wenlm corpus --kind retrieval` file: its first usable row has a 'kind' and no 'query'."""
    return bool(row_set.rows) and KIND in row_set.rows[0] and QUERY not in row_set.rows[0]


def add_pair_rows(row_set: RowSet, split: PairSplit) -> None:
    """``{"query", "positive"[, "negative"]}`` rows; a malformed row becomes a bad row of its file."""
    index_of: dict[str, int] = {}
    for row, number in zip(row_set.rows, row_set.numbers):
        problem = text_problem(row, QUERY) or text_problem(row, POSITIVE)
        if problem is None and row.get(NEGATIVE) is not None:
            problem = text_problem(row, NEGATIVE)
            if problem is None and row[NEGATIVE] == row[POSITIVE]:
                problem = "'negative' is the same text as 'positive'"
        if problem:
            row_set.add_bad(number, f"{problem} (rows are {{'query', 'positive'[, 'negative']}})")
            continue
        pair = {name: row[name] for name in (QUERY, POSITIVE, NEGATIVE) if row.get(name) is not None}
        split.gold.append(split.add_document(pair[POSITIVE], index_of))
        if NEGATIVE in pair:
            split.add_document(pair[NEGATIVE], index_of)
        split.pairs.append(pair)


def add_retrieval_rows(row_set: RowSet, split: PairSplit) -> None:
    """A retrieval collection: every story is a document; each question is a pair with the story it names."""
    stories: dict = {}  # story id -> (row index in split.documents, line number)
    questions = []
    for row, number in zip(row_set.rows, row_set.numbers):
        kind = row.get(KIND)
        problem = text_problem(row, "text")
        if kind not in (STORY, QUESTION):
            problem = (
                f"'kind' must be {STORY!r} or {QUESTION!r}, got {kind!r} (a retrieval file, judged by line 1)"
            )
        elif kind == STORY and problem is None:
            if not isinstance(row.get("id"), (str, int)) or isinstance(row.get("id"), bool):
                problem = "a story row needs an 'id' (string or integer) that questions name in 'story_id'"
            elif row["id"] in stories:
                problem = (
                    f"story id {row['id']!r} repeats the story of {row_set.unit} {stories[row['id']][1]}"
                )
        if problem:
            row_set.add_bad(number, problem)
        elif kind == STORY:
            split.documents.append(row["text"])
            stories[row["id"]] = (len(split.documents) - 1, number)
        else:
            questions.append((row, number))
    for row, number in questions:
        if row.get("story_id") not in stories:
            row_set.add_bad(number, f"story_id {row.get('story_id')!r} names no story row of this file")
            continue
        document = stories[row["story_id"]][0]
        split.pairs.append({QUERY: row["text"], POSITIVE: split.documents[document]})
        split.gold.append(document)


def read_pair_files(paths: list[str]) -> tuple[PairSplit, list[RowSet]]:
    """The pairs of every file, in the order given, and the files' rows (malformed ones in ``bad_rows``, named by
    file and line: pass them to `raise_or_count_bad_rows`)."""
    split = PairSplit()
    row_sets = []
    for path in paths:
        row_set = read_rows(path)
        pairs_before = len(split.pairs)
        retrieval = is_retrieval_file(row_set)
        # Documents are numbered per file: the same text in two files is two documents of the collection.
        (add_retrieval_rows if retrieval else add_pair_rows)(row_set, split)
        row_sets.append(row_set)
        split.files.append(
            {
                "file": row_set.path,
                "format": "retrieval" if retrieval else "pairs",
                "rows_in_file": row_set.rows_in_file,
                "pairs": len(split.pairs) - pairs_before,
                "bad_rows": len(row_set.bad_rows),
            }
        )
    return split, row_sets


def encode_pairs(split: PairSplit, tokenizer, max_length: int) -> tuple[list[dict], dict]:
    """Token ids of each pair's texts (cut to `max_length`, tokenized as `embed_texts` does) and the counts."""
    texts = {name: [pair.get(name, "") for pair in split.pairs] for name in (QUERY, POSITIVE, NEGATIVE)}
    full = {name: tokenizer(values, add_special_tokens=True)["input_ids"] for name, values in texts.items()}
    examples = [
        {f"{name}_ids": full[name][index][:max_length] if texts[name][index] else [] for name in full}
        for index in range(len(split.pairs))
    ]
    counts = {
        "pairs": len(split.pairs),
        "hard_negatives": sum(NEGATIVE in pair for pair in split.pairs),
        "documents": len(split.documents),
        "texts_truncated": sum(len(ids) > max_length for values in full.values() for ids in values),
        "tokens": sum(min(len(ids), max_length) for values in full.values() for ids in values),
    }
    return examples, counts


@dataclass
class PairData:
    """What `wenlm finetune --task embedding` trains and evaluates on."""

    train: datasets.Dataset
    validation: datasets.Dataset | None
    report: dict
    validation_split: PairSplit | None


def prepare_pair_data(
    train_files: list[str],
    validation_files: list[str] | None,
    tokenizer,
    block_size: int,
    skip_bad_rows: bool = False,
) -> PairData:
    """Read, check and tokenize the training and validation pairs (texts cut to `block_size` tokens)."""
    train, train_rows = read_pair_files(train_files)
    validation, validation_rows = read_pair_files(validation_files) if validation_files else (None, [])
    bad_rows = raise_or_count_bad_rows(train_rows + validation_rows, skip_bad_rows)
    if not train.pairs:
        raise ValueError(
            f"{', '.join(train_files)}: no training pairs (a retrieval file needs question rows)."
        )
    if validation is not None and not validation.pairs:
        raise ValueError(f"{', '.join(validation_files)}: no validation pairs.")
    train_examples, train_counts = encode_pairs(train, tokenizer, block_size)
    reports = {"train": {"files": train.files, "rows": len(train.pairs), **train_counts}, "validation": None}
    validation_examples = None
    if validation is not None:
        validation_examples, validation_counts = encode_pairs(validation, tokenizer, block_size)
        reports["validation"] = {
            "files": validation.files,
            "rows": len(validation.pairs),
            **validation_counts,
        }
    report = {
        **reports,
        "train_pairs": len(train.pairs),
        "validation_pairs": len(validation.pairs) if validation else 0,
        "hard_negatives": train_counts["hard_negatives"],
        "texts_truncated": train_counts["texts_truncated"]
        + (reports["validation"] or {}).get("texts_truncated", 0),
        "bad_rows": bad_rows["total"],
        "bad_row_details": bad_rows["by_file"],
        "skip_bad_rows": skip_bad_rows,
        "block_size": block_size,
        "negatives": "in-batch (the micro-batch's other documents, per process) and hard negatives",
    }
    return PairData(
        train=datasets.Dataset.from_list(train_examples),
        validation=datasets.Dataset.from_list(validation_examples) if validation_examples else None,
        report=report,
        validation_split=validation,
    )


class PairCollator:
    """One right-padded batch: the queries first, then the micro-batch's distinct documents (positives and hard
    negatives, each text once); ``labels`` is each query's positive as a row among the documents."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        # A text shared by two pairs is one document, so that it is never a negative of its own query.
        documents: dict[tuple, int] = {}
        labels = [documents.setdefault(tuple(f["positive_ids"]), len(documents)) for f in features]
        for feature in features:
            if feature.get("negative_ids"):
                documents.setdefault(tuple(feature["negative_ids"]), len(documents))
        rows = [list(feature["query_ids"]) for feature in features] + [list(ids) for ids in documents]
        input_ids, attention_mask = pad_batch(rows, self.pad_token_id, "right")
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": torch.tensor(labels)}


def embed_batch(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pooled final hidden states of a batch, with gradients, as `embed_texts` computes them: position ids from
    the attention mask. Called through the model's own forward (a causal LM, LoRA-wrapped or not), so that DDP's
    hooks see it; only the last position's logits are computed, and they are not used."""
    positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    outputs = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        output_hidden_states=True,
        logits_to_keep=1,
        use_cache=False,
    )
    return pool(outputs.hidden_states[-1].float(), attention_mask, pooling)


def info_nce_loss(
    queries: torch.Tensor, documents: torch.Tensor, targets: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean over queries of cross-entropy between their cosine similarities to all documents / temperature and
    their own positive (`targets`: a document row per query); and those scaled similarities."""
    scores = F.normalize(queries, dim=-1) @ F.normalize(documents, dim=-1).T / temperature
    return F.cross_entropy(scores, targets), scores


class ContrastiveTrainer(CompleteCheckpointsTrainer):
    """The stock Trainer with the InfoNCE loss of a `PairCollator` batch (evaluation reports the same loss)."""

    # The loss is a mean over this micro-batch's queries: the Trainer divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, pooling: str = "mean", temperature: float = 0.05, **kwargs):
        super().__init__(*args, **kwargs)
        self.pooling, self.temperature = pooling, temperature

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        targets = inputs["labels"]
        vectors = embed_batch(model, inputs["input_ids"], inputs["attention_mask"], self.pooling)
        loss, scores = info_nce_loss(
            vectors[: len(targets)], vectors[len(targets) :], targets, self.temperature
        )
        return (loss, {"scores": scores}) if return_outputs else loss


def retrieval_scores(
    model, tokenizer, split: PairSplit, pooling: str, batch_size: int, max_length: int
) -> dict:
    """recall@1, recall@10 and MRR of the split's queries searched (exactly) among its documents, with the
    vectors `embed_texts` gives (`model`: a plain transformers model, adapters merged)."""
    queries = embed_texts(
        model, tokenizer, [pair[QUERY] for pair in split.pairs], pooling, batch_size, max_length=max_length
    )
    documents = embed_texts(model, tokenizer, split.documents, pooling, batch_size, max_length=max_length)
    metrics = retrieval_metrics(queries, documents, split.gold, ks=RETRIEVAL_KS)
    return {**metrics, "queries": len(split.pairs), "documents": len(split.documents)}


__all__ = [
    "ContrastiveTrainer",
    "PairCollator",
    "PairData",
    "PairSplit",
    "embed_batch",
    "encode_pairs",
    "info_nce_loss",
    "prepare_pair_data",
    "read_pair_files",
    "retrieval_scores",
]
