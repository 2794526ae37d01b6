"""Recall@k and mean reciprocal rank of a retrieval run, overall and per group of queries (e.g. per language)."""

import datasets
import numpy as np

from wenlm.training.evaluation.metrics import common
from wenlm.training.retrieval.search import rank_metrics

_DESCRIPTION = """\
Retrieval scores from the rank each query gave its one right document (1 = first). recall@k is the share of
queries whose right document ranks k or better; MRR (mean reciprocal rank) is the mean of 1 / rank. Give the rank
with ties counted against the query (a document scoring the same as the right one ranks ahead of it), as
`wenlm.training.retrieval.gold_ranks` does. Every score is reported overall and, for each non-empty group label in
the references, over that group's queries as `<score>_<group>` (e.g. `recall@1_zh`). All scores, MRR included,
are percentages (0-100).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): for each query, the 1-based rank of its right document.
    references (`list[str]`): for each query, its group (e.g. its language); "" puts it in no group, so all-""
        references give the overall scores only.
    ks (`list[int]`, optional): the cut-offs of recall@k; default [1, 5, 10].
Returns:
    recall@k (`float`) for each k, mrr (`float`), and the same with the suffix `_<group>` for each group.
Examples:
    >>> retrieval = evaluate.load("path/to/wenlm_retrieval")
    >>> retrieval.compute(predictions=[1, 3, 20], references=["en", "zh", "zh"], ks=[1, 5])
    {'recall@1': 33.33..., 'recall@5': 66.66..., 'mrr': 46.11..., 'recall@1_en': 100.0, 'recall@5_en': 100.0,
     'mrr_en': 100.0, 'recall@1_zh': 0.0, 'recall@5_zh': 50.0, 'mrr_zh': 19.16...}
"""

_CITATION = """\
@inproceedings{voorhees-1999-trec8qa,
    title = "The {TREC}-8 Question Answering Track Report",
    author = "Voorhees, Ellen M.",
    booktitle = "Proceedings of the Eighth Text REtrieval Conference (TREC-8)",
    year = "1999",
    pages = "77--82",
}
"""


def rank_scores(ranks: np.ndarray, ks: list[int]) -> dict[str, float]:
    """`rank_metrics` as percentages, the convention of every wenlm metric."""
    return {name: 100.0 * value for name, value in rank_metrics(ranks, ks).items()}


class WenlmRetrieval(common.CheckedMetric):
    DESCRIPTION, INPUTS_DESCRIPTION, CITATION = _DESCRIPTION, _KWARGS_DESCRIPTION, _CITATION
    REFERENCE_URLS = ("https://trec.nist.gov/pubs/trec8/papers/qa_report.pdf",)
    FEATURES = [
        datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("string")})
    ]

    def _compute(self, predictions: list[int], references: list[str], ks: list[int] | None = None) -> dict:
        ks = [1, 5, 10] if ks is None else list(ks)
        if not ks or any(not isinstance(k, int) or k < 1 for k in ks):
            raise ValueError(f"{self.name}: ks must be whole numbers of 1 or more, got {ks!r}.")
        ranks = np.asarray(predictions, dtype=np.int64)
        if (ranks < 1).any():
            bad = int(np.flatnonzero(ranks < 1)[0])
            raise ValueError(
                f"{self.name}: predictions[{bad}] is {ranks[bad]}; a rank is 1 or more (1 = first)."
            )
        scores = rank_scores(ranks, ks)
        groups = np.asarray(references, dtype=object)
        for group in sorted(set(references) - {""}):
            scores.update(
                {f"{name}_{group}": value for name, value in rank_scores(ranks[groups == group], ks).items()}
            )
        return scores
