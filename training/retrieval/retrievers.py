"""One interface over the retrieval methods: dense (a model's pooled hidden states, exact cosine search) and BM25
with either analyzer. `build_retriever` indexes the documents once; `search` and `ranks` then take any queries."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from wenlm.training.args.evaluation import RETRIEVERS
from wenlm.training.retrieval.bm25 import BM25Index
from wenlm.training.retrieval.embed import embed_texts
from wenlm.training.retrieval.search import gold_ranks, top_k

__all__ = ["RETRIEVERS", "BM25Retriever", "DenseRetriever", "Retriever", "build_retriever"]


class Retriever(ABC):
    """Documents indexed once, searched by text queries; documents are named by their row in the indexed list."""

    @abstractmethod
    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        """The row indices of the k best documents for each query, best first (fewer when there are fewer)."""

    @abstractmethod
    def ranks(self, queries: Sequence[str], gold_rows: Sequence[int]) -> np.ndarray:
        """The 1-based rank of each query's right document (row `gold_rows[i]`) among all documents; a document
        scoring the same as the right one ranks ahead of it (ties count against the query)."""


class DenseRetriever(Retriever):
    """Cosine similarity of `embed_texts` vectors (questions and documents embedded the same way)."""

    def __init__(
        self, documents: Sequence[str], model, tokenizer, pooling: str = "mean", batch_size: int = 32
    ):
        self.model, self.tokenizer = model, tokenizer
        self.pooling, self.batch_size = pooling, batch_size
        self.document_vectors = self.embed(documents)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed_texts(self.model, self.tokenizer, texts, self.pooling, self.batch_size)

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        indices, _ = top_k(self.embed(queries), self.document_vectors, k)
        return indices.tolist()

    def ranks(self, queries: Sequence[str], gold_rows: Sequence[int]) -> np.ndarray:
        return gold_ranks(self.embed(queries), self.document_vectors, gold_rows)


class BM25Retriever(Retriever):
    """BM25 scores from `bm25s` over the terms of one analyzer (see :mod:`wenlm.training.retrieval.bm25`)."""

    def __init__(self, documents: Sequence[str], analyzer_name: str):
        self.index = BM25Index(documents, analyzer_name)

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        k = min(k, self.index.num_documents)
        # A stable sort: among equal scores the earlier document comes first, as top_k does for dense.
        return [np.argsort(-self.index.scores(query), kind="stable")[:k].tolist() for query in queries]

    def ranks(self, queries: Sequence[str], gold_rows: Sequence[int]) -> np.ndarray:
        if len(gold_rows) != len(queries):
            raise ValueError(f"{len(gold_rows)} gold rows for {len(queries)} queries; give one per query.")
        ranks = np.empty(len(queries), dtype=np.int64)
        for index, (query, gold) in enumerate(zip(queries, gold_rows, strict=True)):
            if not 0 <= gold < self.index.num_documents:
                raise ValueError(
                    f"gold row {gold} is not a document row (there are {self.index.num_documents})."
                )
            scores = self.index.scores(query)
            ranks[index] = int((scores >= scores[gold]).sum())
        return ranks


def build_retriever(
    method: str,
    documents: Sequence[str],
    model=None,
    tokenizer=None,
    pooling: str = "mean",
    batch_size: int = 32,
) -> Retriever:
    """A retriever over `documents` for `method` (one of RETRIEVERS). ``dense`` needs a model and its tokenizer
    (any transformers model; a causal LM embeds with its base model) and uses `pooling` and `batch_size`; the BM25
    methods ignore them."""
    if method == "dense":
        if model is None or tokenizer is None:
            raise ValueError("the dense retriever embeds with a model: pass model and tokenizer.")
        return DenseRetriever(documents, model, tokenizer, pooling, batch_size)
    if method in ("bm25_jieba", "bm25_char_ngrams"):
        return BM25Retriever(documents, method.removeprefix("bm25_"))
    raise ValueError(f"retriever {method!r} is unknown; choose one of {', '.join(RETRIEVERS)}.")
