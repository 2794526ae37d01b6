"""Retrieval: one vector per text from any model (`embed`, the `wenlm embed` command) and exact cosine search with
recall@k and mean reciprocal rank (`search`), scored on the built-in `wenlm corpus --kind retrieval` set;
contrastive fine-tuning of the vectors (`contrastive`, `wenlm finetune --task embedding`) and the files that load a
model folder in sentence-transformers (`sentence_transformers_files`); BM25 baselines (`bm25`) and one interface
over dense and BM25 search (`retrievers`)."""

from wenlm.training.retrieval.bm25 import ANALYZERS, BM25Index, char_ngram_terms
from wenlm.training.retrieval.contrastive import (
    ContrastiveTrainer,
    PairCollator,
    info_nce_loss,
    prepare_pair_data,
    read_pair_files,
    retrieval_scores,
)
from wenlm.training.retrieval.embed import embed_texts, read_texts, write_embeddings
from wenlm.training.retrieval.retrievers import (
    RETRIEVERS,
    BM25Retriever,
    DenseRetriever,
    Retriever,
    build_retriever,
)
from wenlm.training.retrieval.search import (
    gold_ranks,
    mean_reciprocal_rank,
    recall_at_k,
    retrieval_metrics,
    score_collection,
    top_k,
)
from wenlm.training.retrieval.sentence_transformers_files import (
    sentence_transformers_files,
    write_sentence_transformers_config,
)

__all__ = [
    "ANALYZERS",
    "BM25Index",
    "BM25Retriever",
    "RETRIEVERS",
    "ContrastiveTrainer",
    "DenseRetriever",
    "Retriever",
    "build_retriever",
    "char_ngram_terms",
    "PairCollator",
    "embed_texts",
    "gold_ranks",
    "info_nce_loss",
    "mean_reciprocal_rank",
    "prepare_pair_data",
    "read_pair_files",
    "read_texts",
    "recall_at_k",
    "retrieval_metrics",
    "retrieval_scores",
    "score_collection",
    "sentence_transformers_files",
    "top_k",
    "write_embeddings",
    "write_sentence_transformers_config",
]
