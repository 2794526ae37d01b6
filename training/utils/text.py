"""Tokenisation shared by the wenlm metrics, built so that Chinese text is scored sensibly.

English-centric metrics split on whitespace (SQuAD) or drop every character outside ``[a-z0-9]``
(``rouge_score``). Chinese has no spaces between words, so the first turns a whole Chinese answer into a
single "word" and the second deletes it entirely. Here every CJK character is a token of its own, while
Latin words stay whole, so mixed text such as ``"GPT-4 模型"`` tokenises as ``["gpt4", "模", "型"]``.
Character-level tokens are the usual convention for Chinese QA (CMRC, DRCD) and need no word segmenter,
which keeps the scores reproducible independent of a segmenter's dictionary.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable, Sequence

__all__ = [
    "ENGLISH_ARTICLES",
    "contains_cjk",
    "is_mostly_chinese",
    "is_cjk_char",
    "lcs_length",
    "qa_tokens",
    "rouge_tokens",
    "split_mixed",
]

# Han ideographs (all extensions, compatibility blocks), the iteration/zero marks, Japanese kana and
# Bopomofo. Hangul is left out on purpose: Korean separates words with spaces, so whitespace words fit it.
_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x309F),  # Hiragana
    (0x30A0, 0x30FF),  # Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x31A0, 0x31BF),  # Bopomofo extended
    (0x3400, 0x4DBF),  # Extension A
    (0x4E00, 0x9FFF),  # Unified ideographs
    (0xF900, 0xFAFF),  # Compatibility ideographs
    (0x20000, 0x2A6DF),  # Extension B
    (0x2A700, 0x2EBEF),  # Extensions C-F and I
    (0x2F800, 0x2FA1F),  # Compatibility supplement
    (0x30000, 0x323AF),  # Extensions G and H
)

ENGLISH_ARTICLES = frozenset({"a", "an", "the"})
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def is_cjk_char(char: str) -> bool:
    """True for a single Han ideograph, Japanese kana or Bopomofo character."""
    code_point = ord(char)
    return any(low <= code_point <= high for low, high in _CJK_RANGES)


def contains_cjk(text: str) -> bool:
    """True when ``text`` has at least one CJK character (see :func:`is_cjk_char`)."""
    return any(is_cjk_char(char) for char in text)


def split_mixed(text: str, is_word_char: Callable[[str], bool]) -> list[str]:
    """Split ``text`` into CJK characters (one token each) and runs of ``is_word_char`` characters.

    Any character that is neither CJK nor a word character ends the current word and is dropped.
    """
    tokens: list[str] = []
    word: list[str] = []
    for char in text:
        if is_cjk_char(char):
            if word:
                tokens.append("".join(word))
                word = []
            tokens.append(char)
        elif is_word_char(char):
            word.append(char)
        elif word:
            tokens.append("".join(word))
            word = []
    if word:
        tokens.append("".join(word))
    return tokens


def _is_punctuation(char: str) -> bool:
    # ASCII punctuation is what SQuAD strips (it includes symbols such as "$" and "+"); the Unicode "P*"
    # categories add Chinese punctuation such as "，。「」《》".
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def qa_tokens(text: str) -> list[str]:
    """SQuAD-style answer normalisation, tokenised so that each CJK character is one token.

    Steps: NFKC (full-width letters and digits, common in Chinese text, become their ASCII forms), lower
    case, delete punctuation (so "don't" becomes "dont", as in SQuAD), split into CJK characters and
    whitespace-separated words, drop the English articles "a", "an", "the". Articles are removed after
    tokenising, not with SQuAD's ``\\b`` regex, because ``\\b`` sees no boundary between "the" and a
    following Chinese character.
    """
    folded = unicodedata.normalize("NFKC", text).lower()
    without_punctuation = "".join(char for char in folded if not _is_punctuation(char))
    tokens = split_mixed(without_punctuation, lambda char: not char.isspace())
    return [token for token in tokens if token not in ENGLISH_ARTICLES]


def rouge_tokens(text: str) -> list[str]:
    """Tokens for ROUGE: CJK characters one by one, and lower-cased runs of letters and digits.

    On ASCII text this equals ``rouge_score``'s default tokeniser without stemming (lower-case, split on
    anything outside ``[a-z0-9]``), so English scores match ``rouge_score``; it differs in keeping
    Chinese characters (which ``rouge_score`` deletes) and accented letters.
    """
    folded = unicodedata.normalize("NFKC", text).lower()
    return split_mixed(folded, str.isalnum)


def lcs_length(first: Sequence[str], second: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences.

    Uses the bit-parallel formulation (Allison & Dix 1986; Hyyrö 2004): one Python integer holds a row
    of the dynamic-programming table, so long Chinese summaries, which have one token per character, cost
    ``len(second)`` big-integer operations instead of ``len(first) * len(second)`` Python steps.
    """
    if not first or not second:
        return 0
    match_masks: dict[str, int] = {}
    for position, token in enumerate(first):
        match_masks[token] = match_masks.get(token, 0) | (1 << position)
    all_ones = (1 << len(first)) - 1
    row = all_ones
    for token in second:
        matched = row & match_masks.get(token, 0)
        row = ((row + matched) | (row - matched)) & all_ones
    # Each zero bit in the final row marks one step of the common subsequence.
    return len(first) - row.bit_count()


def is_mostly_chinese(text: str) -> bool:
    """True when more than half of the letters are CJK characters: how reports split documents into zh and en."""
    letters = [char for char in text if char.isalpha()]
    return bool(letters) and sum(map(is_cjk_char, letters)) / len(letters) > 0.5
