"""BM25 over mixed Chinese and English text: an analyzer turns each text into terms, `bm25s` indexes and scores them.

Two analyzers, because Chinese has no spaces to split words on:

- ``jieba``: jieba's words (``jieba.lcut``), lower-cased, with punctuation and spaces dropped. Needs the optional
  ``jieba`` package (``pip install 'wenlm[zh]'``).
- ``char_ngrams``: every CJK character and every pair of adjacent CJK characters (no segmenter, so no dictionary
  to disagree with), and Latin words lower-cased as whole words. A bigram never spans punctuation, a space or a
  Latin word.

Both fold the text with NFKC first, so full-width letters and digits match their ASCII forms.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

import bm25s
import numpy as np

from wenlm.training.utils.text import is_cjk_char, split_mixed

ANALYZERS = ("jieba", "char_ngrams")
JIEBA_HINT = "pip install jieba (or pip install 'wenlm[zh]')"
# Runs of letters, digits and CJK characters: whatever lies between two runs (punctuation, spaces) splits terms.
_WORD_RUN = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def is_cjk_token(token: str) -> bool:
    return len(token) == 1 and is_cjk_char(token)


def char_ngram_terms(text: str) -> list[str]:
    """CJK characters as unigrams plus adjacent-pair bigrams, and whole lower-cased Latin words."""
    terms: list[str] = []
    for run in _WORD_RUN.findall(fold(text)):
        tokens = split_mixed(run, str.isalnum)
        terms += tokens
        terms += [
            first + second
            for first, second in zip(tokens, tokens[1:])
            if is_cjk_token(first) and is_cjk_token(second)
        ]
    return terms


def jieba_terms_function() -> Callable[[str], list[str]]:
    """The jieba analyzer; jieba is imported here, with a clear message, because it is an optional dependency."""
    try:
        import jieba  # optional dependency (wenlm[zh]); only the jieba analyzer needs it
    except ImportError:
        raise ImportError(f"The BM25 analyzer 'jieba' needs the jieba package: {JIEBA_HINT}.") from None
    jieba.setLogLevel(60)  # above CRITICAL: jieba otherwise logs its dictionary loading on every first use

    def jieba_terms(text: str) -> list[str]:
        return [word for word in jieba.lcut(fold(text)) if _WORD_RUN.search(word)]

    return jieba_terms


def analyzer(name: str) -> Callable[[str], list[str]]:
    """The function that turns a text into BM25 terms for analyzer `name` (one of ANALYZERS)."""
    if name == "jieba":
        return jieba_terms_function()
    if name == "char_ngrams":
        return char_ngram_terms
    raise ValueError(f"BM25 analyzer {name!r} is unknown; choose {' or '.join(ANALYZERS)}.")


class BM25Index:
    """A `bm25s.BM25` index (Lucene scoring, k1 = 1.5, b = 0.75 by default) over `documents`, with its analyzer."""

    def __init__(
        self, documents: Sequence[str], analyzer_name: str = "char_ngrams", k1: float = 1.5, b: float = 0.75
    ):
        if not documents:
            raise ValueError("BM25 needs at least one document to index.")
        self.analyze = analyzer(analyzer_name)
        self.index = bm25s.BM25(k1=k1, b=b)
        self.index.index([self.analyze(text) for text in documents], show_progress=False)

    @property
    def num_documents(self) -> int:
        return int(self.index.scores["num_docs"])

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every document for `query` (terms the collection lacks score nothing)."""
        term_ids = self.index.get_tokens_ids(self.analyze(query))
        return self.index.get_scores_from_ids(term_ids)
