"""Exact cosine search over embedded documents, and the retrieval metrics recall@k and mean reciprocal rank."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow.parquet as pq

EMBEDDING_COLUMN = "embedding"  # where `wenlm embed` writes each row's vector
# Queries scored per block, so that a block's score matrix stays small for a large collection.
QUERY_BLOCK = 1024


def unit_rows(vectors) -> np.ndarray:
    """`vectors` as a 2-D float array with every row scaled to length 1 (a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors (one per row), got shape {vectors.shape}.")
    lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(lengths > 0, lengths, 1.0)


def gold_indices(gold_ids: Sequence, doc_ids: Sequence | None, num_docs: int) -> np.ndarray:
    """Each query's right document as a row index of the document vectors."""
    if doc_ids is None:
        indices = np.asarray(gold_ids, dtype=np.int64)
        bad = (indices < 0) | (indices >= num_docs)
        if bad.any():
            raise ValueError(
                f"gold id {indices[bad][0]} is not a document row (there are {num_docs}); pass "
                "doc_ids to give gold ids as document ids instead."
            )
        return indices
    if len(doc_ids) != num_docs:
        raise ValueError(f"{len(doc_ids)} doc_ids for {num_docs} document vectors; give one id per vector.")
    row_of = {doc_id: row for row, doc_id in enumerate(doc_ids)}
    missing = [gold for gold in gold_ids if gold not in row_of]
    if missing:
        raise ValueError(f"gold id {missing[0]!r} (and {len(missing) - 1} more) is not among doc_ids.")
    return np.array([row_of[gold] for gold in gold_ids], dtype=np.int64)


def gold_ranks(query_vectors, doc_vectors, gold_ids: Sequence, doc_ids: Sequence | None = None) -> np.ndarray:
    """The 1-based rank of each query's right document among all documents by cosine similarity.

    `gold_ids` are document row indices, or ids from `doc_ids` when given. A document scoring the same as the right
    one ranks ahead of it (ties count against the query), so identical vectors earn no credit.
    """
    queries, docs = unit_rows(query_vectors), unit_rows(doc_vectors)
    if queries.shape[1] != docs.shape[1]:
        raise ValueError(
            f"query vectors have {queries.shape[1]} numbers and document vectors {docs.shape[1]}; "
            "embed both with the same model."
        )
    if len(gold_ids) != len(queries):
        raise ValueError(f"{len(gold_ids)} gold ids for {len(queries)} query vectors; give one per query.")
    gold = gold_indices(gold_ids, doc_ids, len(docs))
    ranks = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), QUERY_BLOCK):
        scores = queries[start : start + QUERY_BLOCK] @ docs.T
        right = scores[np.arange(len(scores)), gold[start : start + QUERY_BLOCK]]
        ranks[start : start + QUERY_BLOCK] = (scores >= right[:, None]).sum(axis=1)
    return ranks


def retrieval_metrics(
    query_vectors,
    doc_vectors,
    gold_ids: Sequence,
    ks: Sequence[int] = (1, 5, 10),
    doc_ids: Sequence | None = None,
) -> dict[str, float]:
    """``{"recall@k": ... for each k, "mrr": ...}`` from one exact search (see recall_at_k, mean_reciprocal_rank)."""
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be whole numbers of 1 or more, got {tuple(ks)}.")
    return rank_metrics(gold_ranks(query_vectors, doc_vectors, gold_ids, doc_ids), ks)


def rank_metrics(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """``{"recall@k": share of ranks <= k, ..., "mrr": mean of 1 / rank}`` of 1-based ranks of the right documents."""
    metrics = {f"recall@{k}": float(np.mean(ranks <= k)) for k in ks}
    metrics["mrr"] = float(np.mean(1.0 / ranks))
    return metrics


def recall_at_k(
    query_vectors,
    doc_vectors,
    gold_ids: Sequence,
    ks: Sequence[int] = (1, 5, 10),
    doc_ids: Sequence | None = None,
) -> dict[str, float]:
    """``{"recall@k": share of queries whose right document is among the k most similar, ...}`` for each k."""
    metrics = retrieval_metrics(query_vectors, doc_vectors, gold_ids, ks, doc_ids)
    return {name: value for name, value in metrics.items() if name != "mrr"}


def mean_reciprocal_rank(
    query_vectors, doc_vectors, gold_ids: Sequence, doc_ids: Sequence | None = None
) -> float:
    """The mean over queries of 1 / the rank of the right document (1.0: always first)."""
    return float(np.mean(1.0 / gold_ranks(query_vectors, doc_vectors, gold_ids, doc_ids)))


def score_collection(path, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """retrieval_metrics of a `wenlm corpus --kind retrieval` file embedded by `wenlm embed` (a parquet file):
    its question rows searched against its story rows."""
    table = pq.read_table(path).to_pydict()
    missing = {"id", "kind", "story_id", EMBEDDING_COLUMN} - set(table)
    if missing:
        raise ValueError(
            f"{path} lacks the column(s) {', '.join(sorted(missing))}: give the parquet file "
            "`wenlm embed` wrote for a `wenlm corpus --kind retrieval` file."
        )
    kinds = np.asarray(table["kind"])
    vectors = table[EMBEDDING_COLUMN]
    stories, questions = np.flatnonzero(kinds == "story"), np.flatnonzero(kinds == "question")
    if not len(stories) or not len(questions):
        raise ValueError(f"{path} needs both story and question rows (column 'kind').")
    return retrieval_metrics(
        [vectors[row] for row in questions],
        [vectors[row] for row in stories],
        [table["story_id"][row] for row in questions],
        ks,
        doc_ids=[table["id"][row] for row in stories],
    )


def top_k(query_vectors, doc_vectors, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The row indices (queries, k) of the k most similar documents, best first, and their cosine similarities."""
    queries, docs = unit_rows(query_vectors), unit_rows(doc_vectors)
    k = min(k, len(docs))
    indices = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), QUERY_BLOCK):
        scores = queries[start : start + QUERY_BLOCK] @ docs.T
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
        indices[start : start + QUERY_BLOCK] = np.take_along_axis(best, order, axis=1)
    scores = np.einsum("qd,qkd->qk", queries, docs[indices])
    return indices, scores
