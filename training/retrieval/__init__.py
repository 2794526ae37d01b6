"""Retrieval: one vector per text from any model (`embed`, the `wenlm embed` command) and exact cosine search with
recall@k and mean reciprocal rank (`search`), scored on the built-in `wenlm corpus --kind retrieval` set."""

from wenlm.training.retrieval.embed import embed_texts, read_texts, write_embeddings
from wenlm.training.retrieval.search import (
    gold_ranks,
    mean_reciprocal_rank,
    recall_at_k,
    retrieval_metrics,
    score_collection,
    top_k,
)

__all__ = [
    "embed_texts",
    "gold_ranks",
    "mean_reciprocal_rank",
    "read_texts",
    "recall_at_k",
    "retrieval_metrics",
    "score_collection",
    "top_k",
    "write_embeddings",
]
